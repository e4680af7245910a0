import { rm } from "node:fs/promises";
import { join } from "node:path";
import { insecureByConfig } from "./insecure-registries.ts";
import { RuntimeError } from "../errors.ts";
import { credentialsFromFiles, type Credentials } from "./auth.ts";
import type { ImageEntry, ImageStore, StoreIndex } from "./image-store.ts";
import { parseManifest, selectManifest, type Descriptor, type Platform } from "./manifest.ts";
import type { PullSource } from "./pull-sources.ts";
import { formatRef, repoName, type ImageRef } from "./reference.ts";
import { RegistryClient } from "./registry-client.ts";
import type { Semaphore } from "./semaphore.ts";
import type { SharedJobs } from "./shared-jobs.ts";
import type { OciImageConfig, PullProgress } from "./types.ts";

/**
 * Pulls one image from one source (a mirror or the registry): manifest (through the index for
 * the wanted platform), config, then every missing layer — downloaded, verified, unpacked and
 * placed by a job shared with concurrent pulls — and finally the image entry, written under the
 * store lock only when all its layers are in place.
 */

/** Long-lived parts of the image service a pull uses. */
export interface PullContext {
  store: ImageStore;
  certsDir?: string;
  /** global_auth_file then the other auth files, in order. */
  authFiles: string[];
  downloads: Semaphore;
  unpacks: Semaphore;
  layerJobs: SharedJobs<void, LayerProgress>;
  /** Layers that running pulls of this process need (protects them from GC). */
  holds: Map<string, number>;
  userAgent?: string;
  /** crio.conf insecure_registries: HOST[:PORT] or CIDR entries (insecure-registries.ts). */
  insecureRegistries?: readonly string[];
  /** crio.conf big_files_temporary_dir: where layer blobs are downloaded to; default the store's tmp/. */
  bigFilesDir?: string;
}

/** Progress of a shared layer job. */
export interface LayerProgress {
  phase: "downloading" | "unpacking";
  n: number;
}

/** One attempt: the name the image gets, where it comes from, and the pull's settings. */
export interface SourceRequest {
  logical: ImageRef;
  source: PullSource;
  platform: Platform;
  /** Credentials from the pull's AuthConfig (else the auth files are consulted). */
  credentials?: Credentials;
  signal: AbortSignal;
  emit: (p: PullProgress) => void;
  /** Called on every byte received (progress watchdog). */
  touch: () => void;
  /**
   * The signature policy's check of the image manifest (signedBy, sigstoreSigned), run before
   * the config and layers are fetched; it throws to refuse the image. Absent: nothing to verify.
   */
  verify?: (v: { client: RegistryClient; repo: string; manifest: Uint8Array; digest: string }) => Promise<void>;
}

/** Pulls from one source; returns the committed image entry. */
export async function pullFromSource(ctx: PullContext, req: SourceRequest): Promise<ImageEntry> {
  const src = req.source.ref;
  const what = formatRef(src);
  const credentials = req.credentials ?? credentialsFromFiles(ctx.authFiles, src);
  const insecure = req.source.insecure || (await insecureByConfig(ctx.insecureRegistries ?? [], src.domain));
  const client = new RegistryClient({ host: src.domain, insecure, credentials, certsDir: ctx.certsDir, signal: req.signal, userAgent: ctx.userAgent });
  const top = await client.manifest(src.path, src.digest ?? src.tag!);
  req.touch();
  const blobs = new Map<string, Uint8Array>([[top.digest, top.bytes]]);
  let m = parseManifest(top.bytes, top.contentType, what);
  let manifestDigest = top.digest;
  if (m.kind === "index") {
    const d = selectManifest(m.manifests, req.platform, what);
    const child = await client.manifest(src.path, d.digest);
    req.touch();
    m = parseManifest(child.bytes, child.contentType || d.mediaType, what);
    if (m.kind !== "image") throw new RuntimeError("unknown", `image ${what}: the manifest list points at another manifest list`);
    manifestDigest = child.digest;
    blobs.set(child.digest, child.bytes);
  }
  if (req.verify) await req.verify({ client, repo: src.path, manifest: blobs.get(manifestDigest)!, digest: manifestDigest });
  const cfg = m.config;
  const cfgBytes = ctx.store.readBlob(cfg.digest) ?? (await client.blobBytes(src.path, cfg.digest, cfg.size));
  req.touch();
  const config = parseConfig(cfgBytes, what, m.layers.length);
  blobs.set(cfg.digest, cfgBytes);
  req.emit({
    type: "manifest",
    ref: formatRef(req.logical),
    source: what,
    manifestDigest,
    layers: m.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
  });
  const layers = m.layers.map((desc, i) => ({ desc, diffId: config.rootfs.diff_ids[i]! }));

  // A failed layer cancels its siblings (their shared jobs stop when no other pull waits on them).
  const ac = new AbortController();
  const onAbort = () => ac.abort(req.signal.reason);
  req.signal.addEventListener("abort", onAbort, { once: true });
  for (const l of layers) ctx.holds.set(l.diffId, (ctx.holds.get(l.diffId) ?? 0) + 1);
  let ok = false;
  try {
    for (let round = 1; ; round++) {
      await Promise.all(
        layers.map((l) =>
          ensureLayer(ctx, client, src.path, l.desc, l.diffId, req, ac.signal).catch((e) => {
            ac.abort(e);
            throw e;
          }),
        ),
      );
      const entry = await commit(ctx, req, { topDigest: top.digest, manifestDigest, configDigest: cfg.digest, diffIds: layers.map((l) => l.diffId), blobs });
      if (entry) {
        ok = true;
        req.emit({ type: "done", ref: formatRef(req.logical), id: entry.id });
        return entry;
      }
      if (round >= 3) throw new RuntimeError("unavailable", `image ${what}: its layers were removed while it was being pulled, ${round} times`);
    }
  } finally {
    req.signal.removeEventListener("abort", onAbort);
    for (const l of layers) {
      const n = (ctx.holds.get(l.diffId) ?? 1) - 1;
      if (n > 0) ctx.holds.set(l.diffId, n);
      else ctx.holds.delete(l.diffId);
    }
    if (!ok) {
      // the layers cancelled with the failure are still removing their temp files: let them
      // (after one turn of the event loop, by which their waits have seen the cancellation)
      await Bun.sleep(0);
      await Promise.all(layers.map((l) => ctx.layerJobs.unwound(l.diffId, UNWIND_WAIT_MS)));
      await ctx.store.update((idx) => ctx.store.gc(idx, (d) => (ctx.holds.get(d) ?? 0) > 0)).catch(() => {});
    }
  }
}

/** Validates an image config: JSON, rootfs of type "layers" with one diff_id per layer. */
export function parseConfig(bytes: Uint8Array, what: string, layerCount: number): OciImageConfig {
  let c: OciImageConfig;
  try {
    c = JSON.parse(new TextDecoder().decode(bytes)) as OciImageConfig;
  } catch {
    throw new RuntimeError("unknown", `image ${what}: its config is not valid JSON`);
  }
  const ids = c?.rootfs?.diff_ids;
  if (!Array.isArray(ids) || ids.some((d) => typeof d !== "string" || !/^sha(256:[a-f0-9]{64}|512:[a-f0-9]{128})$/.test(d)))
    throw new RuntimeError("unknown", `image ${what}: its config has no valid rootfs.diff_ids`);
  if (ids.length !== layerCount)
    throw new RuntimeError("unknown", `image ${what}: the manifest lists ${layerCount} layers but the config has ${ids.length} diff_ids`);
  return c;
}

// --- internal ---

/** A new blob temp file name in big_files_temporary_dir: `<pid>.blob.<random>` (swept when the pid is dead). */
function bigFileTemp(dir: string): string {
  return join(dir, `${process.pid}.blob.${Math.random().toString(36).slice(2, 10)}`);
}

/** How long a failed pull waits for its cancelled layer jobs to clean up before it reports. */
const UNWIND_WAIT_MS = 5000;

async function ensureLayer(
  ctx: PullContext,
  client: RegistryClient,
  repo: string,
  desc: Descriptor,
  diffId: string,
  req: SourceRequest,
  signal: AbortSignal,
): Promise<void> {
  const present = () => ctx.store.layers.has(diffId) && !!ctx.store.read().layers[diffId];
  if (present()) {
    req.emit({ type: "layer", digest: desc.digest, state: "exists", current: desc.size, total: desc.size });
    return;
  }
  let downloaded = 0;
  let unpacked = 0;
  let last = 0;
  let phase: LayerProgress["phase"] = "downloading";
  const onProgress = (p: LayerProgress) => {
    req.touch();
    if (p.phase === "downloading") downloaded += p.n;
    else unpacked += p.n;
    const now = Date.now();
    if (p.phase === phase && now - last < 100) return;
    phase = p.phase;
    last = now;
    req.emit({ type: "layer", digest: desc.digest, state: p.phase, current: p.phase === "downloading" ? downloaded : unpacked, total: desc.size });
  };
  await ctx.layerJobs.run(
    diffId,
    signal,
    async (jobSignal, progress) => {
      if (present()) return;
      const blob = ctx.bigFilesDir ? bigFileTemp(ctx.bigFilesDir) : ctx.store.layers.tempPath("blob");
      try {
        await ctx.downloads.use(
          () => client.blobToFile(repo, desc.digest, desc.size, blob, (n) => progress({ phase: "downloading", n }), jobSignal),
          jobSignal,
        );
        const { dir, stats } = await ctx.unpacks.use(
          () => ctx.store.layers.unpackToTemp(blob, diffId, { layer: desc.digest, signal: jobSignal, onBytes: (n) => progress({ phase: "unpacking", n }) }),
          jobSignal,
        );
        await rm(blob, { force: true });
        try {
          await ctx.store.update(async (idx) => {
            const placed = await ctx.store.layers.place(dir, diffId);
            const e = idx.layers[diffId];
            if (!e || placed) idx.layers[diffId] = { size: stats.tarBytes, usage: stats.usageBytes, entries: stats.entries, heldBy: process.pid };
            else if (!referenced(idx, diffId)) e.heldBy = process.pid;
          });
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      } finally {
        await rm(blob, { force: true });
      }
    },
    onProgress,
  );
  req.emit({ type: "layer", digest: desc.digest, state: "done", current: desc.size, total: desc.size });
}

interface CommitParts {
  topDigest: string;
  manifestDigest: string;
  configDigest: string;
  diffIds: string[];
  blobs: Map<string, Uint8Array>;
}

/** Writes the image entry under the lock; undefined when a layer vanished meanwhile (the caller fetches it again). */
async function commit(ctx: PullContext, req: SourceRequest, p: CommitParts): Promise<ImageEntry | undefined> {
  return ctx.store.update(async (idx) => {
    if (p.diffIds.some((d) => !idx.layers[d] || !ctx.store.layers.has(d))) return undefined;
    for (const [d, b] of p.blobs) await ctx.store.putBlob(d, b);
    for (const d of p.diffIds) delete idx.layers[d]!.heldBy;
    const repo = repoName(req.logical);
    const tag = req.logical.tag ? `${repo}:${req.logical.tag}` : undefined;
    if (tag) for (const other of Object.values(idx.images)) if (other.id !== p.configDigest) other.repoTags = other.repoTags.filter((t) => t !== tag);
    const digests = [`${repo}@${p.topDigest}`, `${repo}@${p.manifestDigest}`];
    const prev = idx.images[p.configDigest];
    const entry: ImageEntry = {
      id: p.configDigest,
      repoTags: uniq([...(prev?.repoTags ?? []), ...(tag ? [tag] : [])]),
      repoDigests: uniq([...(prev?.repoDigests ?? []), ...digests]),
      manifestDigest: p.manifestDigest,
      layers: p.diffIds,
      blobs: uniq([...(prev?.blobs ?? []), ...p.blobs.keys()]),
      pulledAt: Date.now(),
    };
    idx.images[p.configDigest] = entry;
    return entry;
  });
}

function referenced(idx: StoreIndex, diffId: string): boolean {
  return Object.values(idx.images).some((i) => i.layers.includes(diffId));
}

function uniq(xs: string[]): string[] {
  return [...new Set(xs)];
}
