/**
 * Test images built in TypeScript from /bin/busybox (busybox-static): the recipes, written as
 * OCI layouts by oci-layout.ts (cached on disk), and pushed to a loopback registry with skopeo.
 * Every image carries the label `org.crio-test.image=<name>` so no two share an image id
 * (config digest), while the busybox layer blob is shared.
 */
import { existsSync, readFileSync } from "node:fs";
import { createCipheriv, createHash } from "node:crypto";
import { join } from "node:path";
import { run } from "../../src/sys/exec.ts";
import type { TarEntry } from "./tar.ts";
import { registryFetch, skopeo, skopeoFlags, type Registry } from "./registry.ts";
import { cachedImage, MEDIA, type ImageConfig, type TestImage } from "./oci-layout.ts";

export { IMAGE_CACHE_DIR, MEDIA, readLayer, type ImageConfig, type LayerInfo, type PlatformManifest, type TestImage } from "./oci-layout.ts";

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
  pause: "pause",
} as const;

/** The PATH every image sets. */
export const IMAGE_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
  return cachedImage("busybox", async (w) => {
    const l = await w.layer(await busyboxEntries(), "gzip");
    return w.image("busybox", [l], baseConfig("busybox"));
  });
}

/** zstd: the busybox tree in one application/vnd.oci.image.layer.v1.tar+zstd layer. */
export function zstdImage(): Promise<TestImage> {
  return cachedImage("zstd", async (w) => w.image("zstd", [await w.layer(await busyboxEntries(), "zstd")], baseConfig("zstd")));
}

/** uncompressed: the busybox tree in one application/vnd.oci.image.layer.v1.tar layer. */
export function uncompressedImage(): Promise<TestImage> {
  return cachedImage("uncompressed", async (w) => w.image("uncompressed", [await w.layer(await busyboxEntries(), "none")], baseConfig("uncompressed")));
}

/** dockerv2: the busybox layer under a Docker schema 2 manifest (pushed with --format v2s2, digests kept). */
export function dockerv2Image(): Promise<TestImage> {
  return cachedImage("dockerv2", async (w) =>
    w.image("dockerv2", [await w.layer(await busyboxEntries(), "gzip", MEDIA.dockerLayerGzip)], baseConfig("dockerv2"), "docker"),
  );
}

/**
 * pause: a look-alike of the infra image for the daemon's pause_image — the busybox layer plus
 * /pause, a shell loop that sleeps until SIGTERM/SIGINT (set pause_command = "/pause").
 */
export function pauseImage(): Promise<TestImage> {
  return cachedImage("pause", async (w) =>
    w.image(
      "pause",
      [
        await w.layer(await busyboxEntries(), "gzip"),
        await w.layer([file("pause", "#!/bin/sh\ntrap 'exit 0' TERM INT\nwhile :; do sleep 86400 & wait $!; done\n", 0o755)], "gzip"),
      ],
      { ...baseConfig("pause"), Entrypoint: ["/pause"], Cmd: [] },
    ),
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
  return cachedImage("multilayer", async (w) => {
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
  return cachedImage("multiplatform", async (w) => {
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
  return cachedImage(`big-${n}x${total}`, async (w) => {
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
  return cachedImage(`${name}-${tag}-${o.base ? "b" : "n"}`, async (w) => {
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
  hardlinkOutside: [
    { name: "shadow", type: "hardlink", linkname: "/etc/shadow" },
    { name: "shadow2", type: "hardlink", linkname: "../../etc/shadow" },
  ],
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
  pause: pauseImage,
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

// --- internal ---

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

const PASSWD = ["root:x:0:0:root:/root:/bin/sh", "app:x:1000:1000:app:/home/app:/bin/sh", "nobody:x:65534:65534:nobody:/nonexistent:/bin/false", ""].join("\n");

const GROUP = ["root:x:0:", "shadow:x:42:", "app:x:1000:", "extra:x:2000:app", "nogroup:x:65534:", ""].join("\n");
