import { RuntimeError, notFound } from "../errors.ts";
import { bumpStoreGeneration } from "./generation.ts";

/** Objects by id with unique-prefix lookup, as crictl allows short ids. */
export class IdIndex<T> {
  readonly #items = new Map<string, T>();

  add(id: string, item: T): void {
    this.#items.set(id, item);
    bumpStoreGeneration();
  }

  delete(id: string): void {
    if (this.#items.delete(id)) bumpStoreGeneration();
  }

  /** Exact id or a unique prefix; undefined when nothing matches. Ambiguous prefixes throw. */
  find(idOrPrefix: string): T | undefined {
    const exact = this.#items.get(idOrPrefix);
    if (exact !== undefined) return exact;
    if (idOrPrefix === "") return undefined;
    let found: T | undefined;
    let n = 0;
    for (const [id, item] of this.#items)
      if (id.startsWith(idOrPrefix)) {
        found = item;
        n++;
      }
    if (n > 1) throw new RuntimeError("invalid-argument", `id prefix "${idOrPrefix}" is ambiguous`);
    return found;
  }

  /** Like find, but NOT_FOUND names the kind of object. */
  get(what: string, idOrPrefix: string): T {
    const v = this.find(idOrPrefix);
    if (v === undefined) throw notFound(what, idOrPrefix);
    return v;
  }

  values(): IterableIterator<T> {
    return this.#items.values();
  }

  get size(): number {
    return this.#items.size;
  }
}
