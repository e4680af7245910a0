/**
 * Test images built in TypeScript from /bin/busybox (busybox-static): OCI layouts written here
 * (tar layers, sha256 digests, config, manifest, index.json), cached on disk, pushed to a
 * loopback registry with skopeo. Every image carries the label `org.crio-test.image=<name>`
 * so no two share an image id (config digest), while the busybox layer blob is shared.
 */
import { copyFile, mkdir, rename, rm, writeFile, readdir, stat, utimes } from "node:fs/promises";
import { existsSync, readFileSync } from "node:fs";
import { createCipheriv, createHash } from "node:crypto";
import { join } from "node:path";
import { run } from "../../src/sys/exec.ts";
import { writeTar, readTar, type TarEntry } from "./tar.ts";
import { registryFetch, skopeo, skopeoFlags, type Registry } from "./registry.ts";

/** Where built layouts are cached (override with CRIO_TEST_IMAGE_CACHE); one subdir per builder version. */
export const IMAGE_CACHE_DIR = process.env.CRIO_TEST_IMAGE_CACHE ?? "/var/tmp/crio-test-images";

/** Media types the images use. */
export const MEDIA = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  layerTar: "application/vnd.oci.image.layer.v1.tar",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  layerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

/** Repository names of the images in the registry (tag "latest"), plus "big" and "hostile". */
export const IMAGE_NAMES = {
  busybox: "busybox",
  multilayer: "multilayer",
  zstd: "zstd",
  uncompressed: "uncompressed",
  multiplatform: "multiplatform",
  dockerv2: "dockerv2",
  big: "big",
  hostile: "hostile",
} as const;

/** The PATH every image sets. */
export const IMAGE_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** One layer of a built image. */
export interface LayerInfo {
  mediaType: string;
  /** Digest of the blob as stored (compressed). */
  digest: string;
  size: number;
  /** Digest of the uncompressed tar (config rootfs.diff_ids). */
  diffId: string;
}

/** The OCI image config's `config` object (the subset these images set). */
export interface ImageConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  ExposedPorts?: Record<string, object>;
  Volumes?: Record<string, object>;
}

/** One platform's manifest inside an image index. */
export interface PlatformManifest {
  platform: { os: string; architecture: string; variant?: string };
  manifestDigest: string;
  configDigest: string;
  layers: LayerInfo[];
}

/** A built image: an OCI layout holding it under `tag`, and its digests. */
export interface TestImage {
  name: string;
  tag: string;
  layoutDir: string;
  /** Media type of what `name:tag` resolves to: a manifest, or an index for multiplatform. */
  mediaType: string;
  /** Digest the registry serves for `name:tag` (the index digest for multiplatform). */
  manifestDigest: string;
  /** Config digest of the linux/amd64 image; equal to imageId. */
  configDigest: string;
  /** The image id a runtime reports: the config digest. */
  imageId: string;
  /** Layers of the linux/amd64 image, bottom first. */
  layers: LayerInfo[];
  config: ImageConfig;
  /** For an index: every platform's manifest. */
  platforms?: PlatformManifest[];
}

/** A test image pushed to a registry; `ref` is "HOST/NAME:TAG". */
export interface PushedImage extends TestImage {
  ref: string;
}

/** "HOST/NAME:TAG" for an image in `reg`. */
export function imageRef(reg: Registry | string, name: string, tag = "latest"): string {
  return `${typeof reg === "string" ? reg : reg.host}/${name}:${tag}`;
}

/** busybox: one gzip layer with /bin/busybox, applet symlinks, passwd/group (root, app 1000, nobody), /tmp 1777. */
export function busyboxImage(): Promise<TestImage> {
  return cached("busybox", async (w) => {
    const l = await w.layer(await busyboxEntries(), "gzip");
    return w.image("busybox", [l], baseConfig("busybox"));
  });
}

/** zstd: the busybox tree in one application/vnd.oci.image.layer.v1.tar+zstd layer. */
export function zstdImage(): Promise<TestImage> {
  return cached("zstd", async (w) => w.image("zstd", [await w.layer(await busyboxEntries(), "zstd")], baseConfig("zstd")));
}

/** uncompressed: the busybox tree in one application/vnd.oci.image.layer.v1.tar layer. */
export function uncompressedImage(): Promise<TestImage> {
  return cached("uncompressed", async (w) =>
    w.image("uncompressed", [await w.layer(await busyboxEntries(), "none")], baseConfig("uncompressed")),
  );
}

/** dockerv2: the busybox layer under a Docker schema 2 manifest (pushed with --format v2s2, digests kept). */
export function dockerv2Image(): Promise<TestImage> {
  return cached("dockerv2", async (w) =>
    w.image("dockerv2", [await w.layer(await busyboxEntries(), "gzip", MEDIA.dockerLayerGzip)], baseConfig("dockerv2"), "docker"),
  );
}

/** The tree {@link multilayerImage} must unpack to: file contents, symlink targets, hard-link pairs, absent paths. */
export const MULTILAYER_EXPECT = {
  files: {
    "/opt/app/hello.txt": "hello from layer 2\n",
    "/opt/app/link-a": "linked\n",
    "/opt/app/link-b": "linked\n",
    "/opt/data/new.txt": "new in layer 3\n",
    "/etc/multilayer": "layer 3\n",
  } as Record<string, string>,
  symlinks: { "/opt/app/current": "hello.txt" } as Record<string, string>,
  hardlinks: [["/opt/app/link-a", "/opt/app/link-b"]] as [string, string][],
  /** Deleted by `.wh.delete-me.txt` and hidden by the opaque `/opt/data`. */
  absent: ["/opt/app/delete-me.txt", "/opt/data/old-1.txt", "/opt/data/old-2.txt"],
  /** Owned by app (1000:1000). */
  appHome: "/home/app",
};

/**
 * multilayer: busybox + a layer adding /opt/app (hard-link pair, symlink, entrypoint) and /opt/data,
 * + a layer deleting a file (`.wh.`) and making /opt/data opaque (`.wh..wh..opq`). Config sets
 * Entrypoint, Cmd, WorkingDir, Env, User app, StopSignal SIGUSR1 and labels.
 */
export function multilayerImage(): Promise<TestImage> {
  return cached("multilayer", async (w) => {
    const l1 = await w.layer(await busyboxEntries(), "gzip");
    const l2 = await w.layer(
      [
        dir("opt"),
        dir("opt/app"),
        file("opt/app/hello.txt", "hello from layer 2\n"),
        file("opt/app/link-a", "linked\n"),
        { name: "opt/app/link-b", type: "hardlink", linkname: "opt/app/link-a" },
        { name: "opt/app/current", type: "symlink", linkname: "hello.txt" },
        file("opt/app/delete-me.txt", "to be deleted by layer 3\n"),
        file("opt/app/entrypoint.sh", '#!/bin/sh\nexec "$@"\n', 0o755),
        dir("opt/data"),
        file("opt/data/old-1.txt", "old\n"),
        file("opt/data/old-2.txt", "old\n"),
        file("etc/multilayer", "layer 2\n"),
      ],
      "gzip",
    );
    const l3 = await w.layer(
      [
        { name: "opt/app/.wh.delete-me.txt", data: "" },
        dir("opt/data"),
        { name: "opt/data/.wh..wh..opq", data: "" },
        file("opt/data/new.txt", "new in layer 3\n"),
        file("etc/multilayer", "layer 3\n"),
      ],
      "gzip",
    );
    return w.image("multilayer", [l1, l2, l3], {
      ...baseConfig("multilayer"),
      Env: [IMAGE_PATH_ENV, "GREETING=hello", "LAYERS=3"],
      Entrypoint: ["/opt/app/entrypoint.sh"],
      Cmd: ["echo", "hello from multilayer"],
      WorkingDir: "/opt/app",
      User: "app",
      StopSignal: "SIGUSR1",
      Labels: { "org.crio-test.image": "multilayer", "org.opencontainers.image.title": "multilayer test image" },
    });
  });
}

/** multiplatform: an OCI index with linux/amd64 (busybox layer) and linux/arm64/v8 (a marker file /etc/platform). */
export function multiplatformImage(): Promise<TestImage> {
  return cached("multiplatform", async (w) => {
    const amd = await w.manifest([await w.layer(await busyboxEntries(), "gzip")], baseConfig("multiplatform"), "amd64");
    const armLayer = await w.layer([dir("etc"), file("etc/platform", "linux/arm64\n")], "gzip");
    const arm = await w.manifest([armLayer], baseConfig("multiplatform"), "arm64", "v8");
    return w.index("multiplatform", [amd, arm]);
  });
}

/** big: busybox plus `layers` layers of incompressible data totalling `totalBytes` (default 4 × 26.2 MB ≈ 105 MB). */
export function bigImage(o: { layers?: number; totalBytes?: number } = {}): Promise<TestImage> {
  const n = o.layers ?? 4;
  const total = o.totalBytes ?? 100 * 1024 * 1024;
  return cached(`big-${n}x${total}`, async (w) => {
    const layers = [await w.layer(await busyboxEntries(), "gzip")];
    for (let i = 0; i < n; i++) {
      const size = Math.floor(total / n);
      // AES-CTR over zeros: deterministic (so the cache key is enough) and incompressible.
      const key = createHash("sha256").update(`big-${i}`).digest().subarray(0, 16);
      const data = createCipheriv("aes-128-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(size));
      layers.push(await w.layer([dir("big"), file(`big/blob-${i}.bin`, data)], "gzip", MEDIA.layerGzip, 1));
    }
    return w.image(IMAGE_NAMES.big, layers, baseConfig("big"));
  });
}

/**
 * hostile: one gzip layer holding exactly `entries` (written verbatim by tar.ts), on top of the
 * busybox layer when `base` is true. Tag defaults to a hash of the entries.
 */
export function hostileImage(entries: TarEntry[], o: { name?: string; tag?: string; base?: boolean } = {}): Promise<TestImage> {
  const h = new Bun.CryptoHasher("sha256");
  for (const e of entries) h.update(JSON.stringify({ ...e, data: undefined })).update(e.data ?? "");
  const tag = o.tag ?? `h-${h.digest("hex").slice(0, 12)}`;
  const name = o.name ?? IMAGE_NAMES.hostile;
  return cached(`${name}-${tag}-${o.base ? "b" : "n"}`, async (w) => {
    const layers = o.base ? [await w.layer(await busyboxEntries(), "gzip")] : [];
    layers.push(await w.layer(entries, "gzip"));
    return w.image(name, layers, baseConfig(name), "oci", tag);
  });
}

/** Ready-made hostile layers: each tries to write outside the rootfs in one way. */
export const HOSTILE_CASES: Record<string, TarEntry[]> = {
  dotdot: [file("../../escaped-dotdot", "escaped\n"), file("a/../../escaped-dotdot2", "escaped\n")],
  absolute: [file("/tmp/escaped-absolute", "escaped\n")],
  symlinkEscape: [{ name: "evil", type: "symlink", linkname: "/tmp" }, file("evil/escaped-through-symlink", "escaped\n")],
  relativeSymlinkEscape: [{ name: "up", type: "symlink", linkname: "../../../../../../tmp" }, file("up/escaped-relative", "escaped\n")],
  hardlinkOutside: [{ name: "shadow", type: "hardlink", linkname: "/etc/shadow" }, { name: "shadow2", type: "hardlink", linkname: "../../etc/shadow" }],
  symlinkParent: [dir("d"), { name: "d/sub", type: "symlink", linkname: "/" }, file("d/sub/tmp/escaped-parent", "escaped\n")],
};

/** The standard set pushed by {@link pushAll}, by repository name. */
export const STANDARD_IMAGES = {
  busybox: busyboxImage,
  multilayer: multilayerImage,
  zstd: zstdImage,
  uncompressed: uncompressedImage,
  multiplatform: multiplatformImage,
  dockerv2: dockerv2Image,
} as const;

/** Names of the standard set. */
export type StandardImageName = keyof typeof STANDARD_IMAGES;

/** Pushes one built image to `reg` as NAME:TAG (defaults: the image's own), keeping every digest. */
export async function pushImage(reg: Registry, img: TestImage, o: { name?: string; tag?: string } = {}): Promise<PushedImage> {
  const ref = imageRef(reg, o.name ?? img.name, o.tag ?? img.tag);
  const args = ["copy", "-q", "--preserve-digests", ...skopeoFlags(reg, "dest-")];
  if (img.mediaType === MEDIA.ociIndex) args.push("--all");
  if (img.mediaType === MEDIA.dockerManifest) args.push("--format", "v2s2");
  const src = img.mediaType === MEDIA.dockerManifest ? `dir:${join(img.layoutDir, "v2s2")}` : `oci:${img.layoutDir}:${img.tag}`;
  await skopeo(reg, [...args, src, `docker://${ref}`]);
  // Check the registry serves exactly the digest we computed.
  const path = ref.slice(reg.host.length + 1).replace(/:([^:]+)$/, "/manifests/$1");
  const r = await registryFetch(reg, `/v2/${path}`, { method: "HEAD", headers: { accept: img.mediaType } });
  const got = r.headers.get("docker-content-digest");
  if (got !== img.manifestDigest) throw new Error(`pushed ${ref}: registry serves ${got} (HTTP ${r.status}), expected ${img.manifestDigest}`);
  return { ...img, name: o.name ?? img.name, tag: o.tag ?? img.tag, ref };
}

/** Builds (or loads) and pushes the standard set, three at a time; resolves to each pushed image. */
export async function pushAll(reg: Registry): Promise<Record<StandardImageName, PushedImage>> {
  const names = Object.keys(STANDARD_IMAGES) as StandardImageName[];
  const built = await Promise.all(names.map((n) => STANDARD_IMAGES[n]()));
  const out = {} as Record<StandardImageName, PushedImage>;
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const i = next++;
      out[names[i]!] = await pushImage(reg, built[i]!);
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  return out;
}

/** The entries of layer `i` of a built image (read from its layout and decompressed). */
export async function readLayer(img: TestImage, i: number): Promise<TarEntry[]> {
  const l = img.layers[i];
  if (!l) throw new Error(`image ${img.name} has no layer ${i}`);
  const blob = new Uint8Array(await Bun.file(join(img.layoutDir, "blobs", "sha256", l.digest.slice(7))).arrayBuffer());
  const tar = l.mediaType.endsWith("zstd") ? Bun.zstdDecompressSync(blob) : l.mediaType.endsWith("tar") ? blob : Bun.gunzipSync(blob);
  return readTar(tar);
}

// --- internal ---

const CREATED = "2023-01-01T00:00:00Z";

function file(name: string, data: string | Uint8Array, mode = 0o644, uid = 0, gid = 0): TarEntry {
  return { name, data, mode, uid, gid };
}

function dir(name: string, mode = 0o755, uid = 0, gid = 0): TarEntry {
  return { name: `${name}/`, type: "dir", mode, uid, gid };
}

function baseConfig(name: string): ImageConfig {
  return { Env: [IMAGE_PATH_ENV], Cmd: ["sh"], Labels: { "org.crio-test.image": name } };
}

let bbEntries: Promise<TarEntry[]> | undefined;

/** The busybox root: /bin/busybox, a symlink per applet, users and groups, /tmp 1777, /root 0700. */
function busyboxEntries(): Promise<TarEntry[]> {
  return (bbEntries ??= (async () => {
    if (!existsSync("/bin/busybox")) throw new Error("/bin/busybox is missing: install the Debian package busybox-static");
    const applets = (await run(["/bin/busybox", "--list"])).split("\n").filter((a) => a && a !== "busybox" && !a.includes("/"));
    const entries: TarEntry[] = [
      dir("bin"),
      file("bin/busybox", new Uint8Array(readFileSync("/bin/busybox")), 0o755),
      ...applets.sort().map((a): TarEntry => ({ name: `bin/${a}`, type: "symlink", linkname: "busybox" })),
      dir("etc"),
      file("etc/passwd", PASSWD),
      file("etc/group", GROUP),
      file("etc/shadow", "root:*:19358:0:99999:7:::\napp:*:19358:0:99999:7:::\nnobody:*:19358:0:99999:7:::\n", 0o640, 0, 42),
      dir("home"),
      dir("home/app", 0o755, 1000, 1000),
      dir("root", 0o700),
      dir("tmp", 0o1777),
      dir("usr"),
      dir("usr/bin"),
      dir("usr/sbin"),
      dir("var"),
      dir("var/tmp", 0o1777),
    ];
    return entries;
  })());
}

const PASSWD = [
  "root:x:0:0:root:/root:/bin/sh",
  "app:x:1000:1000:app:/home/app:/bin/sh",
  "nobody:x:65534:65534:nobody:/nonexistent:/bin/false",
  "",
].join("\n");

const GROUP = ["root:x:0:", "shadow:x:42:", "app:x:1000:", "extra:x:2000:app", "nogroup:x:65534:", ""].join("\n");

/** Layers are made by a LayoutWriter into a fresh directory; `cached` renames it into place. */
class LayoutWriter {
  constructor(readonly dir: string) {}

  /** Stores bytes as a blob; returns its digest and size. */
  async blob(bytes: Uint8Array): Promise<{ digest: string; size: number }> {
    const hex = new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
    const p = join(this.dir, "blobs", "sha256", hex);
    if (!existsSync(p)) await writeFile(p, bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  }

  async layer(entries: TarEntry[], c: "gzip" | "zstd" | "none", mediaType?: string, level = 6): Promise<LayerInfo> {
    const tar = writeTar(entries);
    const diffId = `sha256:${new Bun.CryptoHasher("sha256").update(tar).digest("hex")}`;
    const bytes = c === "gzip" ? Bun.gzipSync(tar, { level: level as 6 }) : c === "zstd" ? Bun.zstdCompressSync(tar, { level: 3 }) : tar;
    const b = await this.blob(bytes);
    const mt = mediaType ?? (c === "gzip" ? MEDIA.layerGzip : c === "zstd" ? MEDIA.layerZstd : MEDIA.layerTar);
    return { mediaType: mt, digest: b.digest, size: b.size, diffId };
  }

  /** Writes config + manifest for one platform; returns its descriptor facts. */
  async manifest(layers: LayerInfo[], config: ImageConfig, arch = "amd64", variant?: string, kind: "oci" | "docker" = "oci") {
    const cfg = {
      created: CREATED,
      architecture: arch,
      ...(variant ? { variant } : {}),
      os: "linux",
      config,
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
      history: layers.map((l, i) => ({ created: CREATED, created_by: `crio test image layer ${i} (${l.mediaType})` })),
    };
    const c = await this.blob(enc.encode(JSON.stringify(cfg)));
    const docker = kind === "docker";
    const m = {
      schemaVersion: 2,
      mediaType: docker ? MEDIA.dockerManifest : MEDIA.ociManifest,
      config: { mediaType: docker ? MEDIA.dockerConfig : MEDIA.ociConfig, digest: c.digest, size: c.size },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    };
    const mb = await this.blob(enc.encode(JSON.stringify(m)));
    const platform = { os: "linux", architecture: arch, ...(variant ? { variant } : {}) };
    return { mediaType: m.mediaType, digest: mb.digest, size: mb.size, platform, configDigest: c.digest, layers, config };
  }

  /** A single-platform image tagged `tag` in this layout. */
  async image(name: string, layers: LayerInfo[], config: ImageConfig, kind: "oci" | "docker" = "oci", tag = "latest") {
    const m = await this.manifest(layers, config, "amd64", undefined, kind);
    await this.finish(m, tag);
    if (kind === "docker") await this.dirTransport(m.digest, [m.configDigest, ...layers.map((l) => l.digest)]);
    return { name, tag, mediaType: m.mediaType, manifestDigest: m.digest, configDigest: m.configDigest, imageId: m.configDigest, layers, config };
  }

  /** An OCI index over platform manifests (the first one is the amd64 image described at the top level). */
  async index(name: string, ms: Awaited<ReturnType<LayoutWriter["manifest"]>>[]) {
    const idx = {
      schemaVersion: 2,
      mediaType: MEDIA.ociIndex,
      manifests: ms.map((m) => ({ mediaType: m.mediaType, digest: m.digest, size: m.size, platform: m.platform })),
    };
    const b = await this.blob(enc.encode(JSON.stringify(idx)));
    await this.finish({ mediaType: MEDIA.ociIndex, ...b }, "latest");
    const first = ms[0]!;
    return {
      name, tag: "latest", mediaType: MEDIA.ociIndex, manifestDigest: b.digest,
      configDigest: first.configDigest, imageId: first.configDigest, layers: first.layers, config: first.config,
      platforms: ms.map((m) => ({ platform: m.platform, manifestDigest: m.digest, configDigest: m.configDigest, layers: m.layers })),
    };
  }

  /**
   * skopeo's oci: transport ignores Docker manifests, so a Docker image is also written in the
   * dir: transport layout (DIR/v2s2: manifest.json, version, one file per blob named by hex digest).
   */
  async dirTransport(manifest: string, blobs: string[]): Promise<void> {
    const d = join(this.dir, "v2s2");
    await mkdir(d);
    const src = (dg: string) => join(this.dir, "blobs", "sha256", dg.slice(7));
    await copyFile(src(manifest), join(d, "manifest.json"));
    for (const b of blobs) await copyFile(src(b), join(d, b.slice(7)));
    await writeFile(join(d, "version"), "Directory Transport Version: 1.1\n");
  }

  async finish(top: { mediaType: string; digest: string; size: number }, tag: string): Promise<void> {
    await writeFile(join(this.dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    const ref = { ...top, annotations: { "org.opencontainers.image.ref.name": tag } };
    await writeFile(join(this.dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [ref] }));
  }
}

const enc = new TextEncoder();
const memo = new Map<string, Promise<TestImage>>();
let keyDir: Promise<string> | undefined;

/** Builds image `id` once per builder version: in memory per process, on disk across runs. */
function cached(id: string, build: (w: LayoutWriter) => Promise<Omit<TestImage, "layoutDir">>): Promise<TestImage> {
  let p = memo.get(id);
  if (!p) {
    p = (async () => {
      const root = await cacheRoot();
      const final = join(root, id);
      const infoFile = join(final, "info.json");
      if (existsSync(infoFile)) return { ...(await Bun.file(infoFile).json()), layoutDir: final } as TestImage;
      const tmp = join(root, `.tmp-${id}-${crypto.randomUUID()}`);
      await mkdir(join(tmp, "blobs", "sha256"), { recursive: true });
      try {
        const info = await build(new LayoutWriter(tmp));
        await writeFile(join(tmp, "info.json"), JSON.stringify(info));
        await rename(tmp, final).catch(async (e) => {
          if (!existsSync(infoFile)) throw e; // another process won the race; use its copy
        });
        return { ...info, layoutDir: final };
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    })();
    p.catch(() => memo.delete(id));
    memo.set(id, p);
  }
  return p;
}

/** IMAGE_CACHE_DIR/<hash of this builder's sources and /bin/busybox>; prunes versions unused for an hour. */
function cacheRoot(): Promise<string> {
  return (keyDir ??= (async () => {
    const h = new Bun.CryptoHasher("sha256");
    for (const f of [import.meta.path, join(import.meta.dir, "tar.ts"), "/bin/busybox"]) h.update(readFileSync(f));
    const key = h.digest("hex").slice(0, 16);
    const dir = join(IMAGE_CACHE_DIR, key);
    await mkdir(dir, { recursive: true });
    await utimes(dir, new Date(), new Date()); // in use: keep it from being pruned
    for (const d of await readdir(IMAGE_CACHE_DIR)) {
      const p = join(IMAGE_CACHE_DIR, d);
      if (d !== key && Date.now() - (await stat(p)).mtimeMs > 3_600_000) await rm(p, { recursive: true, force: true });
    }
    return dir;
  })());
}
