/**
 * The per-pod attachment cache (libcni's result cache, one file per pod): written BEFORE the ADD
 * (so a crash mid-ADD still leaves enough to DEL) and again with the result after it. DEL, CHECK
 * and a restarted daemon use the cached network list, parameters, runtimeConfig and result.
 * On disk: <cacheDir>/<podId>.json = {"v":1,"data":CachedAttachment}, written atomically.
 */
import { mkdirSync, readFileSync, readdirSync } from "node:fs";
import { unlink } from "node:fs/promises";
import { join } from "node:path";
import { RuntimeError } from "../errors.ts";
import { writeFileAtomic, fsyncDirAsync } from "../store/atomic-file.ts";
import type { NetworkList } from "./conf.ts";
import type { Attachment } from "./cni.ts";

/** What is remembered about one pod's network attachment. */
export interface CachedAttachment extends Attachment {
  podId: string;
  network: NetworkList;
  /** The final ADD result as the plugin returned it; absent until ADD succeeded. */
  result?: unknown;
}

/** Attachment records under one directory. */
export class AttachmentCache {
  constructor(readonly dir: string) {}

  /** The record for a pod, or undefined; a corrupt or unknown-version file throws. */
  get(podId: string): CachedAttachment | undefined {
    let text: string;
    try {
      text = readFileSync(this.#path(podId), "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
    let rec: { v?: unknown; data?: CachedAttachment };
    try {
      rec = JSON.parse(text);
    } catch {
      throw new RuntimeError("internal", `cni cache ${this.#path(podId)} is corrupt`);
    }
    if (rec.v !== 1 || !rec.data) throw new RuntimeError("internal", `cni cache ${this.#path(podId)} has unknown version ${String(rec.v)}`);
    return rec.data;
  }

  /** Writes (replaces) a pod's record atomically. */
  async put(rec: CachedAttachment): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.#path(rec.podId), JSON.stringify({ v: 1, data: rec }), 0o600);
  }

  /** Removes a pod's record; missing is fine. */
  async remove(podId: string): Promise<void> {
    try {
      await unlink(this.#path(podId));
      await fsyncDirAsync(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }

  /** Pod ids that have a record. */
  list(): string[] {
    try {
      return readdirSync(this.dir)
        .filter((n) => n.endsWith(".json"))
        .map((n) => n.slice(0, -5));
    } catch {
      return [];
    }
  }

  #path(podId: string): string {
    return join(this.dir, `${podId}.json`);
  }
}
