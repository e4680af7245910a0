import { RuntimeError } from "../errors.ts";

/** Unique names (pod and container names) reserved for an id, in memory; rebuilt at recovery. */
export class NameIndex {
  readonly #byName = new Map<string, string>();

  /** Reserves `name` for `id`; a name held by another id is ALREADY_EXISTS ("name is reserved"). */
  reserve(name: string, id: string): void {
    const holder = this.#byName.get(name);
    if (holder !== undefined && holder !== id)
      throw new RuntimeError("already-exists", `error reserving name "${name}" for id "${id}": name is reserved for "${holder}"`);
    this.#byName.set(name, id);
  }

  /** The id holding `name`, if any. */
  get(name: string): string | undefined {
    return this.#byName.get(name);
  }

  /** Frees `name` (only when held by `id`, if given). */
  release(name: string, id?: string): void {
    if (id === undefined || this.#byName.get(name) === id) this.#byName.delete(name);
  }
}
