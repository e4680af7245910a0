import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { RuntimeError } from "../errors.ts";
import { log } from "../log/index.ts";
import { fsyncDirAsync } from "../store/atomic-file.ts";
import { pidAlive } from "../sys/process.ts";
import type { LayerStats } from "./tar-guard.ts";
import { unpackLayer } from "./unpack.ts";

export type { LayerStats } from "./tar-guard.ts";

/**
 * Unpacked image layers, each in its own directory keyed by its diff_id and shared by every
 * image that has it (a layer's content does not depend on its parents; overlay stacks them):
 *
 *   <root>/layers/<diff-id hex>/   the layer's files, whiteouts in overlay's form (a lowerdir)
 *   <root>/tmp/<pid>.<random>/     work in progress of one process; renamed into layers/ when done
 *
 * A layer directory appears only by rename, complete. Whoever owns the index decides which layers
 * are referenced; cleanup() removes the others and the temp dirs of dead processes.
 */
export class LayerStore {
  readonly layersDir: string;
  readonly tmpDir: string;

  /** `root` is the image store's root (paths.images). Creates the subdirectories. */
  constructor(root: string) {
    this.layersDir = join(root, "layers");
    this.tmpDir = join(root, "tmp");
    mkdirSync(this.layersDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
  }

  /** The directory of a layer (whether or not it exists). */
  dir(diffId: string): string {
    return join(this.layersDir, hexOf(diffId));
  }

  /** True when the layer is unpacked. */
  has(diffId: string): boolean {
    return existsSync(this.dir(diffId));
  }

  /** A new private temp path under tmp/ for this process (not created). */
  tempPath(what: string): string {
    return join(this.tmpDir, `${process.pid}.${what}.${Math.random().toString(36).slice(2, 10)}`);
  }

  /**
   * Unpacks `blobFile` into a new temp dir and returns it with the layer's stats; on failure the
   * temp dir is removed and the error thrown.
   */
  async unpackToTemp(
    blobFile: string,
    diffId: string,
    o: { layer: string; signal?: AbortSignal; onBytes?: (n: number) => void },
  ): Promise<{ dir: string; stats: LayerStats }> {
    const dir = await mkdtemp(join(this.tmpDir, `${process.pid}.unpack.`));
    try {
      // mkdtemp makes 0700; a layer without a "./" entry keeps its root's mode, and the overlay
      // root takes it: non-root container users could not even resolve "/" (containers/storage: 0755).
      await chmod(dir, 0o755);
      const stats = await unpackLayer({ blobFile, diffId, dest: dir, layer: o.layer, signal: o.signal, onBytes: o.onBytes });
      return { dir, stats };
    } catch (e) {
      await rm(dir, { recursive: true, force: true }).catch(() => {});
      throw e;
    }
  }

  /**
   * Moves an unpacked temp dir into place. Returns false (and removes the temp dir) when the layer
   * is already there, e.g. placed by another process meanwhile.
   */
  async place(tempDir: string, diffId: string): Promise<boolean> {
    const dest = this.dir(diffId);
    if (existsSync(dest)) {
      await rm(tempDir, { recursive: true, force: true });
      return false;
    }
    try {
      await rename(tempDir, dest);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "ENOTEMPTY" || code === "EEXIST") {
        await rm(tempDir, { recursive: true, force: true });
        return false;
      }
      throw RuntimeError.from(e);
    }
    await fsyncDirAsync(this.layersDir);
    return true;
  }

  /** Removes a layer: renamed away first (so it vanishes at once), then deleted. Idempotent. */
  async remove(diffId: string): Promise<void> {
    const dir = this.dir(diffId);
    if (!existsSync(dir)) return;
    const trash = this.tempPath("trash");
    try {
      await rename(dir, trash);
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return;
      throw RuntimeError.from(e);
    }
    await fsyncDirAsync(this.layersDir);
    await rm(trash, { recursive: true, force: true });
  }

  /** The diff_ids of every unpacked layer ("sha256:<hex>"). */
  list(): string[] {
    return readdirSync(this.layersDir)
      .filter((n) => /^[a-f0-9]{64}$|^[a-f0-9]{128}$/.test(n))
      .map((n) => `${n.length === 64 ? "sha256" : "sha512"}:${n}`);
  }

  /**
   * Removes layers not in `keep` and temp entries of processes that are gone. Call it while
   * holding the store lock, with `keep` read under the same lock.
   */
  async cleanup(keep: ReadonlySet<string>): Promise<{ layers: number; temps: number }> {
    let layers = 0;
    let temps = 0;
    for (const id of this.list()) {
      if (keep.has(id)) continue;
      await this.remove(id);
      layers++;
    }
    for (const name of readdirSync(this.tmpDir)) {
      const pid = Number(name.split(".")[0]);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) continue;
      if (pid === process.pid) continue;
      await rm(join(this.tmpDir, name), { recursive: true, force: true });
      temps++;
    }
    if (layers || temps) l.info("removed incomplete or unreferenced layer data", { layers, temps });
    return { layers, temps };
  }

  /** Makes sure tmp/ exists (after an external wipe). */
  async ensure(): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
    await mkdir(this.layersDir, { recursive: true, mode: 0o700 });
  }
}

// --- internal ---

const l = log.withTag("storage");

function hexOf(digest: string): string {
  const m = /^(sha256|sha512):([a-f0-9]+)$/.exec(digest);
  if (!m) throw new RuntimeError("invalid-argument", `bad layer digest "${digest}"`);
  return m[2]!;
}
