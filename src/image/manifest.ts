import { RuntimeError, invalid } from "../errors.ts";
import { isDigest } from "./reference.ts";

/**
 * Manifest formats: OCI image index and Docker manifest list (choose the node's platform), OCI
 * image manifest and Docker schema 2. Docker schema 1 is refused with a message saying so.
 */

/** Media types we send in Accept and recognise. */
export const MEDIA = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerV1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerV1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
} as const;

/** The Accept header of a manifest request: every format we can use, newest first. */
export const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.dockerManifest].join(", ");

/** An OS/architecture[/variant] triple. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** A content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

/** A parsed manifest: a list of per-platform manifests, or one image. */
export type Manifest =
  | { kind: "index"; mediaType: string; manifests: Descriptor[] }
  | { kind: "image"; mediaType: string; config: Descriptor; layers: Descriptor[] };

/** Parses manifest bytes; `contentType` is the response header. `what` names the image in errors. */
export function parseManifest(bytes: Uint8Array, contentType: string, what: string): Manifest {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
  } catch {
    throw new RuntimeError("unknown", `manifest of ${what} is not valid JSON`);
  }
  const ct = contentType.split(";")[0]!.trim();
  const mt = typeof doc.mediaType === "string" ? doc.mediaType : ct;
  if (doc.schemaVersion === 1 || mt === MEDIA.dockerV1 || mt === MEDIA.dockerV1Signed)
    throw new RuntimeError(
      "failed-precondition",
      `image ${what} uses the Docker schema 1 manifest format, which is deprecated and not supported; push it again with a current client (Docker schema 2 or OCI)`,
    );
  if (Array.isArray(doc.manifests) || mt === MEDIA.ociIndex || mt === MEDIA.dockerList) {
    const list = Array.isArray(doc.manifests) ? doc.manifests : [];
    return { kind: "index", mediaType: mt || MEDIA.ociIndex, manifests: list.map((d, i) => descriptor(d, `${what} manifests[${i}]`)) };
  }
  if (doc.config && Array.isArray(doc.layers)) {
    const config = descriptor(doc.config, `${what} config`);
    if (config.mediaType && config.mediaType !== MEDIA.ociConfig && config.mediaType !== MEDIA.dockerConfig)
      throw invalid(`${what} is not a container image: its config has media type ${config.mediaType} (an OCI artifact?)`);
    return { kind: "image", mediaType: mt || MEDIA.ociManifest, config, layers: doc.layers.map((d, i) => descriptor(d, `${what} layers[${i}]`)) };
  }
  throw new RuntimeError("unknown", `manifest of ${what} has an unsupported media type ${mt || "(none)"}`);
}

/** The platform this process runs on, in OCI terms (GOOS/GOARCH spelling). */
export function hostPlatform(): Platform {
  const arch = ARCH[process.arch] ?? process.arch;
  const p: Platform = { os: "linux", architecture: arch };
  if (arch === "arm") p.variant = "v7";
  return p;
}

/** Parses "os/arch[/variant]" (e.g. "linux/arm64/v8"); throws invalid-argument. */
export function parsePlatform(s: string): Platform {
  const parts = s.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => !/^[a-z0-9_.-]+$/i.test(x)))
    throw invalid(`invalid platform "${s}": expected os/architecture[/variant], e.g. linux/amd64`);
  const p: Platform = { os: parts[0]!.toLowerCase(), architecture: ARCH[parts[1]!.toLowerCase()] ?? parts[1]!.toLowerCase() };
  if (parts[2]) p.variant = parts[2].toLowerCase();
  return p;
}

/** "os/arch[/variant]" */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

/**
 * Picks the manifest for `want` from an index: same OS and architecture, then the best variant
 * (the exact one; for arm64 "" and "v8" are the same; for arm a lower variant runs on a higher
 * one). Throws not-found listing the platforms the index has.
 */
export function selectManifest(index: Descriptor[], want: Platform, what: string): Descriptor {
  const rank = (d: Descriptor): number => {
    const p = d.platform;
    if (!p || p.os !== want.os || (ARCH[p.architecture] ?? p.architecture) !== want.architecture) return -1;
    const have = normVariant(want.architecture, p.variant);
    const need = normVariant(want.architecture, want.variant);
    if (have === need) return 100;
    if (!need) return have ? 50 : 100;
    if (!have) return 60;
    if (want.architecture === "arm" && /^v\d$/.test(have) && /^v\d$/.test(need) && have < need) return 40 + Number(have[1]);
    return -1;
  };
  let best: Descriptor | undefined;
  let bestRank = -1;
  for (const d of index) {
    const r = rank(d);
    if (r > bestRank) {
      best = d;
      bestRank = r;
    }
  }
  if (!best) {
    const have = index.map((d) => (d.platform ? formatPlatform(d.platform) : "?")).filter((x) => x !== "unknown/unknown");
    throw new RuntimeError("not-found", `image ${what} has no manifest for platform ${formatPlatform(want)} (it has: ${have.join(", ") || "none"})`);
  }
  return best;
}

// --- internal ---

const ARCH: Record<string, string> = { x64: "amd64", x86_64: "amd64", ia32: "386", aarch64: "arm64", armhf: "arm", armel: "arm", ppc64: "ppc64le" };

function normVariant(arch: string, v: string | undefined): string {
  const x = (v ?? "").toLowerCase();
  if (arch === "arm64" && (x === "v8" || x === "8")) return "";
  return x;
}

function descriptor(d: unknown, where: string): Descriptor {
  if (!d || typeof d !== "object") throw new RuntimeError("unknown", `${where}: not a descriptor`);
  const o = d as Record<string, unknown>;
  if (typeof o.digest !== "string" || !isDigest(o.digest)) throw new RuntimeError("unknown", `${where}: bad digest ${JSON.stringify(o.digest)}`);
  if (typeof o.size !== "number" || !Number.isSafeInteger(o.size) || o.size < 0)
    throw new RuntimeError("unknown", `${where}: bad size ${JSON.stringify(o.size)}`);
  const out: Descriptor = { mediaType: typeof o.mediaType === "string" ? o.mediaType : "", digest: o.digest, size: o.size };
  const p = o.platform as Record<string, unknown> | undefined;
  if (p && typeof p.os === "string" && typeof p.architecture === "string")
    out.platform = { os: p.os, architecture: p.architecture, ...(typeof p.variant === "string" && p.variant ? { variant: p.variant } : {}) };
  if (o.annotations && typeof o.annotations === "object") out.annotations = o.annotations as Record<string, string>;
  return out;
}
