/**
 * Watches a directory that may not exist yet (fs.watch + a periodic rescan): while it is missing
 * the parent is watched for its creation; a deleted or replaced directory is re-watched. Every
 * change, and every rescan tick, calls `onChange` (debounced).
 */
import { watch, statSync, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";

/** A self-healing directory watch; close() stops it. */
export class DirWatcher {
  #watcher?: FSWatcher;
  #target?: { path: string; ino: number };
  #timer: ReturnType<typeof setInterval>;
  #debounce?: ReturnType<typeof setTimeout>;
  #closed = false;

  constructor(
    private readonly dir: string,
    private readonly onChange: () => void,
    rescanMs: number,
  ) {
    this.#arm();
    this.#timer = setInterval(() => this.#fire(), rescanMs);
    this.#timer.unref?.();
  }

  /** Stops watching. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    if (this.#debounce) clearTimeout(this.#debounce);
    this.#unwatch();
  }

  // --- internal ---

  #fire(): void {
    if (this.#closed) return;
    this.#arm();
    this.onChange();
  }

  #schedule(): void {
    if (this.#closed || this.#debounce) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.#fire();
    }, 20);
    this.#debounce.unref?.();
  }

  /** Watches the directory when it exists (re-watching a replaced one), else its parent. */
  #arm(): void {
    const want = inode(this.dir) !== undefined ? this.dir : dirname(this.dir);
    const ino = inode(want);
    if (this.#target && this.#target.path === want && this.#target.ino === ino) return;
    this.#unwatch();
    if (ino === undefined) return; // neither exists: the periodic rescan retries
    const watchingParent = want !== this.dir;
    try {
      const w = watch(want, { persistent: false }, (_event, filename) => {
        if (watchingParent && filename && String(filename) !== basename(this.dir)) return;
        this.#schedule();
      });
      w.on("error", () => {
        this.#unwatch();
        this.#schedule();
      });
      this.#watcher = w;
      this.#target = { path: want, ino };
    } catch {
      // raced with a removal: the periodic rescan retries
    }
  }

  #unwatch(): void {
    try {
      this.#watcher?.close();
    } catch {
      // already closed
    }
    this.#watcher = undefined;
    this.#target = undefined;
  }
}

// --- internal ---

function inode(path: string): number | undefined {
  try {
    const s = statSync(path);
    return s.isDirectory() ? s.ino : undefined;
  } catch {
    return undefined;
  }
}
