// Pulls from a real registry (Debian's docker-registry on 127.0.0.1) into a temp store: every
// manifest and layer format, content through a real overlay mount, status/list/remove
// semantics, and concurrent pulls sharing one download.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { dlopen, FFIType, ptr } from "bun:ffi";
import { join } from "node:path";
import { run } from "../../src/sys/exec.ts";
import { startRegistry, type Registry } from "../support/registry.ts";
import { MULTILAYER_EXPECT, busyboxImage, hostileImage, pushAll, pushImage, type PushedImage, type StandardImageName } from "../support/images.ts";
import { rejection, startProxy, testImages } from "./image-support.ts";

/** lgetxattr(2) as a latin1 string (no getfattr on the machine); undefined when absent. */
function xattr(path: string, name: string): string | undefined {
  const buf = new Uint8Array(1024);
  const n = Number(libc.symbols.lgetxattr(ptr(Buffer.from(`${path}\0`)), ptr(Buffer.from(`${name}\0`)), ptr(buf), buf.length));
  return n < 0 ? undefined : Buffer.from(buf.subarray(0, n)).toString("latin1");
}
const libc = dlopen("libc.so.6", { lgetxattr: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i64 } });

let reg: Registry;
let imgs: Record<StandardImageName, PushedImage>;

beforeAll(async () => {
  reg = await startRegistry();
  imgs = await pushAll(reg);
}, 120_000);
afterAll(async () => {
  await reg?.stop();
});

describe("pull", () => {
  test("by tag: id, manifest digest, names, user and size", async () => {
    await using t = await testImages([reg.host]);
    const r = await t.svc.pull(imgs.multilayer.ref);
    expect({
      id: r.id,
      manifestDigest: r.manifestDigest,
      repoTags: r.repoTags,
      repoDigests: r.repoDigests,
      user: r.user,
      username: r.username,
      uid: r.uid,
    }).toEqual({
      id: imgs.multilayer.imageId,
      manifestDigest: imgs.multilayer.manifestDigest,
      repoTags: [imgs.multilayer.ref],
      repoDigests: [`${reg.host}/multilayer@${imgs.multilayer.manifestDigest}`],
      user: "app",
      username: "app",
      uid: undefined,
    });
    expect(r.size).toBeGreaterThan(1_000_000);
    expect(r.config.config?.StopSignal).toBe("SIGUSR1");
    expect(t.svc.layers(r.id)).toHaveLength(3);
    expect(t.svc.imageConfig(r.id).rootfs.diff_ids).toEqual(r.layers);
    expect(t.tempEntries()).toEqual([]);
  });

  test("by digest; status finds it by every name form", async () => {
    await using t = await testImages([reg.host]);
    const byDigest = `${reg.host}/busybox@${imgs.busybox.manifestDigest}`;
    const r = await t.svc.pull(byDigest);
    expect(r.id).toBe(imgs.busybox.imageId);
    expect(r.repoTags).toEqual([]);
    expect(r.repoDigests).toEqual([byDigest]);
    await t.svc.pull(imgs.busybox.ref);
    const hex = r.id.slice("sha256:".length);
    for (const q of [r.id, hex, hex.slice(0, 12), byDigest, imgs.busybox.ref, `${reg.host}/busybox`]) expect(t.svc.status(q)?.id).toBe(r.id);
    expect(t.svc.status(`${reg.host}/busybox:other`)).toBeUndefined();
    expect(t.svc.status("sha256:" + "0".repeat(64))).toBeUndefined();
    expect(() => t.svc.status("Not/A/Valid:ref:")).toThrow(/invalid image reference/);
    t.setRegistries(`unqualified-search-registries = ["${reg.host}"]\n[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
    expect(t.svc.status("busybox")?.id).toBe(r.id);
    expect(t.svc.resolve("busybox")).toBe(`${reg.host}/busybox:latest`);
    expect((await t.svc.pull("busybox")).id).toBe(r.id);
  });

  test.each(["zstd", "uncompressed", "dockerv2"] as const)("%s image", async (name) => {
    await using t = await testImages([reg.host]);
    const r = await t.svc.pull(imgs[name].ref);
    expect(r.id).toBe(imgs[name].imageId);
    const [layer] = t.svc.layers(r.id);
    expect(statSync(join(layer!, "bin/busybox")).mode & 0o777).toBe(0o755);
    expect(readlinkSync(join(layer!, "bin/sh"))).toBe("busybox");
    expect(statSync(join(layer!, "tmp")).mode & 0o7777).toBe(0o1777);
    expect(statSync(join(layer!, "home/app")).uid).toBe(1000);
    expect(statSync(join(layer!, "etc/shadow")).gid).toBe(42);
  });

  test("multi-platform index: the node's platform by default, the platform option otherwise", async () => {
    await using t = await testImages([reg.host]);
    const amd = imgs.multiplatform.platforms!.find((p) => p.platform.architecture === "amd64")!;
    const arm = imgs.multiplatform.platforms!.find((p) => p.platform.architecture === "arm64")!;
    const host = await t.svc.pull(imgs.multiplatform.ref, { platform: "linux/amd64" });
    expect([host.id, host.manifestDigest]).toEqual([amd.configDigest, amd.manifestDigest]);
    expect(host.repoDigests).toEqual([`${reg.host}/multiplatform@${imgs.multiplatform.manifestDigest}`, `${reg.host}/multiplatform@${amd.manifestDigest}`]);
    const r = await t.svc.pull(imgs.multiplatform.ref, { platform: "linux/arm64" });
    expect(r.id).toBe(arm.configDigest);
    expect(readFileSync(join(t.svc.layers(r.id)[0]!, "etc/platform"), "utf8")).toBe("linux/arm64\n");
    // the tag moved to the arm64 image; the amd64 one keeps its digests
    expect(t.svc.status(host.id)!.repoTags).toEqual([]);
    expect((await rejection(t.svc.pull(imgs.multiplatform.ref, { platform: "linux/s390x" }))).message).toMatch(/no manifest for platform linux\/s390x/);
  });

  test("layers stack under overlay: whiteouts, opaque dirs, hard links and symlinks work", async () => {
    await using t = await testImages([reg.host]);
    const r = await t.svc.pull(imgs.multilayer.ref);
    const merged = join(t.dir, "merged");
    mkdirSync(merged);
    await run(["mount", "-t", "overlay", "overlay", "-o", `lowerdir=${[...t.svc.layers(r.id)].reverse().join(":")}`, merged]);
    try {
      for (const [p, text] of Object.entries(MULTILAYER_EXPECT.files)) expect(readFileSync(join(merged, p), "utf8")).toBe(text);
      for (const [p, target] of Object.entries(MULTILAYER_EXPECT.symlinks)) expect(readlinkSync(join(merged, p))).toBe(target);
      for (const [a, b] of MULTILAYER_EXPECT.hardlinks) expect(lstatSync(join(merged, a)).ino).toBe(lstatSync(join(merged, b)).ino);
      for (const p of MULTILAYER_EXPECT.absent) expect(existsSync(join(merged, p))).toBe(false);
      expect(statSync(join(merged, MULTILAYER_EXPECT.appHome)).uid).toBe(1000);
    } finally {
      await run(["umount", merged]);
    }
  });
});

describe("unpack fidelity", () => {
  // vfs_cap_data revision 2 (magic 0x02000000 | effective), CAP_NET_RAW (bit 13) permitted: `setcap cap_net_raw+ep`
  const CAP = "\u0001\u0000\u0000\u0002\u0000\u0020" + "\u0000".repeat(14);
  const long = "fid/" + "long-directory-name/".repeat(6) + "file";

  test("owners, modes, times, xattrs (security.capability), devices, fifos, hard and absolute symlinks, long names", async () => {
    const img = await pushImage(
      reg,
      await hostileImage(
        [
          { name: "fid/", type: "dir", mode: 0o750, uid: 1234, gid: 5678, mtime: 1600000000 },
          { name: "fid/setuid", data: "#!/bin/sh\n", mode: 0o4755, mtime: 1234567890 },
          { name: "fid/cap", data: "elf", mode: 0o755, pax: { "SCHILY.xattr.security.capability": CAP, "SCHILY.xattr.user.note": "hello" } },
          { name: "fid/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666 },
          { name: "fid/loop", type: "block", devmajor: 7, devminor: 0, mode: 0o660, gid: 6 },
          { name: "fid/pipe", type: "fifo", mode: 0o620 },
          { name: "fid/big-ids", data: "x", uid: 3_000_000, gid: 3_000_001 },
          { name: "fid/hl", type: "hardlink", linkname: "fid/setuid" },
          { name: "fid/abs", type: "symlink", linkname: "/usr/lib/target" },
          { name: long, data: "deep\n" },
        ],
        { name: "fidelity" }, // the tag is a hash of the entries, so the cached layout follows them
      ),
    );
    await using t = await testImages([reg.host]);
    const [layer] = t.svc.layers((await t.svc.pull(img.ref)).id);
    const p = (x: string) => join(layer!, x);
    const st = (x: string) => lstatSync(p(x));
    expect([st("fid").mode & 0o7777, st("fid").uid, st("fid").gid, st("fid").mtimeMs / 1000]).toEqual([0o750, 1234, 5678, 1600000000]);
    expect([st("fid/setuid").mode & 0o7777, st("fid/setuid").mtimeMs / 1000, st("fid/setuid").nlink]).toEqual([0o4755, 1234567890, 2]);
    expect(st("fid/hl").ino).toBe(st("fid/setuid").ino);
    expect([st("fid/null").isCharacterDevice(), st("fid/null").rdev, st("fid/null").mode & 0o777]).toEqual([true, (1 << 8) | 3, 0o666]);
    expect([st("fid/loop").isBlockDevice(), st("fid/loop").rdev, st("fid/loop").gid]).toEqual([true, 7 << 8, 6]);
    expect([st("fid/pipe").isFIFO(), st("fid/pipe").mode & 0o777]).toEqual([true, 0o620]);
    expect([st("fid/big-ids").uid, st("fid/big-ids").gid]).toEqual([3_000_000, 3_000_001]);
    expect(readlinkSync(p("fid/abs"))).toBe("/usr/lib/target");
    expect(readFileSync(p(long), "utf8")).toBe("deep\n");
    expect([xattr(p("fid/cap"), "security.capability"), xattr(p("fid/cap"), "user.note")]).toEqual([CAP, "hello"]);
  });
});

describe("status, list, remove", () => {
  test("untag, remove by id, idempotence, in-use refusal, shared layers kept", async () => {
    await using t = await testImages([reg.host]);
    const second = await pushImage(reg, await busyboxImage(), { tag: "second" });
    const bb = await t.svc.pull(imgs.busybox.ref);
    await t.svc.pull(second.ref);
    const ml = await t.svc.pull(imgs.multilayer.ref);
    expect(t.svc.status(bb.id)!.repoTags.sort()).toEqual([imgs.busybox.ref, second.ref].sort());
    expect(
      t.svc
        .list()
        .map((i) => i.id)
        .sort(),
    ).toEqual([bb.id, ml.id].sort());
    expect(t.svc.list(second.ref).map((i) => i.id)).toEqual([bb.id]);
    expect(t.layerDirs()).toHaveLength(3); // busybox's layer is shared

    await t.svc.remove(second.ref, () => true); // another tag remains: untag only, in use or not
    expect(t.svc.status(bb.id)!.repoTags).toEqual([imgs.busybox.ref]);
    const busy = await rejection(t.svc.remove(bb.id, (id) => id === bb.id));
    expect([busy.kind, busy.message]).toEqual(["failed-precondition", expect.stringMatching(/is in use by a container/)]);
    await t.svc.remove(imgs.busybox.ref, () => false); // the last tag: the image goes
    expect(t.svc.status(bb.id)).toBeUndefined();
    expect(t.layerDirs()).toHaveLength(3); // still used by multilayer
    await t.svc.remove(imgs.busybox.ref, () => false); // idempotent
    await t.svc.remove(ml.id, () => false);
    expect(t.svc.list()).toEqual([]);
    expect(t.layerDirs()).toEqual([]);
    expect(t.svc.fsInfo().usedBytes).toBe(0);
  });

  test("pinned images and fsInfo", async () => {
    await using t = await testImages([reg.host], { pinnedImages: [`${reg.host}/multi*`], pauseImage: imgs.busybox.ref });
    const bb = await t.svc.pull(imgs.busybox.ref);
    const ml = await t.svc.pull(imgs.multilayer.ref);
    const zs = await t.svc.pull(imgs.zstd.ref);
    expect([bb.pinned, ml.pinned, zs.pinned]).toEqual([true, true, false]);
    t.svc.reload({ pinnedImages: ["*zst*"], pauseImage: undefined });
    expect(
      t.svc
        .list()
        .filter((i) => i.pinned)
        .map((i) => i.id),
    ).toEqual([zs.id]);
    const fs = t.svc.fsInfo();
    expect(fs.mountpoint).toBe(t.root);
    expect(fs.usedBytes).toBeGreaterThan(2_000_000);
    expect(fs.inodesUsed).toBeGreaterThan(300);
  });
});

describe("errors", () => {
  test("an unknown tag or repository is not-found and names it", async () => {
    await using t = await testImages([reg.host]);
    const tag = await rejection(t.svc.pull(`${reg.host}/busybox:no-such-tag`));
    expect([tag.kind, tag.message]).toEqual([
      "not-found",
      expect.stringMatching(/manifest 127\.0\.0\.1:\d+\/busybox:no-such-tag not found \(MANIFEST_UNKNOWN/),
    ]);
    const repo = await rejection(t.svc.pull(`${reg.host}/no/such/repo`));
    expect([repo.kind, repo.message]).toEqual(["not-found", expect.stringMatching(/no\/such\/repo:latest not found \((NAME|MANIFEST)_UNKNOWN/)]);
    expect((await rejection(t.svc.pull("UPPER/case"))).kind).toBe("invalid-argument");
  });

  test("a full disk is resource-exhausted and leaves no image, layer or temp file", async () => {
    await using t = await testImages([reg.host]);
    const small = join(t.dir, "small");
    mkdirSync(small);
    await run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", small]);
    try {
      await using s = await testImages([reg.host], { root: join(small, "images") });
      const e = await rejection(s.svc.pull(imgs.busybox.ref));
      expect([e.kind, e.message]).toEqual(["resource-exhausted", expect.stringMatching(/no space left on device/i)]);
      expect(s.svc.list()).toEqual([]);
      expect(readdirSync(join(small, "images", "layers"))).toEqual([]);
      expect(readdirSync(join(small, "images", "tmp"))).toEqual([]);
    } finally {
      await run(["umount", small]);
    }
  });
});

describe("sharing", () => {
  test("concurrent pulls of one image make one download; a shared layer is fetched once", async () => {
    using proxy = startProxy(reg);
    await using t = await testImages([proxy.host]);
    const ref = `${proxy.host}/multilayer:latest`;
    const [a, b, c] = await Promise.all([t.svc.pull(ref), t.svc.pull(ref), t.svc.pull(`${proxy.host}/busybox:latest`)]);
    expect(a.id).toBe(b.id);
    expect(c.id).toBe(imgs.busybox.imageId);
    const busyboxLayer = imgs.busybox.layers[0]!.digest;
    const gets = [...proxy.counts].filter(([p]) => p.includes("/blobs/") && p.endsWith(busyboxLayer));
    expect(gets.map(([, n]) => n).reduce((x, y) => x + y, 0)).toBe(1);
    expect(proxy.counts.get(`/v2/multilayer/manifests/latest`)).toBe(1);
    for (const l of imgs.multilayer.layers.slice(1)) expect(proxy.counts.get(`/v2/multilayer/blobs/${l.digest}`)).toBe(1);
    // a second pull of a present image downloads no layer
    const before = proxy.blobGets();
    await t.svc.pull(ref);
    expect(proxy.blobGets()).toBe(before);
  });

  test("progress events report layers", async () => {
    await using t = await testImages([reg.host]);
    const events: string[] = [];
    await t.svc.pull(imgs.busybox.ref, { onProgress: (p) => events.push(p.type === "layer" ? `layer:${p.state}` : p.type) });
    expect(events[0]).toBe("resolving");
    expect(events).toContain("manifest");
    expect(events).toContain("layer:done");
    expect(events[events.length - 1]).toBe("done");
  });
});
