import { availableParallelism } from "node:os";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { RuntimeError, notFound } from "../errors.ts";
import { log } from "../log/index.ts";
import type { LayerProgress, PullContext } from "./fetch-image.ts";
import { ImageStore, pidAlive, type ImageEntry } from "./image-store.ts";
import { findImage, isPinned } from "./lookup.ts";
import { hostPlatform, parsePlatform, type Platform } from "./manifest.ts";
import { loadPolicy, type Policy } from "./policy.ts";
import { candidates, pullSources } from "./pull-sources.ts";
import { formatRef } from "./reference.ts";
import { loadRegistriesConf, type RegistriesConf } from "./registries-conf.ts";
import { loadRegistriesD, registriesDirPath, type RegistriesD } from "./registries-d.ts";
import { credentialsFromFiles } from "./auth.ts";
import { Semaphore } from "./semaphore.ts";
import { SharedJobs } from "./shared-jobs.ts";
import type { ContainerImage, ImageFsInfo, ImageRecord, ImageServiceOptions, OciImageConfig, PullOptions, PullProgress } from "./types.ts";
import { traced } from "../log/trace.ts";

/** The pull machinery (pulling.ts), loaded on first use. */
const pulling = () => import("./pulling.ts");

/** Default containers-certs.d(5) directory. */
export const DEFAULT_CERTS_DIR = "/etc/containers/certs.d";

/**
 * The image service: pull, status, list, remove, fsInfo, and what containers need (layer dirs,
 * config). One per process; the daemon and `crio pull` may each have one on the same root.
 * Call init() once before use (it cleans what a crash left).
 */
export class ImageService {
  readonly store: ImageStore;
  #o: ImageServiceOptions;
  #registries!: RegistriesConf;
  #policy?: Policy;
  #policyError?: RuntimeError;
  #registriesD?: RegistriesD;
  #platform!: Platform;
  #downloads!: Semaphore;
  #unpacks = new Semaphore(Math.max(1, Math.min(4, availableParallelism())));
  #layerJobs = new SharedJobs<void, LayerProgress>();
  #pulls = new SharedJobs<ImageEntry, PullProgress>();
  #holds = new Map<string, number>();
  #configs = new Map<string, OciImageConfig>();

  /** Reads the configuration files; throws invalid-argument for a malformed registries.conf or platform. */
  constructor(o: ImageServiceOptions) {
    this.#o = { ...o };
    this.store = new ImageStore(o.root);
    this.#configure();
  }

  /**
   * Start-up: removes what an interrupted pull left (temp dirs, layers without an image); with
   * `repair` (internal_repair after an unclean shutdown) first checks every image (store.repair).
   */
  async init(o: { repair?: boolean } = {}): Promise<void> {
    if (o.repair) {
      l.warn(`checking the image store ${this.store.root} for damage because of an unclean shutdown`);
      const report = await this.store.repair();
      for (const line of report) l.warn(line);
      l.info(`image store check finished: ${report.length === 0 ? "no damage found" : `${report.length} repairs`}`);
    }
    await this.store.init();
    if (this.#o.bigFilesTemporaryDir) await sweepBigFiles(this.#o.bigFilesTemporaryDir);
  }

  /**
   * Pulls an image (mirrors, then the registry) and returns it. Concurrent pulls of the same
   * name, platform and credentials share one download.
   */
  async pull(ref: string, o: PullOptions = {}): Promise<ImageRecord> {
    const nsPolicy = this.#namespacePolicy(o.namespace);
    const key = JSON.stringify([ref.trim(), o.platform ?? "", o.auth ?? null, o.authFile ?? "", nsPolicy?.file ?? ""]);
    const entry = await traced(
      "image.pull",
      () =>
        this.#pulls.run(
          key,
          o.signal,
          async (signal, progress) =>
            (await pulling()).pullImage(nsPolicy ? { ...this.#deps(), policy: nsPolicy, policyError: undefined } : this.#deps(), ref, {
              ...o,
              signal,
              onProgress: progress,
            }),
          o.onProgress,
        ),
      { attrs: { "image.ref": ref } },
    );
    return this.#record(this.store.read().images[entry.id] ?? entry);
  }

  /**
   * Resolves when every pull and layer download of this process has ended, cleanup included: a
   * cancelled caller returns at once while its jobs wind down, so a process about to exit
   * (`crio pull` after SIGINT) waits for this, then runs init() to drop what they left.
   */
  async idle(): Promise<void> {
    while (this.#pulls.size > 0 || this.#layerJobs.size > 0) {
      await this.#pulls.idle();
      await this.#layerJobs.idle();
    }
  }

  /**
   * Checks `name` (a reference the user gave) against the signature policy of pods in
   * `namespace` — `<signature_policy_dir>/<namespace>.json` when it exists, else the global one —
   * as CRI-O does again at container creation: an image pulled for one namespace cannot be run
   * in another whose policy refuses it. Signature requirements are verified against the stored
   * manifest and the signatures of its registry (lookaside, attachments). Throws
   * permission-denied (reject), failed-precondition (signatures missing or not accepted, or no
   * usable policy) or invalid-argument (a malformed name).
   */
  async checkPolicyFor(name: string, namespace?: string): Promise<void> {
    const policy = this.#namespacePolicy(namespace) ?? this.#policy;
    if (!policy) {
      if (this.#policyError) throw this.#policyError;
      return;
    }
    const logical = candidates(this.#registries, name)[0]!;
    const { policyVerifier, RegistryClient } = await pulling();
    const verify = policyVerifier(this.#deps(), policy, logical);
    if (!verify) return;
    const image = findImage(this.store.read(), this.#registries, name)?.image;
    const manifest = image && this.store.readBlob(image.manifestDigest);
    if (!image || !manifest)
      throw new RuntimeError("failed-precondition", `image "${name}" is not in the store with its manifest; pull it again to verify its signatures`);
    // sigstore attachments live on the registry: the first source (a mirror holds them beside the image)
    const src = pullSources(this.#registries, logical)[0]!;
    const d = this.#deps();
    const client = new RegistryClient({
      host: src.ref.domain,
      insecure: src.insecure,
      credentials: credentialsFromFiles(d.authFiles, src.ref),
      certsDir: d.certsDir,
      userAgent: d.userAgent,
    });
    await verify({ client, repo: src.ref.path, manifest, digest: image.manifestDigest });
  }

  /** What a container is created from: the image `ref` names (as status) with its run config and unpacked layers; undefined when it is not stored. */
  async forCreate(ref: string): Promise<ContainerImage | undefined> {
    const rec = this.status(ref);
    return rec && { id: rec.id, name: rec.repoTags[0] ?? rec.repoDigests[0] ?? "", config: rec.config.config ?? {}, layers: this.layers(rec.id) };
  }

  /** forCreate, pulling the image first (with `authFile`) when it is missing: the pause image. */
  async ensure(ref: string, authFile: string, signal?: AbortSignal): Promise<ContainerImage> {
    let rec = this.status(ref);
    if (!rec) {
      log.info(`Pulling image ${ref}`, { authFile: authFile || undefined });
      rec = await this.pull(ref, { signal, authFile: authFile || undefined });
    }
    return { id: rec.id, name: rec.repoTags[0] ?? ref, config: rec.config.config ?? {}, layers: this.layers(rec.id) };
  }

  /** The image `refOrId` names (id, id prefix, name:tag, name@digest, short name), or undefined. */
  status(refOrId: string): ImageRecord | undefined {
    const hit = findImage(this.store.read(), this.#registries, refOrId);
    return hit ? this.#record(hit.image) : undefined;
  }

  /** Every image, or those matching `filterRef` (same forms as status). */
  list(filterRef?: string): ImageRecord[] {
    if (filterRef) {
      const one = this.status(filterRef);
      return one ? [one] : [];
    }
    return Object.values(this.store.read().images).map((i) => this.#record(i));
  }

  /**
   * Removes an image. A tag of an image that has other tags only loses that tag; an id or digest
   * removes the image with all its names. Idempotent: an unknown image is not an error (see
   * api.proto, rpc RemoveImage). An image in use (isInUse) is refused with failed-precondition.
   */
  async remove(refOrId: string, isInUse: (imageId: string) => boolean): Promise<void> {
    const first = findImage(this.store.read(), this.#registries, refOrId);
    if (!first) return;
    await this.store.update(async (idx) => {
      const hit = findImage(idx, this.#registries, refOrId);
      if (!hit) return;
      const img = idx.images[hit.image.id]!;
      if (hit.by === "tag" && img.repoTags.length > 1) {
        img.repoTags = img.repoTags.filter((t) => t !== hit.name);
        return;
      }
      if (isInUse(img.id))
        throw new RuntimeError("failed-precondition", `image "${refOrId}" (${img.id}) is in use by a container; remove the containers that use it first`);
      delete idx.images[img.id];
      this.#configs.delete(img.id);
      await this.store.gc(idx, (d) => (this.#holds.get(d) ?? 0) > 0);
    });
  }

  /** Usage of the image store (ImageFsInfo): unpacked layers plus stored blobs. */
  fsInfo(): ImageFsInfo {
    const idx = this.store.read();
    let used = 0;
    let inodes = 0;
    for (const e of Object.values(idx.layers)) {
      used += e.usage;
      inodes += e.entries + 1;
    }
    const blobs = join(this.store.root, "blobs", "sha256");
    for (const f of readdirSync(blobs)) {
      try {
        used += Math.ceil(statSync(join(blobs, f)).size / 4096) * 4096;
        inodes++;
      } catch {
        // removed meanwhile
      }
    }
    return { mountpoint: this.store.root, usedBytes: used, inodesUsed: inodes, timestamp: Date.now() };
  }

  /** The image's unpacked layer directories, lowest first (overlay lowerdir is the reverse). Throws not-found. */
  layers(imageId: string): string[] {
    return this.#entry(imageId).layers.map((d) => this.store.layers.dir(d));
  }

  /** The image's OCI config. Throws not-found. */
  imageConfig(imageId: string): OciImageConfig {
    return this.#config(this.#entry(imageId));
  }

  /** The fully qualified name a reference means (its first candidate), e.g. "docker.io/library/busybox:latest". Throws invalid-argument. */
  resolve(ref: string): string {
    return this.candidates(ref)[0]!;
  }

  /** Every fully qualified name a (short) reference may mean, in the order a pull tries them. Throws invalid-argument. */
  candidates(ref: string): string[] {
    return candidates(this.#registries, ref).map(formatRef);
  }

  /**
   * Re-reads registries.conf (+ .d) and policy.json, applying reloadable option changes first
   * (SIGHUP). On a malformed file the previous configuration stays and the error is thrown.
   */
  reload(update: Partial<Omit<ImageServiceOptions, "root">> = {}): void {
    const prev = this.#o;
    this.#o = { ...this.#o, ...update };
    try {
      this.#configure();
    } catch (e) {
      this.#o = prev;
      this.#configure();
      throw e;
    }
  }

  // --- internal ---

  /**
   * `<policyDir>/<namespace>.json` when the namespace has one (read at each use: the files are
   * small and operators edit them); undefined otherwise. A file that cannot be parsed throws
   * failed-precondition naming it: that namespace's pulls and creations are refused.
   */
  #namespacePolicy(namespace: string | undefined): Policy | undefined {
    const dir = this.#o.policyDir;
    if (!dir || !namespace) return undefined;
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace))
      throw new RuntimeError("invalid-argument", `invalid namespace "${namespace}" for a signature policy lookup`);
    const file = join(dir, `${namespace}.json`);
    if (!existsSync(file)) return undefined;
    try {
      return loadPolicy(file);
    } catch (e) {
      throw new RuntimeError("failed-precondition", `the signature policy of namespace "${namespace}" cannot be used: ${RuntimeError.from(e).message}`);
    }
  }

  #configure(): void {
    const o = this.#o;
    const registries = loadRegistriesConf(o.registriesConfPath, o.registriesConfDir);
    if (o.shortNameMode) registries.shortNameMode = o.shortNameMode;
    const platform = o.platform ? parsePlatform(o.platform) : hostPlatform();
    let policy: Policy | undefined;
    let policyError: RuntimeError | undefined;
    if (o.policyPath) {
      try {
        policy = loadPolicy(o.policyPath);
      } catch (e) {
        const r = RuntimeError.from(e);
        if (r.kind !== "failed-precondition") throw r; // malformed: refuse the configuration
        policyError = r; // missing: pulls fail with this message
        l.warn("signature policy unavailable; pulls will be refused", { error: r.message });
      }
    }
    this.#registries = registries;
    this.#platform = platform;
    this.#policy = policy;
    this.#policyError = policyError;
    this.#registriesD = undefined; // read again when next needed
    this.#downloads = new Semaphore(o.maxParallelDownloads ?? 3);
  }

  #deps() {
    const o = this.#o;
    const ctx: PullContext = {
      store: this.store,
      certsDir: o.certsDir ?? DEFAULT_CERTS_DIR,
      authFiles: [o.globalAuthFile ?? "", ...(o.authFiles ?? [])].filter(Boolean),
      downloads: this.#downloads,
      unpacks: this.#unpacks,
      layerJobs: this.#layerJobs,
      holds: this.#holds,
      userAgent: o.userAgent,
      insecureRegistries: o.insecureRegistries,
      bigFilesDir: o.bigFilesTemporaryDir,
    };
    return {
      ...ctx,
      registries: this.#registries,
      policy: this.#policy,
      policyError: this.#policyError,
      registriesD: () => (this.#registriesD ??= loadRegistriesD(o.registriesDirPath ?? registriesDirPath())),
      platform: this.#platform,
      progressTimeoutMs: o.pullProgressTimeoutMs ?? 0,
    };
  }

  #entry(imageId: string): ImageEntry {
    const id = imageId.startsWith("sha256:") ? imageId : `sha256:${imageId}`;
    const img = this.store.read().images[id];
    if (!img) throw notFound("image", imageId);
    return img;
  }

  #config(img: ImageEntry): OciImageConfig {
    let c = this.#configs.get(img.id);
    if (!c) {
      const bytes = this.store.readBlob(img.id);
      if (!bytes) throw new RuntimeError("internal", `config blob of image ${img.id} is missing from the store`);
      c = JSON.parse(new TextDecoder().decode(bytes)) as OciImageConfig;
      this.#configs.set(img.id, c);
    }
    return c;
  }

  #record(img: ImageEntry): ImageRecord {
    const config = this.#config(img);
    const idx = this.store.read();
    const size = img.layers.reduce((n, d) => n + (idx.layers[d]?.size ?? 0), 0);
    const rec: ImageRecord = {
      id: img.id,
      repoTags: [...img.repoTags],
      repoDigests: [...img.repoDigests],
      size,
      pinned: isPinned(img, this.#o.pinnedImages ?? [], this.#o.pauseImage),
      config,
      manifestDigest: img.manifestDigest,
      layers: [...img.layers],
      pulledAt: img.pulledAt,
    };
    const user = config.config?.User;
    if (user) {
      rec.user = user;
      const name = user.split(":")[0]!;
      if (/^\d+$/.test(name)) rec.uid = Number(name);
      else if (name) rec.username = name;
    }
    return rec;
  }
}

// --- internal ---

const l = log.withTag("image");

/** Creates big_files_temporary_dir and removes the blob temp files dead processes left in it. */
async function sweepBigFiles(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const name of await readdir(dir)) {
    const m = /^(\d+)\.blob\./.exec(name);
    if (m && !pidAlive(Number(m[1]))) await rm(join(dir, name), { force: true });
  }
}
