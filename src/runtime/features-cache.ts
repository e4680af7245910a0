/**
 * What each runtime's `features` answered, kept in `<runroot>/runtime-features.json` so that a
 * restarted daemon does not start runc and crun again to ask (two program starts on the way to
 * its first Status; CRI-O asks once per start). An entry is used only while the runtime binary is
 * the very file it was asked of — same path, device, inode, size, mtime and ctime (an upgrade
 * replaces the file: a new inode and ctime) — and the kernel is the same release; anything else,
 * or a file that cannot be read, means asking the runtime again. Only answers of `features`
 * itself are kept: a static record (the runtime has no `features`, or asking it failed, maybe
 * for a moment under load) is asked for again at the next start. The runroot is a tmpfs: a
 * reboot empties it.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { RuntimeFeatures } from "../oci/index.ts";
import { writeFileAtomic } from "../store/index.ts";
import { kernelRelease } from "../sys/process.ts";

/** What identifies the binary and the kernel an answer was given on. */
export interface FeaturesStamp {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  kernel: string;
}

/** The file system and kernel as the cache sees them (fakes in unit tests). */
export interface FeaturesCacheIo {
  /** The binary's stamp without the kernel; undefined when it cannot be stat'ed. */
  stat(path: string): Omit<FeaturesStamp, "kernel"> | undefined;
  kernel(): string;
  /** The cache file's text; undefined when it does not exist or cannot be read. */
  read(file: string): string | undefined;
  write(file: string, text: string): Promise<void>;
}

const realIo: FeaturesCacheIo = {
  stat(path) {
    try {
      const s = statSync(path);
      return { dev: s.dev, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs };
    } catch {
      return undefined;
    }
  },
  kernel: kernelRelease,
  read(file) {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return undefined;
    }
  },
  write: (file, text) => writeFileAtomic(file, text, 0o600),
};

interface Entry {
  stamp: FeaturesStamp;
  features: RuntimeFeatures;
}

/** The cache file's name under the runroot. */
export const FEATURES_CACHE_FILE = "runtime-features.json";
const VERSION = 1;

/** The runtimes' `features` answers, by binary path, in one file. */
export class FeaturesCache {
  readonly file: string;
  readonly #io: FeaturesCacheIo;
  /** Writes one after the other, each merging into what the file holds then. */
  #writing: Promise<void> = Promise.resolve();

  constructor(runroot: string, io: FeaturesCacheIo = realIo) {
    this.file = join(runroot, FEATURES_CACHE_FILE);
    this.#io = io;
  }

  /**
   * The features of the runtime binary at `path`: the kept answer when it is still valid, else
   * `ask()`'s (kept when it came from `features`). A failure to keep it is not an error.
   */
  async features(path: string, ask: () => Promise<RuntimeFeatures>): Promise<RuntimeFeatures> {
    const st = this.#io.stat(path);
    const stamp = st ? { ...st, kernel: this.#io.kernel() } : undefined;
    if (stamp) {
      const kept = this.#entries()[path];
      if (kept && sameStamp(kept.stamp, stamp) && wellFormed(kept.features)) return kept.features;
    }
    const f = await ask();
    if (stamp && f.source === "features") await this.#keep(path, { stamp, features: f }).catch(() => {});
    return f;
  }

  // --- internal ---

  #entries(): Record<string, Entry> {
    const text = this.#io.read(this.file);
    if (!text) return {};
    try {
      const o = JSON.parse(text) as { v?: unknown; entries?: Record<string, Entry> };
      return o.v === VERSION && o.entries && typeof o.entries === "object" ? o.entries : {};
    } catch {
      return {}; // unreadable: asked again, and rewritten
    }
  }

  #keep(path: string, e: Entry): Promise<void> {
    const next = this.#writing.then(() => this.#io.write(this.file, JSON.stringify({ v: VERSION, entries: { ...this.#entries(), [path]: e } })));
    this.#writing = next.catch(() => {});
    return next;
  }
}

function wellFormed(f: RuntimeFeatures | undefined): f is RuntimeFeatures {
  return (
    !!f &&
    f.source === "features" &&
    Array.isArray(f.mountOptions) &&
    Array.isArray(f.namespaces) &&
    typeof f.rro === "boolean" &&
    typeof f.idmap === "boolean" &&
    typeof f.cgroup === "object" &&
    f.cgroup !== null
  );
}

function sameStamp(a: FeaturesStamp | undefined, b: FeaturesStamp): boolean {
  return !!a && a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.kernel === b.kernel;
}
