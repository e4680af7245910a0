// HPACK (RFC 7541): a decoder that tracks the peer's dynamic table, and an encoder that never
// uses a dynamic table (static-table indexes and literals without indexing only), so what it
// writes leaves the receiver's table untouched. Header names and values are octet strings,
// carried here as latin1 JS strings (one char per octet), so re-encoding is byte-exact.

import { RuntimeError } from "../errors.ts";
import { huffmanDecode } from "./hpack-huffman.ts";

/** One header field; `sensitive` = it came as "never indexed" and must be re-sent that way. */
export interface HeaderField {
  name: string;
  value: string;
  sensitive: boolean;
}

/** A decoded header block: its fields, and the dynamic table size updates at its start. */
export interface HeaderBlock {
  fields: HeaderField[];
  sizeUpdates: number[];
}

/** The RFC 7541 Appendix A static table; index 1 is `STATIC_TABLE[0]`. */
// biome-ignore format: a packed table of names, one per line would be hundreds of lines
export const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [":authority", ""], [":method", "GET"], [":method", "POST"], [":path", "/"], [":path", "/index.html"],
  [":scheme", "http"], [":scheme", "https"], [":status", "200"], [":status", "204"], [":status", "206"],
  [":status", "304"], [":status", "400"], [":status", "404"], [":status", "500"], ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"], ["accept-language", ""], ["accept-ranges", ""], ["accept", ""],
  ["access-control-allow-origin", ""], ["age", ""], ["allow", ""], ["authorization", ""], ["cache-control", ""],
  ["content-disposition", ""], ["content-encoding", ""], ["content-language", ""], ["content-length", ""],
  ["content-location", ""], ["content-range", ""], ["content-type", ""], ["cookie", ""], ["date", ""],
  ["etag", ""], ["expect", ""], ["expires", ""], ["from", ""], ["host", ""], ["if-match", ""],
  ["if-modified-since", ""], ["if-none-match", ""], ["if-range", ""], ["if-unmodified-since", ""],
  ["last-modified", ""], ["link", ""], ["location", ""], ["max-forwards", ""], ["proxy-authenticate", ""],
  ["proxy-authorization", ""], ["range", ""], ["referer", ""], ["refresh", ""], ["retry-after", ""],
  ["server", ""], ["set-cookie", ""], ["strict-transport-security", ""], ["transfer-encoding", ""],
  ["user-agent", ""], ["vary", ""], ["via", ""], ["www-authenticate", ""],
];

/**
 * Decodes the header blocks of one direction of one connection, keeping its dynamic table.
 * Every block the peer sends must go through `decode`, in order. Malformed input throws a
 * RuntimeError("invalid-argument") — an HPACK COMPRESSION_ERROR: the connection is unusable.
 */
export class HpackDecoder {
  #names: string[] = new Array(16);
  #values: string[] = new Array(16);
  #oldest = 0;
  #count = 0;
  #size = 0;
  #max: number;
  #limit: number;
  #scratch = Buffer.allocUnsafe(256);

  /** `tableSize`: the initial maximum (4096 in HTTP/2); `limit`: the largest a size update may set. */
  constructor(tableSize = 4096, limit = 1 << 20) {
    this.#max = tableSize;
    this.#limit = limit;
  }

  /** The dynamic table's size in octets (RFC 7541 §4.1). */
  get size(): number {
    return this.#size;
  }

  /** The dynamic table's maximum size in octets. */
  get maxSize(): number {
    return this.#max;
  }

  /** The dynamic table's entries, newest first (index 62 first). */
  entries(): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (let i = 1; i <= this.#count; i++) out.push([this.#name(i), this.#value(i)]);
    return out;
  }

  /** Decodes one complete header block `src[start, end)`. */
  decode(src: Buffer, start = 0, end = src.length): HeaderBlock {
    const fields: HeaderField[] = [];
    const sizeUpdates: number[] = [];
    const cur = { p: start };
    while (cur.p < end) {
      const b = src[cur.p]!;
      if (b & 0x80) {
        const idx = readInt(src, cur, end, 7);
        if (idx === 0) throw invalid("index 0");
        fields.push({ name: this.#nameAt(idx), value: this.#valueAt(idx), sensitive: false });
      } else if (b & 0x40) {
        const f = this.#literal(src, cur, end, 6, false);
        this.#add(f.name, f.value);
        fields.push(f);
      } else if (b & 0x20) {
        if (fields.length > 0) throw invalid("dynamic table size update after a header field");
        const size = readInt(src, cur, end, 5);
        if (size > this.#limit) throw invalid(`dynamic table size update to ${size} exceeds ${this.#limit}`);
        this.#max = size;
        this.#evict(0);
        sizeUpdates.push(size);
      } else {
        fields.push(this.#literal(src, cur, end, 4, (b & 0x10) !== 0));
      }
    }
    return { fields, sizeUpdates };
  }

  #literal(src: Buffer, cur: { p: number }, end: number, prefix: number, sensitive: boolean): HeaderField {
    const idx = readInt(src, cur, end, prefix);
    const name = idx === 0 ? this.#string(src, cur, end) : this.#nameAt(idx);
    return { name, value: this.#string(src, cur, end), sensitive };
  }

  #string(src: Buffer, cur: { p: number }, end: number): string {
    if (cur.p >= end) throw invalid("truncated string");
    const huffman = (src[cur.p]! & 0x80) !== 0;
    const len = readInt(src, cur, end, 7);
    const s = cur.p;
    if (len > end - s) throw invalid("string runs past the end of the block");
    cur.p = s + len;
    if (!huffman) return src.toString("latin1", s, s + len);
    const need = Math.ceil((len * 8) / 5);
    if (this.#scratch.length < need) this.#scratch = Buffer.allocUnsafe(Math.max(need, this.#scratch.length * 2));
    const n = huffmanDecode(src, s, s + len, this.#scratch);
    return this.#scratch.toString("latin1", 0, n);
  }

  #nameAt(idx: number): string {
    if (idx <= STATIC_TABLE.length) return STATIC_TABLE[idx - 1]![0];
    const d = idx - STATIC_TABLE.length;
    if (d > this.#count) throw invalid(`index ${idx} is not in the table`);
    return this.#name(d);
  }

  #valueAt(idx: number): string {
    if (idx <= STATIC_TABLE.length) return STATIC_TABLE[idx - 1]![1];
    const d = idx - STATIC_TABLE.length;
    if (d > this.#count) throw invalid(`index ${idx} is not in the table`);
    return this.#value(d);
  }

  // d: 1 = the newest entry
  #name(d: number): string {
    return this.#names[(this.#oldest + this.#count - d) & (this.#names.length - 1)]!;
  }

  #value(d: number): string {
    return this.#values[(this.#oldest + this.#count - d) & (this.#names.length - 1)]!;
  }

  #add(name: string, value: string): void {
    const size = name.length + value.length + 32;
    // An entry larger than the table empties it and is not added (RFC 7541 §4.4).
    this.#evict(size);
    if (size > this.#max) return;
    const cap = this.#names.length;
    if (this.#count === cap) {
      const names = new Array<string>(cap * 2);
      const values = new Array<string>(cap * 2);
      for (let i = 0; i < this.#count; i++) {
        names[i] = this.#names[(this.#oldest + i) & (cap - 1)]!;
        values[i] = this.#values[(this.#oldest + i) & (cap - 1)]!;
      }
      this.#names = names;
      this.#values = values;
      this.#oldest = 0;
    }
    const at = (this.#oldest + this.#count) & (this.#names.length - 1);
    this.#names[at] = name;
    this.#values[at] = value;
    this.#count++;
    this.#size += size;
  }

  // Evicts the oldest entries until `room` more octets fit (all of them if they cannot).
  #evict(room: number): void {
    const mask = this.#names.length - 1;
    while (this.#count > 0 && this.#size + room > this.#max) {
      const i = this.#oldest;
      this.#size -= this.#names[i]!.length + this.#values[i]!.length + 32;
      this.#names[i] = this.#values[i] = "";
      this.#oldest = (i + 1) & mask;
      this.#count--;
    }
  }
}

/**
 * Encodes `fields` without touching the receiver's dynamic table: an exact static-table match
 * is indexed, anything else is a literal without indexing (never indexed when `sensitive`),
 * with a static-table name index when there is one; strings are not Huffman-coded.
 * `sizeUpdates` are written first, as dynamic table size updates.
 */
export function encodeHeaderBlock(fields: readonly HeaderField[], sizeUpdates: readonly number[] = []): Buffer {
  let bound = sizeUpdates.length * 6;
  for (const f of fields) bound += f.name.length + f.value.length + 18;
  const out = Buffer.allocUnsafe(bound);
  let p = 0;
  for (const s of sizeUpdates) p = writeInt(out, p, 0x20, 5, s);
  for (const f of fields) {
    const byValue = STATIC_INDEX.get(f.name);
    if (byValue === undefined) {
      out[p++] = f.sensitive ? 0x10 : 0x00;
      p = writeString(out, p, f.name);
      p = writeString(out, p, f.value);
      continue;
    }
    const exact = byValue.get(f.value);
    if (exact !== undefined && !f.sensitive) {
      p = writeInt(out, p, 0x80, 7, exact);
      continue;
    }
    p = writeInt(out, p, f.sensitive ? 0x10 : 0x00, 4, byValue.get(FIRST)!);
    p = writeString(out, p, f.value);
  }
  return out.subarray(0, p);
}

// --- internal ---

const FIRST = "\u0000first";
// name → (value → index); FIRST → the lowest index with that name
const STATIC_INDEX = new Map<string, Map<string, number>>();
STATIC_TABLE.forEach(([name, value], i) => {
  let m = STATIC_INDEX.get(name);
  if (!m) STATIC_INDEX.set(name, (m = new Map([[FIRST, i + 1]])));
  if (!m.has(value)) m.set(value, i + 1);
});

function invalid(what: string): RuntimeError {
  return new RuntimeError("invalid-argument", `hpack: ${what}`);
}

// RFC 7541 §5.1. Values are capped at 2^28 to stay exact and reject absurd lengths.
function readInt(src: Buffer, cur: { p: number }, end: number, prefix: number): number {
  const mask = (1 << prefix) - 1;
  let v = src[cur.p++]! & mask;
  if (v < mask) return v;
  for (let m = 0; ; m += 7) {
    if (cur.p >= end) throw invalid("truncated integer");
    if (m > 21) throw invalid("integer too large");
    const b = src[cur.p++]!;
    v += (b & 0x7f) * 2 ** m;
    if ((b & 0x80) === 0) return v;
  }
}

function writeInt(out: Buffer, p: number, first: number, prefix: number, v: number): number {
  const mask = (1 << prefix) - 1;
  if (v < mask) {
    out[p++] = first | v;
    return p;
  }
  out[p++] = first | mask;
  v -= mask;
  while (v >= 0x80) {
    out[p++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[p++] = v;
  return p;
}

function writeString(out: Buffer, p: number, s: string): number {
  p = writeInt(out, p, 0x00, 7, s.length);
  return p + out.write(s, p, "latin1");
}
