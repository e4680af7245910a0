import { storeGeneration } from "../store/index.ts";

/** A response already serialized: the bridge sends these bytes as they are (cri/bridge.ts). */
export class Encoded {
  constructor(readonly bytes: Buffer) {}
}

/** An item of a list: a record (its meta written once, its status replaced as a whole on every change). */
export interface ListedRecord {
  readonly meta: object;
  readonly status: object;
}

/**
 * The answers of a polled List call (ListPodSandbox, ListContainers: the kubelet relists every
 * second), built from bytes, with no protobuf code of their own:
 *
 * - Each record's encoded message (a PodSandbox, a Container) is kept with the record and
 *   encoded again only when that record changed: a record's status is replaced as a whole on
 *   every update (store/record-file.ts), so the entry holds the meta and status objects it was
 *   encoded from and is valid while both are the record's.
 * - A response whose only field is `repeated Message items = 1` is, on the wire, each item as
 *   tag 1 (length-delimited: 0x0a), its length as a varint, its bytes, in order — exactly what a
 *   full encode of the answer writes (test/unit/cri/list-encode.test.ts holds it byte-equal).
 *   So an answer is the concatenation of the records' cached bytes that pass the filter.
 * - Whole answers are kept by request while the stores' generation (store/generation.ts: every
 *   record added, removed or updated) has not moved: a steady node's relist is a map lookup.
 *
 * During a burst the generation moves every few ms, so most relists rebuild; a rebuild is the
 * filter, the sort and one copy of the bytes (plus the encoding of the few records that changed),
 * instead of converting and encoding every item (~1.5 ms for 110 containers' labels and
 * annotations, 85 kB). The build runs synchronously, so what is cached is one consistent view.
 */
export class ListCache<V extends ListedRecord> {
  #generation = -1;
  readonly #answers = new Map<string, Encoded>();
  readonly #items = new WeakMap<V, { meta: object; status: object; bytes: Uint8Array }>();

  /**
   * `encodeItem`: one item's message bytes (its protobuf encoding, without tag or length);
   * `generation`: the counter answers are valid for; `max`: answers kept (distinct requests).
   */
  constructor(
    private readonly encodeItem: (v: V) => Uint8Array,
    private readonly generation: () => number = storeGeneration,
    private readonly max = 8,
  ) {}

  /** The answer for `key` (a canonical form of the request) listing `select()`'s records, in that order. */
  get(key: string, select: () => readonly V[]): Encoded {
    const g = this.generation();
    if (g !== this.#generation) {
      this.#answers.clear();
      this.#generation = g;
    }
    let e = this.#answers.get(key);
    if (!e) {
      e = new Encoded(this.encode(select()));
      if (this.#answers.size >= this.max) this.#answers.delete(this.#answers.keys().next().value!);
      this.#answers.set(key, e);
    }
    return e;
  }

  /** The response bytes listing `items` as field 1, each from its record's cached encoding. */
  encode(items: readonly V[]): Buffer {
    const parts: Uint8Array[] = new Array(items.length);
    let size = 0;
    for (let i = 0; i < items.length; i++) {
      const b = this.#bytesOf(items[i]!);
      parts[i] = b;
      size += 1 + varintSize(b.length) + b.length;
    }
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    for (const b of parts) {
      out[at++] = FIELD_1_LEN;
      at = writeVarint(out, at, b.length);
      out.set(b, at);
      at += b.length;
    }
    return out;
  }

  #bytesOf(v: V): Uint8Array {
    const c = this.#items.get(v);
    if (c && c.meta === v.meta && c.status === v.status) return c.bytes;
    const bytes = this.encodeItem(v);
    this.#items.set(v, { meta: v.meta, status: v.status, bytes });
    return bytes;
  }
}

// --- internal ---

/** Field 1, wire type 2 (length-delimited): (1 << 3) | 2. */
const FIELD_1_LEN = 0x0a;

function varintSize(n: number): number {
  let s = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    s++;
  }
  return s;
}

function writeVarint(out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}
