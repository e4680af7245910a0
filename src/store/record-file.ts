import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { RuntimeError } from "../errors.ts";
import { Serial } from "../util/wait.ts";
import { writeFileAtomic } from "./atomic-file.ts";
import { bumpStoreGeneration } from "./generation.ts";

const VERSION = 1;

/**
 * One object's records on disk: `<dir>/meta.json` (written once at creation) and
 * `<dir>/status.json` (versioned, replaced atomically on every change). Updates run one at a
 * time and are published in memory only after they are on disk.
 */
export class StoredRecord<M, S> {
  readonly #serial = new Serial();
  #status: Readonly<S>;
  constructor(
    readonly dir: string,
    readonly meta: Readonly<M>,
    status: S,
  ) {
    this.#status = status;
  }

  /** The current status. */
  get status(): Readonly<S> {
    return this.#status;
  }

  /** Applies `fn` to the current status and persists the result atomically. */
  update(fn: (cur: Readonly<S>) => S): Promise<Readonly<S>> {
    return this.#serial.run(async () => {
      const next = fn(this.#status);
      await writeFileAtomic(join(this.dir, "status.json"), JSON.stringify({ v: VERSION, data: next }));
      this.#status = next;
      bumpStoreGeneration();
      return next;
    });
  }
}

/** A directory of records, one subdirectory per object id. */
export class RecordDir<M, S> {
  constructor(readonly root: string) {}

  /** Creates `<root>/<id>/` with its meta and first status; fails if the id exists. */
  async create(id: string, meta: M, status: S): Promise<StoredRecord<M, S>> {
    const dir = join(this.root, id);
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    try {
      await mkdir(dir, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") throw new RuntimeError("already-exists", `record "${id}" already exists`);
      throw e;
    }
    try {
      await writeFileAtomic(join(dir, "status.json"), JSON.stringify({ v: VERSION, data: status }));
      // meta.json last: a directory without it is an unfinished creation, removed at load.
      await writeFileAtomic(join(dir, "meta.json"), JSON.stringify({ v: VERSION, data: meta }));
    } catch (e) {
      await rm(dir, { recursive: true, force: true }); // (a full disk): nothing half-made is left
      throw e;
    }
    return new StoredRecord(dir, meta, status);
  }

  /** Loads every complete record; unfinished ones (no meta.json) are removed and reported. */
  async loadAll(onBroken: (id: string, why: string) => void): Promise<Array<StoredRecord<M, S>>> {
    let ids: string[];
    try {
      ids = await readdir(this.root);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
    const out: Array<StoredRecord<M, S>> = [];
    for (const id of ids) {
      const dir = join(this.root, id);
      try {
        // An atomic write's temp file left by a crash is dropped: meta/status.json are what was committed.
        for (const f of await readdir(dir)) if (f.includes(".tmp-")) await rm(join(dir, f), { force: true });
        const meta = unwrap<M>(await readFile(join(dir, "meta.json"), "utf8"));
        const status = unwrap<S>(await readFile(join(dir, "status.json"), "utf8"));
        out.push(new StoredRecord(dir, meta, status));
      } catch (e) {
        onBroken(id, (e as Error).message);
        await rm(dir, { recursive: true, force: true });
      }
    }
    return out;
  }

  /** Removes an object's records (idempotent). */
  async remove(id: string): Promise<void> {
    await rm(join(this.root, id), { recursive: true, force: true });
  }

  /** The directory of an id. */
  dirOf(id: string): string {
    return join(this.root, id);
  }
}

function unwrap<T>(text: string): T {
  const o = JSON.parse(text) as { v?: number; data?: T };
  if (o.v !== VERSION) throw new Error(`unknown record version ${String(o.v)}`);
  return o.data as T;
}
