import { existsSync, mkdirSync, readdirSync, watch, type FSWatcher } from "node:fs";
import { readFile, stat, unlink } from "node:fs/promises";
import { exitFilePath, isValidId, oomFilePath, parseExitCode, type ExitRecord } from "../conmon/protocol.ts";
import { log } from "../log/index.ts";

/** Reads `<dir>/<id>` and its OOM marker; undefined when the process has not exited (no file). */
export async function readExitFile(dir: string, id: string): Promise<ExitRecord | undefined> {
  const path = exitFilePath(dir, id);
  try {
    const [text, st] = await Promise.all([readFile(path, "utf8"), stat(path)]);
    const exitCode = parseExitCode(text);
    if (exitCode === undefined) {
      l.warn("unreadable exit file", { path });
      return undefined;
    }
    return { exitCode, exitedAt: st.mtimeMs, oomKilled: existsSync(oomFilePath(dir, id)) };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/** Removes the exit file and OOM marker of `id` (when its container is removed). */
export async function removeExitFile(dir: string, id: string): Promise<void> {
  for (const p of [oomFilePath(dir, id), exitFilePath(dir, id)]) await unlink(p).catch(() => {});
}

/**
 * Learns of exits from the exits directory (protocol.ts §4) without polling containers:
 * inotify through fs.watch, a scan at start (exits that happened while the daemon was down) and
 * a slow safety rescan. Calls `onExit` once per id, until forget(id).
 */
export class ExitWatcher {
  #seen = new Set<string>();
  #watcher: FSWatcher | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(
    readonly dir: string,
    private readonly onExit: (id: string, exit: ExitRecord) => void,
    private readonly rescanMs = 30_000,
  ) {}

  /** Starts watching (creating the directory) and reports the exits already there. */
  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.#watcher = watch(this.dir, (_event, name) => {
      if (typeof name === "string") void this.#check(name);
    });
    this.#watcher.on("error", (e) => l.warn("exit directory watch failed; relying on rescans", { error: e }));
    this.#timer = setInterval(() => void this.rescan(), this.rescanMs);
    this.#timer.unref?.();
    await this.rescan();
  }

  /** Looks at every file in the directory now. */
  async rescan(): Promise<void> {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      return void l.warn("cannot list the exit directory", { dir: this.dir, error: e });
    }
    await Promise.all(names.map((n) => this.#check(n)));
  }

  /** Lets `id` be reported again (its exit file was removed and the id may be reused). */
  forget(id: string): void {
    this.#seen.delete(id);
  }

  /** Stops watching. */
  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    clearInterval(this.#timer);
  }

  // --- internal ---

  async #check(name: string): Promise<void> {
    if (this.#closed || !isValidId(name) || this.#seen.has(name)) return;
    let exit: ExitRecord | undefined;
    try {
      exit = await readExitFile(this.dir, name);
    } catch (e) {
      return void l.warn("cannot read exit file", { id: name, error: e });
    }
    if (!exit || this.#seen.has(name) || this.#closed) return;
    this.#seen.add(name);
    try {
      this.onExit(name, exit);
    } catch (e) {
      l.warn("exit handler failed", { id: name, error: e });
    }
  }
}

// --- internal ---

const l = log.withTag("monitor");
