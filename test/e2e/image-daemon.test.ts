// The CRI ImageService of the compiled daemon, over its socket: pulls by tag and digest,
// formats, concurrent pulls sharing one download, ImageStatus/ListImages/RemoveImage/
// ImageFsInfo, pinning, error codes, and the hostile layer corpus.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status as grpc } from "@grpc/grpc-js";
import { createCipheriv, createHash } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startRegistry, type Registry } from "../support/registry.ts";
import { HOSTILE_CASES, hostileImage, pushAll, pushImage, type PushedImage, type StandardImageName } from "../support/images.ts";
import { cleanupPods, ctrConfig, podConfig } from "../support/pods.ts";
import { grpcError, startImageDaemon, startThrottleProxy, storeState, type ImageDaemon, type ThrottleProxy } from "./image-daemon-support.ts";

let reg: Registry;
let imgs: Record<StandardImageName, PushedImage>;
let removable: PushedImage;
let concurrent: PushedImage;
let proxy: ThrottleProxy;
let env: ImageDaemon;
const hostile: Record<string, PushedImage> = {};

beforeAll(async () => {
  reg = await startRegistry();
  imgs = await pushAll(reg);
  const rm = await hostileImage([{ name: "removable.txt", data: "remove me\n" }], { name: "removable", tag: "a", base: true });
  removable = await pushImage(reg, rm, { tag: "a" });
  await pushImage(reg, rm, { tag: "b" });
  // one fresh layer of 384 KiB of incompressible bytes: ~1.5 s through the proxy at 256 KiB/s
  const key = createHash("sha256").update("concurrent").digest().subarray(0, 16);
  const data = createCipheriv("aes-128-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(384 * 1024));
  concurrent = await pushImage(
    reg,
    await hostileImage(
      [
        { name: "data/", type: "dir" },
        { name: "data/blob.bin", data },
      ],
      { name: "concurrent", tag: "latest" },
    ),
  );
  for (const name of Object.keys(HOSTILE_CASES))
    hostile[name] = await pushImage(reg, await hostileImage(HOSTILE_CASES[name]!, { base: true }), { tag: name.toLowerCase() });
  proxy = startThrottleProxy(reg, 256 * 1024);
  env = await startImageDaemon({
    registries: [reg.host, proxy.host].map((h) => `[[registry]]\nlocation = "${h}"\ninsecure = true\n`).join("\n"),
    config: `[crio.image]\npause_image = "${imgs.pause.ref}"\npause_command = "/pause"\npinned_images = ["${reg.host}/zstd*"]\n`,
  });
}, 180_000);
afterAll(async () => {
  if (env) await cleanupPods(env.d);
  await env?.[Symbol.asyncDispose]();
  proxy?.stop();
  await reg?.stop();
});

const cri = () => env.d.cri;

describe("PullImage", () => {
  test("concurrent pulls of one image share one download", async () => {
    const ref = `${proxy.host}/concurrent:latest`;
    const results = await Promise.all(Array.from({ length: 5 }, () => cri().pullImage({ image: { image: ref } })));
    expect(results.map((r) => r.imageRef)).toEqual(Array(5).fill(concurrent.imageId));
    const blobs = [...proxy.counts].filter(([k]) => k.startsWith("/v2/concurrent/blobs/"));
    // the config and the one layer, each fetched once
    expect(blobs.map(([k, n]) => [k.slice(k.lastIndexOf("/") + 1), n]).sort()).toEqual(
      [
        [concurrent.configDigest, 1],
        [concurrent.layers[0]!.digest, 1],
      ].sort(),
    );
    expect(proxy.counts.get("/v2/concurrent/manifests/latest")).toBe(1);
  }, 60_000);

  test("by tag and by digest; ImageStatus reports names, digests, size and user", async () => {
    const ml = imgs.multilayer;
    expect((await cri().pullImage({ image: { image: ml.ref } })).imageRef).toBe(ml.imageId);
    const st = await cri().imageStatus({ image: { image: ml.ref }, verbose: true });
    expect(st.image).toMatchObject({
      id: ml.imageId,
      repoTags: [ml.ref],
      repoDigests: [`${reg.host}/multilayer@${ml.manifestDigest}`],
      username: "app",
      pinned: false,
    });
    expect(st.image!.size).toBeGreaterThan(1_000_000n);
    const info = JSON.parse(st.info.info!);
    expect([info.imageSpec.config.User, info.imageSpec.rootfs.diff_ids.length]).toEqual(["app", 3]);

    const bb = imgs.busybox;
    const byDigest = `${reg.host}/busybox@${bb.manifestDigest}`;
    expect((await cri().pullImage({ image: { image: byDigest } })).imageRef).toBe(bb.imageId);
    const s2 = await cri().imageStatus({ image: { image: byDigest } });
    expect([s2.image?.id, s2.image?.repoTags, s2.image?.repoDigests]).toEqual([bb.imageId, [], [byDigest]]);
    // the image id and an id prefix name it too
    expect((await cri().imageStatus({ image: { image: bb.imageId } })).image?.id).toBe(bb.imageId);
    expect((await cri().imageStatus({ image: { image: bb.imageId.slice(7, 19) } })).image?.id).toBe(bb.imageId);
  });

  test("zstd, uncompressed, Docker schema 2 and a multi-platform index", async () => {
    for (const name of ["uncompressed", "dockerv2", "multiplatform"] as const) {
      const { imageRef } = await cri().pullImage({ image: { image: imgs[name].ref } });
      expect([name, imageRef]).toEqual([name, imgs[name].imageId]);
    }
    const amd = imgs.multiplatform.platforms!.find((p) => p.platform.architecture === "amd64")!;
    expect((await cri().imageStatus({ image: { image: imgs.multiplatform.ref } })).image?.repoDigests).toContain(
      `${reg.host}/multiplatform@${amd.manifestDigest}`,
    );
  });

  test("an invalid reference is INVALID_ARGUMENT; an unknown tag or repository is NOT_FOUND", async () => {
    for (const bad of ["UPPER/case:tag", "busybox:bad tag", `${reg.host}/busybox@sha256:123`]) {
      const e = await grpcError(cri().pullImage({ image: { image: bad } }));
      expect([bad, e.code, e.details]).toEqual([bad, grpc.INVALID_ARGUMENT, expect.stringMatching(/invalid|reference|digest/i)]);
    }
    expect((await grpcError(cri().pullImage({ image: { image: "" } }))).code).toBe(grpc.INVALID_ARGUMENT);
    const tag = await grpcError(cri().pullImage({ image: { image: `${reg.host}/busybox:no-such-tag` } }));
    expect([tag.code, tag.details]).toEqual([grpc.NOT_FOUND, expect.stringMatching(/busybox:no-such-tag.* not found/)]);
    const repo = await grpcError(cri().pullImage({ image: { image: `${reg.host}/no-such-repo:1` } }));
    expect(repo.code).toBe(grpc.NOT_FOUND);
    expect(storeState(env.store).temps).toEqual([]);
  });
});

describe("ImageStatus, ListImages, ImageFsInfo", () => {
  test("ImageStatus of a missing image is an empty answer", async () => {
    const st = await cri().imageStatus({ image: { image: `${reg.host}/never-pulled:1` }, verbose: true });
    expect([st.image, st.info]).toEqual([undefined, {}]);
    expect((await grpcError(cri().imageStatus({ image: { image: "" } }))).code).toBe(grpc.INVALID_ARGUMENT);
  });

  test("ListImages lists every image; a filter narrows it to the one named", async () => {
    await cri().pullImage({ image: { image: imgs.multilayer.ref } });
    const all = (await cri().listImages({})).images.map((i) => i.id);
    expect(all).toEqual(expect.arrayContaining([imgs.multilayer.imageId, imgs.busybox.imageId, concurrent.imageId]));
    const one = await cri().listImages({ filter: { image: { image: imgs.multilayer.ref } } });
    expect(one.images.map((i) => [i.id, i.repoTags])).toEqual([[imgs.multilayer.imageId, [imgs.multilayer.ref]]]);
    expect((await cri().listImages({ filter: { image: { image: imgs.busybox.imageId } } })).images.map((i) => i.id)).toEqual([imgs.busybox.imageId]);
    expect((await cri().listImages({ filter: { image: { image: `${reg.host}/never-pulled:1` } } })).images).toEqual([]);
  });

  test("ImageFsInfo numbers are non-zero and grow with a pull", async () => {
    const before = (await cri().imageFsInfo({})).imageFilesystems[0]!;
    expect(before.fsId?.mountpoint).toBe(env.store);
    expect(before.usedBytes!.value).toBeGreaterThan(0n);
    expect(before.inodesUsed!.value).toBeGreaterThan(0n);
    expect(Number(before.timestamp / 1_000_000n)).toBeGreaterThan(Date.now() - 60_000);
    await cri().pullImage({ image: { image: imgs.zstd.ref } });
    const res = await cri().imageFsInfo({});
    const after = res.imageFilesystems[0]!;
    expect(after.usedBytes!.value).toBeGreaterThan(before.usedBytes!.value);
    expect(after.inodesUsed!.value).toBeGreaterThan(before.inodesUsed!.value);
    expect(res.containerFilesystems[0]?.fsId?.mountpoint).toBe(join(env.d.root, "storage"));
  });

  test("pinned_images and the pause image are reported pinned", async () => {
    await cri().pullImage({ image: { image: imgs.pause.ref } });
    await cri().pullImage({ image: { image: imgs.zstd.ref } });
    const pinned = Object.fromEntries((await cri().listImages({})).images.map((i) => [i.id, i.pinned]));
    expect([pinned[imgs.pause.imageId], pinned[imgs.zstd.imageId], pinned[imgs.multilayer.imageId]]).toEqual([true, true, false]);
    expect((await cri().imageStatus({ image: { image: imgs.pause.ref } })).image?.pinned).toBe(true);
  });
});

describe("RemoveImage", () => {
  const a = () => removable.ref;
  const b = () => removable.ref.replace(/:a$/, ":b");
  const status = async (ref: string) => (await cri().imageStatus({ image: { image: ref } })).image;

  test("a tag of an image with other tags only untags it; the last tag removes the image and its layer", async () => {
    await cri().pullImage({ image: { image: a() } });
    await cri().pullImage({ image: { image: b() } });
    expect((await status(removable.imageId))?.repoTags.sort()).toEqual([a(), b()].sort());
    await cri().removeImage({ image: { image: a() } });
    expect([await status(a()), (await status(removable.imageId))?.repoTags]).toEqual([undefined, [b()]]);
    await cri().removeImage({ image: { image: b() } });
    expect(await status(removable.imageId)).toBeUndefined();
    const top = removable.layers.at(-1)!.diffId.slice(7);
    expect(existsSync(join(env.store, "layers", top))).toBe(false);
    expect(storeState(env.store)).toMatchObject({ strayLayers: [], temps: [] });
  });

  test("by id and by digest; removing again (or something never pulled) succeeds", async () => {
    await cri().pullImage({ image: { image: a() } });
    await cri().removeImage({ image: { image: removable.imageId } });
    expect(await status(a())).toBeUndefined();
    await cri().pullImage({ image: { image: a() } });
    await cri().removeImage({ image: { image: `${reg.host}/removable@${removable.manifestDigest}` } });
    expect(await status(removable.imageId)).toBeUndefined();
    await cri().removeImage({ image: { image: a() } });
    await cri().removeImage({ image: { image: removable.imageId } });
    await cri().removeImage({ image: { image: `${reg.host}/never-pulled:1` } });
    expect((await grpcError(cri().removeImage({ image: { image: "" } }))).code).toBe(grpc.INVALID_ARGUMENT);
  });

  test("refused while a container uses the image; allowed once it is gone", async () => {
    const bb = imgs.busybox;
    await cri().pullImage({ image: { image: bb.ref } });
    const pod = podConfig("uses-image", env.d.dir);
    const { podSandboxId } = await cri().runPodSandbox({ config: pod });
    const { containerId } = await cri().createContainer({ podSandboxId, sandboxConfig: pod, config: ctrConfig("c", bb.ref, ["true"], {}, pod) });
    for (const ref of [bb.ref, bb.imageId]) {
      const e = await grpcError(cri().removeImage({ image: { image: ref } }));
      expect([e.code, e.details]).toEqual([grpc.FAILED_PRECONDITION, expect.stringMatching(/in use by a container/)]);
    }
    expect((await status(bb.ref))?.id).toBe(bb.imageId);
    await cri().removeContainer({ containerId });
    await cri().removePodSandbox({ podSandboxId });
    await cri().removeImage({ image: { image: bb.imageId } });
    expect(await status(bb.ref)).toBeUndefined();
  }, 60_000);
});

describe("hostile layers", () => {
  /** Paths the corpus aims at; none may appear. */
  const TARGETS = [
    "/tmp/escaped-absolute",
    "/tmp/escaped-through-symlink",
    "/tmp/escaped-relative",
    "/tmp/escaped-parent",
    "/escaped-dotdot",
    "/escaped-dotdot2",
  ];

  test.each(Object.keys(HOSTILE_CASES))("%s: a clear error (or a harmless result) and nothing outside the store", async (name) => {
    const img = hostile[name]!;
    const before = TARGETS.filter((p) => existsSync(p));
    try {
      if (name === "absolute") {
        // GNU tar strips the leading "/": the file lands inside the layer
        expect((await cri().pullImage({ image: { image: img.ref } })).imageRef).toBe(img.imageId);
        const top = img.layers.at(-1)!.diffId.slice(7);
        expect(readFileSync(join(env.store, "layers", top, "tmp/escaped-absolute"), "utf8")).toBe("escaped\n");
        await cri().removeImage({ image: { image: img.imageId } });
      } else {
        const e = await grpcError(cri().pullImage({ image: { image: img.ref } }));
        expect([e.code, e.details]).toEqual([
          grpc.INVALID_ARGUMENT,
          expect.stringMatching(name === "hardlinkOutside" ? /"\.\." component|Cannot hard link/ : /refused: /),
        ]);
        expect(e.details).toContain(img.ref);
        expect((await cri().imageStatus({ image: { image: img.ref } })).image).toBeUndefined();
      }
      expect(storeState(env.store)).toMatchObject({ strayLayers: [], temps: [] });
      expect(TARGETS.filter((p) => existsSync(p))).toEqual(before);
    } finally {
      for (const p of TARGETS) if (!before.includes(p)) rmSync(p, { force: true });
    }
  });
});
