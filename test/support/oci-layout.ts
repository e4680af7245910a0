/**
 * OCI image layouts for test images (https://github.com/opencontainers/image-spec/blob/main/image-layout.md):
 * blobs by sha256, config, manifest, index, index.json; plus the on-disk cache of built layouts,
 * keyed by a hash of the builder's sources and /bin/busybox.
 */
import { copyFile, mkdir, rename, rm, writeFile, readdir, stat, utimes } from "node:fs/promises";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeTar, readTar, type TarEntry } from "./tar.ts";

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

/** The entries of layer `i` of a built image (read from its layout and decompressed). */
export async function readLayer(img: TestImage, i: number): Promise<TarEntry[]> {
  const l = img.layers[i];
  if (!l) throw new Error(`image ${img.name} has no layer ${i}`);
  const blob = new Uint8Array(await Bun.file(join(img.layoutDir, "blobs", "sha256", l.digest.slice(7))).arrayBuffer());
  const tar = l.mediaType.endsWith("zstd") ? Bun.zstdDecompressSync(blob) : l.mediaType.endsWith("tar") ? blob : Bun.gunzipSync(blob);
  return readTar(tar);
}

/** Writes blobs, layers, manifests and index.json into one fresh layout dir (see {@link cachedImage}). */
export class LayoutWriter {
  constructor(readonly dir: string) {}

  /** Stores bytes as a blob; returns its digest and size. */
  async blob(bytes: Uint8Array): Promise<{ digest: string; size: number }> {
    const hex = new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
    const p = join(this.dir, "blobs", "sha256", hex);
    if (!existsSync(p)) await writeFile(p, bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  }

  /** Writes `entries` as one layer blob (gzip, zstd or plain tar); mediaType overrides the OCI one. */
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
      name,
      tag: "latest",
      mediaType: MEDIA.ociIndex,
      manifestDigest: b.digest,
      configDigest: first.configDigest,
      imageId: first.configDigest,
      layers: first.layers,
      config: first.config,
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

  /** Writes oci-layout and index.json pointing at `top` under the ref name `tag`. */
  async finish(top: { mediaType: string; digest: string; size: number }, tag: string): Promise<void> {
    await writeFile(join(this.dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    const ref = { ...top, annotations: { "org.opencontainers.image.ref.name": tag } };
    await writeFile(join(this.dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [ref] }));
  }
}

/** Builds image `id` once per builder version (build writes into the given LayoutWriter): in memory per process, on disk across runs. */
export function cachedImage(id: string, build: (w: LayoutWriter) => Promise<Omit<TestImage, "layoutDir">>): Promise<TestImage> {
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

// --- internal ---

const CREATED = "2023-01-01T00:00:00Z";
const enc = new TextEncoder();
const memo = new Map<string, Promise<TestImage>>();
let keyDir: Promise<string> | undefined;

/** IMAGE_CACHE_DIR/<hash of this builder's sources and /bin/busybox>; prunes versions unused for an hour. */
function cacheRoot(): Promise<string> {
  return (keyDir ??= (async () => {
    const h = new Bun.CryptoHasher("sha256");
    for (const f of [import.meta.path, ...["images.ts", "tar.ts"].map((f) => join(import.meta.dir, f)), "/bin/busybox"]) h.update(readFileSync(f));
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
