/**
 * The suite's loopback registry and test images: a plain and a TLS + htpasswd docker-registry,
 * the standard image set pushed to both and checked with `skopeo inspect`, the hostile-layer
 * builder and the tar writer checked against GNU tar.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, runRaw } from "../../src/sys/exec.ts";
import {
  bigImage,
  busyboxImage,
  HOSTILE_CASES,
  hostileImage,
  IMAGE_NAMES,
  imageRef,
  MEDIA,
  multilayerImage,
  MULTILAYER_EXPECT,
  pushAll,
  pushImage,
  readLayer,
  type PushedImage,
  type StandardImageName,
} from "../support/images.ts";
import { registryFetch, skopeo, skopeoFlags, startRegistry, type Registry } from "../support/registry.ts";
import { readTar, writeTar } from "../support/tar.ts";

const AUTH = { user: "tester", password: "s3cret:with colon" };

/** What each standard image must look like in the registry: manifest type and layer media types. */
const EXPECT: Record<StandardImageName, { mediaType: string; layers: string[] }> = {
  busybox: { mediaType: MEDIA.ociManifest, layers: [MEDIA.layerGzip] },
  multilayer: { mediaType: MEDIA.ociManifest, layers: [MEDIA.layerGzip, MEDIA.layerGzip, MEDIA.layerGzip] },
  zstd: { mediaType: MEDIA.ociManifest, layers: [MEDIA.layerZstd] },
  uncompressed: { mediaType: MEDIA.ociManifest, layers: [MEDIA.layerTar] },
  multiplatform: { mediaType: MEDIA.ociIndex, layers: [MEDIA.layerGzip] },
  dockerv2: { mediaType: MEDIA.dockerManifest, layers: [MEDIA.dockerLayerGzip] },
  pause: { mediaType: MEDIA.ociManifest, layers: [MEDIA.layerGzip, MEDIA.layerGzip] },
};

let plain: Registry;
let secure: Registry;
let onPlain: Record<StandardImageName, PushedImage>;
let onSecure: Record<StandardImageName, PushedImage>;

beforeAll(async () => {
  [plain, secure] = await Promise.all([startRegistry(), startRegistry({ tls: true, htpasswd: AUTH })]);
  [onPlain, onSecure] = await Promise.all([pushAll(plain), pushAll(secure)]);
}, 60_000);

afterAll(async () => {
  await Promise.all([plain?.stop(), secure?.stop()]);
});

const inspect = async (reg: Registry, ref: string, ...extra: string[]) =>
  JSON.parse(await skopeo(reg, ["inspect", ...skopeoFlags(reg, ""), ...extra, `docker://${ref}`]));

describe("registries", () => {
  test("answer /v2/ on 127.0.0.1; the secure one over TLS with basic auth", async () => {
    expect(plain.host).toMatch(/^127\.0\.0\.1:\d+$/);
    expect((await registryFetch(plain, "/v2/")).status).toBe(200);
    expect(secure.url).toStartWith("https://127.0.0.1:");
    expect((await registryFetch(secure, "/v2/")).status).toBe(200);
    const anon = await registryFetch(secure, "/v2/", { headers: { authorization: "Basic " + btoa("tester:wrong") } });
    expect(anon.status).toBe(401);
    expect(await Bun.file(secure.caFile!).text()).toContain("BEGIN CERTIFICATE");
    expect(existsSync(join(secure.certDir!, "ca.crt"))).toBe(true);
  });

  test("skopeo against the secure registry fails without credentials or without the CA", async () => {
    const ref = onSecure.busybox.ref;
    const noCreds = await runRaw([
      "skopeo",
      "--policy",
      join(secure.dir, "skopeo/policy.json"),
      "inspect",
      "--raw",
      "--cert-dir",
      secure.certDir!,
      "--no-creds",
      `docker://${ref}`,
    ]);
    expect(noCreds.code).not.toBe(0);
    expect(noCreds.stderr).toMatch(/unauthorized|authentication required/i);
    const noCa = await runRaw([
      "skopeo",
      "--policy",
      join(secure.dir, "skopeo/policy.json"),
      "inspect",
      "--raw",
      "--creds",
      `${AUTH.user}:${AUTH.password}`,
      `docker://${ref}`,
    ]);
    expect(noCa.code).not.toBe(0);
    expect(noCa.stderr).toMatch(/certificate|x509/i);
  });

  test("deletes are enabled", async () => {
    const img = await pushImage(plain, await busyboxImage(), { name: "deleteme" });
    const r = await registryFetch(plain, `/v2/deleteme/manifests/${img.manifestDigest}`, { method: "DELETE" });
    expect(r.status).toBe(202);
    const gone = await registryFetch(plain, `/v2/deleteme/manifests/${img.manifestDigest}`, { method: "HEAD" });
    expect(gone.status).toBe(404);
  });

  test("stop kills the registry and removes its dir; a missing binary is a clear error", async () => {
    const r = await startRegistry();
    await r.stop();
    expect(existsSync(r.dir)).toBe(false);
    await expect(fetch(`${r.url}/v2/`)).rejects.toThrow();
    await r.stop(); // idempotent
    await expect(startRegistry({ bin: "/nonexistent/docker-registry" })).rejects.toThrow(/missing: install the Debian package docker-registry/);
  });
});

describe("standard images", () => {
  for (const [name, want] of Object.entries(EXPECT) as [StandardImageName, (typeof EXPECT)[StandardImageName]][]) {
    test.each([["plain"], ["secure"]])(`${name} is in the %s registry with its layers`, async (which) => {
      const reg = which === "plain" ? plain : secure;
      const img = (which === "plain" ? onPlain : onSecure)[name];
      expect(img.ref).toBe(imageRef(reg, IMAGE_NAMES[name]));
      const raw = await inspect(reg, img.ref, "--raw");
      expect(raw.mediaType).toBe(want.mediaType);
      // An index names its platform manifests; fetch the amd64 one to see its layers.
      const manifest = raw.manifests
        ? JSON.parse(await (await registryFetch(reg, `/v2/${name}/manifests/${raw.manifests[0].digest}`, { headers: { accept: MEDIA.ociManifest } })).text())
        : raw;
      expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual(want.layers);
      expect(manifest.layers.map((l: { digest: string }) => l.digest)).toEqual(img.layers.map((l) => l.digest));
      const info = await inspect(reg, img.ref);
      expect(info.Digest).toBe(img.manifestDigest);
      expect(info.Layers).toEqual(img.layers.map((l) => l.digest));
      const config = await inspect(reg, img.ref, "--config");
      expect(config.rootfs.diff_ids).toEqual(img.layers.map((l) => l.diffId));
      expect(config.config.Labels["org.crio-test.image"]).toBe(name);
    });
  }

  test("multiplatform is an index of linux/amd64 and linux/arm64/v8", async () => {
    const img = onPlain.multiplatform;
    const raw = await inspect(plain, img.ref, "--raw");
    expect(raw.manifests.map((m: { platform: unknown }) => m.platform)).toEqual([
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64", variant: "v8" },
    ]);
    expect(raw.manifests.map((m: { digest: string }) => m.digest)).toEqual(img.platforms!.map((p) => p.manifestDigest));
    const arm = await inspect(plain, img.ref, "--config", "--override-arch", "arm64", "--override-variant", "v8");
    expect(arm.architecture).toBe("arm64");
    expect(arm.rootfs.diff_ids).toEqual(img.platforms![1]!.layers.map((l) => l.diffId));
  });

  test("every image has a distinct id; the busybox layer blob is shared", () => {
    const ids = Object.values(onPlain).map((i) => i.imageId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(onPlain.multilayer.layers[0]!.digest).toBe(onPlain.busybox.layers[0]!.digest);
    expect(onPlain.zstd.layers[0]!.diffId).toBe(onPlain.busybox.layers[0]!.diffId);
  });

  test("multilayer carries its config and its whiteouts, links and symlink", async () => {
    const cfg = (await inspect(secure, onSecure.multilayer.ref, "--config")).config;
    expect(cfg).toMatchObject({
      User: "app",
      StopSignal: "SIGUSR1",
      WorkingDir: "/opt/app",
      Entrypoint: ["/opt/app/entrypoint.sh"],
      Cmd: ["echo", "hello from multilayer"],
    });
    expect(cfg.Env).toContain("GREETING=hello");
    const img = await multilayerImage();
    const l2 = await readLayer(img, 1);
    expect(l2.find((e) => e.name === "opt/app/link-b")).toMatchObject({ type: "hardlink", linkname: "opt/app/link-a" });
    expect(l2.find((e) => e.name === "opt/app/current")).toMatchObject({ type: "symlink", linkname: "hello.txt" });
    const l3 = (await readLayer(img, 2)).map((e) => e.name);
    expect(l3).toContain("opt/app/.wh.delete-me.txt");
    expect(l3).toContain("opt/data/.wh..wh..opq");
    expect(MULTILAYER_EXPECT.absent).toContain("/opt/app/delete-me.txt");
  });

  test("the busybox layer unpacks with GNU tar and runs under chroot", async () => {
    const img = await busyboxImage();
    const root = await mkdtemp(join(tmpdir(), "bb-root-"));
    try {
      await run(["tar", "-xzf", join(img.layoutDir, "blobs/sha256", img.layers[0]!.digest.slice(7)), "-C", root]);
      const out = await run(["chroot", root, "/bin/sh", "-c", "id app; stat -c %a /tmp; echo $(ls /bin | wc -l)"]);
      const [id, tmpMode, applets] = out.trim().split("\n");
      expect(id).toBe("uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)");
      expect(tmpMode).toBe("1777");
      expect(Number(applets)).toBeGreaterThan(200);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe("builders", () => {
  test("hostileImage writes exactly the entries asked, which GNU tar lists as written", async () => {
    for (const [name, entries] of Object.entries(HOSTILE_CASES)) {
      const img = await hostileImage(entries);
      expect(img.layers).toHaveLength(1);
      const got = (await readLayer(img, 0)).map((e) => [e.name, e.type, e.linkname]);
      expect(got, name).toEqual(entries.map((e) => [e.name, e.type ?? "file", e.linkname]));
      const blob = join(img.layoutDir, "blobs/sha256", img.layers[0]!.digest.slice(7));
      const listed = (await run(["tar", "--absolute-names", "--quoting-style=literal", "-tzvf", blob])).trim().split("\n");
      expect(
        listed.map((l) => l.replace(/^\S+ \S+ +\d+ \S+ \S+ /, "")),
        name,
      ).toEqual(entries.map((e) => e.name + (e.type === "symlink" ? ` -> ${e.linkname}` : e.type === "hardlink" ? ` link to ${e.linkname}` : "")));
    }
    const withBase = await hostileImage(HOSTILE_CASES.symlinkEscape!, { base: true });
    const pushed = await pushImage(plain, withBase);
    expect((await inspect(plain, pushed.ref)).Layers).toHaveLength(2);
  });

  test("tar writer round-trips long names, big ids and devices, and GNU tar agrees", async () => {
    const long = "d/".repeat(70) + "file";
    const tar = writeTar([
      { name: long, data: "x", uid: 100000000, gid: 7 },
      { name: "dev/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666 },
      { name: "ünï", data: "u" },
    ]);
    const back = readTar(tar);
    expect(back.map((e) => [e.name, e.type, e.uid, e.devmajor])).toEqual([
      [long, "file", 100000000, undefined],
      ["dev/null", "char", 0, 1],
      ["ünï", "file", 0, undefined],
    ]);
    const listed = await run(["tar", "--numeric-owner", "-tvf", "-"], { stdin: tar });
    expect(listed).toContain(long);
    expect(listed).toContain("100000000/7");
    expect(listed).toContain("ünï");
  });

  test("bigImage makes incompressible layers of the asked total", async () => {
    const img = await bigImage({ layers: 2, totalBytes: 4 * 1024 * 1024 });
    expect(img.layers).toHaveLength(3);
    const data = img.layers.slice(1).reduce((n, l) => n + l.size, 0);
    expect(data).toBeGreaterThanOrEqual(4 * 1024 * 1024);
    const pushed = await pushImage(plain, img, { tag: "small" });
    expect((await inspect(plain, pushed.ref)).Digest).toBe(img.manifestDigest);
  });
});
