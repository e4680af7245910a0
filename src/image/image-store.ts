import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { RuntimeError, messageOf } from "../errors.ts";
import { log } from "../log/index.ts";
import { LayerStore } from "../storage/index.ts";
import { writeFileAtomic } from "../store/atomic-file.ts";
import { pidAlive } from "../sys/process.ts";
import { FileLock } from "./file-lock.ts";

/**
 * The image store under one root directory (paths.images):
 *
 *   <root>/images.json          the index: images by id, layers by diff_id (written atomically)
 *   <root>/blobs/sha256/<hex>   manifests, manifest lists and configs, content-addressed
 *   <root>/layers/, tmp/        unpacked layers (storage/layers.ts)
 *   <root>/lock                 the inter-process lock (daemon and `crio pull`)
 *
 * Readers never lock: images.json is replaced by rename, so a read sees the old or the new
 * index. Writers take the lock, re-read the index, change it, write it, release. An image is
 * visible only once its entry is in the index, which is written after all its layers and blobs
 * are in place; anything else left by a crash is removed by init().
 */

/** One image in the index. */
export interface ImageEntry {
  /** "sha256:<hex>" of the config. */
  id: string;
  repoTags: string[];
  repoDigests: string[];
  /** Digest of the image manifest (the per-platform one). */
  manifestDigest: string;
  /** diff_ids, lowest layer first. */
  layers: string[];
  /** Blobs this image keeps: manifest, config, and the manifest list it was pulled through. */
  blobs: string[];
  /** Milliseconds since the epoch of the last pull. */
  pulledAt: number;
}

/** One unpacked layer in the index. */
export interface LayerEntry {
  /** Bytes of the uncompressed tar. */
  size: number;
  /** Estimated disk usage and entry count (for fsInfo). */
  usage: number;
  entries: number;
  /** pid of the pull that placed it while no image references it yet. */
  heldBy?: number;
}

/** The whole index. */
export interface StoreIndex {
  v: 1;
  images: Record<string, ImageEntry>;
  layers: Record<string, LayerEntry>;
}

/** The on-disk image store. */
export class ImageStore {
  readonly root: string;
  readonly layers: LayerStore;
  readonly indexPath: string;
  #lock: FileLock;
  #cache?: { key: string; index: StoreIndex };

  /** Creates the layout under `root` when missing (nothing is cleaned until init()). */
  constructor(root: string) {
    this.root = root;
    mkdirSync(join(root, "blobs", "sha256"), { recursive: true, mode: 0o700 });
    this.layers = new LayerStore(root);
    this.indexPath = join(root, "images.json");
    this.#lock = new FileLock(join(root, "lock"));
  }

  /**
   * Start-up cleanup under the lock: layers no image references and no live pull holds (a pull
   * killed between placing a layer and writing its image), temp dirs of dead processes, image
   * entries whose layers are gone, and unreferenced blobs.
   */
  async init(): Promise<void> {
    await this.#lock.with(async () => {
      const idx = this.#readFresh();
      const before = JSON.stringify(idx);
      await this.gc(idx, () => false);
      // an index the cleanup left as it was is not rewritten (a write fsyncs the file and its dir)
      if (JSON.stringify(idx) !== before) await this.#write(idx);
    });
  }

  /**
   * Garbage collection, to run inside update(): removes layers that no image references, unless
   * held by a pull still running in another live process (`heldBy`) or in this one
   * (`heldHere`); then temp dirs of dead processes and blobs no image lists.
   */
  async gc(idx: StoreIndex, heldHere: (diffId: string) => boolean): Promise<void> {
    for (const [id, img] of Object.entries(idx.images))
      if (img.layers.some((d) => !this.layers.has(d))) {
        l.warn("image has lost a layer; dropping it from the index", { image: id });
        delete idx.images[id];
      }
    const keep = new Set<string>();
    for (const img of Object.values(idx.images)) for (const d of img.layers) keep.add(d);
    for (const [d, e] of Object.entries(idx.layers)) {
      if (keep.has(d)) continue;
      const holder = e.heldBy;
      if (holder && holder !== process.pid && pidAlive(holder)) keep.add(d);
      else if (holder === process.pid && heldHere(d)) keep.add(d);
    }
    await this.layers.cleanup(keep);
    for (const d of Object.keys(idx.layers)) if (!keep.has(d) || !this.layers.has(d)) delete idx.layers[d];
    await this.#gcBlobs(idx);
    for (const name of readdirSync(this.root)) {
      const tmp = /^images\.json\.tmp-(\d+)-/.exec(name); // an index write cut short by a crash
      if (tmp && !pidAlive(Number(tmp[1]))) await rm(join(this.root, name), { force: true });
    }
  }

  /**
   * internal_repair, after an unclean shutdown: checks every image under the lock — each of its
   * blobs (manifest, config, list) present with the digest it is named by, each of its layers in
   * the index and on disk — and removes the images that fail (their layers and blobs then go
   * with the start-up GC). An index that cannot be read is set aside (`images.json.damaged-<ms>`)
   * and the store starts empty. Returns one line per removal, for the log.
   */
  async repair(): Promise<string[]> {
    const report: string[] = [];
    await this.#lock.with(async () => {
      let idx: StoreIndex;
      try {
        idx = this.#readFresh();
      } catch (e) {
        const aside = `${this.indexPath}.damaged-${Date.now()}`;
        renameSync(this.indexPath, aside);
        report.push(`image index unreadable (${messageOf(e)}): moved to ${aside}, the store starts empty`);
        idx = { v: 1, images: {}, layers: {} };
      }
      for (const [id, img] of Object.entries(idx.images)) {
        const why = this.#damage(idx, img);
        if (!why) continue;
        report.push(`removed damaged image ${id} (${[...img.repoTags, ...img.repoDigests][0] ?? "untagged"}): ${why}`);
        delete idx.images[id];
      }
      for (const d of Object.keys(idx.layers))
        if (!this.layers.has(d)) {
          report.push(`removed layer ${d} from the index: its directory is missing`);
          delete idx.layers[d];
        }
      await this.#write(idx);
    });
    return report;
  }

  /** The current index (cached; re-read when the file changed on disk). Never locks. */
  read(): StoreIndex {
    let key = "";
    try {
      const st = statSync(this.indexPath);
      key = `${st.ino}:${st.mtimeMs}:${st.size}`;
    } catch {
      key = "none";
    }
    if (this.#cache?.key === key) return this.#cache.index;
    const index = this.#load();
    this.#cache = { key, index };
    return index;
  }

  /** Runs `fn` on a fresh copy of the index under the lock and writes the result. */
  async update<T>(fn: (idx: StoreIndex) => T | Promise<T>): Promise<T> {
    return this.#lock.with(async () => {
      const idx = this.#readFresh();
      const out = await fn(idx);
      await this.#write(idx);
      return out;
    });
  }

  /** Runs `fn` under the store lock without changing the index (e.g. placing layers). */
  locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.#lock.with(fn);
  }

  /** Where a blob lives. */
  blobPath(digest: string): string {
    const [algo, hex] = digest.split(":");
    if (algo !== "sha256" || !/^[a-f0-9]{64}$/.test(hex ?? "")) throw new RuntimeError("invalid-argument", `bad blob digest "${digest}"`);
    return join(this.root, "blobs", "sha256", hex!);
  }

  /** True when the blob is stored. */
  hasBlob(digest: string): boolean {
    return digest.startsWith("sha256:") && existsSync(this.blobPath(digest));
  }

  /** Stores a (verified) blob atomically; a no-op when present. */
  async putBlob(digest: string, bytes: Uint8Array): Promise<void> {
    if (this.hasBlob(digest)) return;
    await writeFileAtomic(this.blobPath(digest), bytes, 0o600);
  }

  /** A stored blob's bytes, or undefined. */
  readBlob(digest: string): Uint8Array | undefined {
    try {
      return readFileSync(this.blobPath(digest));
    } catch {
      return undefined;
    }
  }

  // --- internal ---

  /** Why an image is damaged or incomplete, or undefined when it is whole. */
  #damage(idx: StoreIndex, img: ImageEntry): string | undefined {
    for (const b of new Set([img.id, ...img.blobs])) {
      const bytes = this.readBlob(b);
      if (!bytes) return `blob ${b} is missing`;
      const got = `sha256:${new Bun.CryptoHasher("sha256").update(bytes).digest("hex")}`;
      if (got !== b) return `blob ${b} does not match its digest (${got})`;
    }
    for (const d of img.layers) {
      if (!idx.layers[d]) return `layer ${d} is not in the index`;
      if (!this.layers.has(d)) return `layer ${d} is missing from disk`;
    }
    return undefined;
  }

  #readFresh(): StoreIndex {
    const idx = this.#load();
    this.#cache = undefined;
    return idx;
  }

  #load(): StoreIndex {
    if (!existsSync(this.indexPath)) return { v: 1, images: {}, layers: {} };
    let doc: StoreIndex;
    try {
      doc = JSON.parse(readFileSync(this.indexPath, "utf8")) as StoreIndex;
    } catch (e) {
      throw new RuntimeError("internal", `image index ${this.indexPath} is unreadable: ${messageOf(e)}`);
    }
    if (doc.v !== 1) throw new RuntimeError("failed-precondition", `image index ${this.indexPath} has unknown version ${JSON.stringify(doc.v)}`);
    doc.images ??= {};
    doc.layers ??= {};
    return doc;
  }

  async #write(idx: StoreIndex): Promise<void> {
    await writeFileAtomic(this.indexPath, JSON.stringify(idx), 0o600);
    this.#cache = undefined;
  }

  async #gcBlobs(idx: StoreIndex): Promise<void> {
    const keep = new Set<string>();
    for (const img of Object.values(idx.images)) for (const b of img.blobs) keep.add(b);
    const dir = join(this.root, "blobs", "sha256");
    for (const name of readdirSync(dir)) {
      if (keep.has(`sha256:${name}`)) continue;
      const tmp = /\.tmp-(\d+)-/.exec(name); // an atomic write in progress (or left by a crash)
      if (tmp && pidAlive(Number(tmp[1]))) continue;
      await rm(join(dir, name), { force: true });
    }
  }
}

/** Whether process `pid` exists (moved to sys/process.ts; re-exported for image/service.ts). */
export { pidAlive };

// --- internal ---

const l = log.withTag("image");
