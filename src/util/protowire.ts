/**
 * The protobuf wire format, for the codec `scripts/gen-codec.ts` generates
 * (src/gen/runtime/v1/api_codec.ts): a growable writer and a bounds-checked reader of varints,
 * fixed-width numbers, strings and length-delimited records. No reflection, no descriptors: the
 * generated code calls these with its field tags written in as constants. Values are checked as
 * protobuf-es checks them (int32 range, int64 range, unsigned not negative), so a handler's bad
 * value fails the call instead of writing a wrong number.
 */

import type { JsonObject } from "@bufbuild/protobuf";

/** Bytes that are not a valid encoding of the expected message (truncated, garbage, bad UTF-8). */
export class DecodeError extends Error {
  override name = "DecodeError";
}

const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const TWO32 = 4294967296;

/**
 * Node's (and Bun's) Buffer methods behind toString("utf8", start, end) and write(s, offset, n,
 * "utf8"), without their argument checks (undocumented; in Node since 0.x, native in Bun).
 */
interface NativeSlices {
  utf8Slice(start: number, end: number): string;
  utf8Write(s: string, offset: number, max: number): number;
}

const nativeOf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength) as unknown as NativeSlices;

/** A reusable output buffer: encoding is synchronous, so one scratch serves every call. */
export class Writer {
  b = new Uint8Array(4096);
  p = 0;
  #nb = nativeOf(this.b);

  /** The bytes written since the last reset, copied out; the scratch is reset. */
  finish(): Uint8Array {
    const out = this.b.slice(0, this.p);
    this.p = 0;
    // do not keep a huge scratch alive after one large answer
    if (this.b.length > 1 << 20) {
      this.b = new Uint8Array(4096);
      this.#nb = nativeOf(this.b);
    }
    return out;
  }

  /** Room for `n` more bytes. */
  need(n: number): void {
    if (this.p + n <= this.b.length) return;
    let size = this.b.length * 2;
    while (size < this.p + n) size *= 2;
    const nb = new Uint8Array(size);
    nb.set(this.b.subarray(0, this.p));
    this.b = nb;
    this.#nb = nativeOf(nb);
  }

  /** An unsigned varint of at most 32 bits (a tag, a length, a uint32). */
  u32(v: number): void {
    this.need(5);
    const b = this.b;
    let p = this.p;
    while (v > 127) {
      b[p++] = (v & 127) | 128;
      v >>>= 7;
    }
    b[p++] = v;
    this.p = p;
  }

  /** A 64-bit varint from two 32-bit halves (two's complement for negatives). */
  split(lo: number, hi: number): void {
    this.need(10);
    const b = this.b;
    let p = this.p;
    while (hi > 0 || lo > 127) {
      b[p++] = (lo & 127) | 128;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    b[p++] = lo;
    this.p = p;
  }

  int32(v: number): void {
    if (!Number.isInteger(v) || v > 0x7fffffff || v < -0x80000000) throw new Error(`invalid int32: ${v}`);
    if (v >= 0) this.u32(v);
    else this.split(v >>> 0, 0xffffffff);
  }

  uint32(v: number): void {
    if (!Number.isInteger(v) || v > 0xffffffff || v < 0) throw new Error(`invalid uint32: ${v}`);
    this.u32(v);
  }

  sint32(v: number): void {
    if (!Number.isInteger(v) || v > 0x7fffffff || v < -0x80000000) throw new Error(`invalid int32: ${v}`);
    this.u32(((v << 1) ^ (v >> 31)) >>> 0);
  }

  int64(v: bigint | number | string): void {
    const n = toBig(v);
    if (n >= 0n && n < 0x100000000n) return this.u32(Number(n));
    if (BigInt.asIntN(64, n) !== n) throw new Error(`invalid int64: ${v}`);
    this.big(n);
  }

  uint64(v: bigint | number | string): void {
    const n = toBig(v);
    if (n >= 0n && n < 0x100000000n) return this.u32(Number(n));
    if (BigInt.asUintN(64, n) !== n) throw new Error(`invalid uint64: ${v}`);
    this.big(n);
  }

  sint64(v: bigint | number | string): void {
    const n = toBig(v);
    if (BigInt.asIntN(64, n) !== n) throw new Error(`invalid int64: ${v}`);
    this.big((n << 1n) ^ (n >> 63n));
  }

  /** Any 64-bit pattern (the low 64 bits of `n`) as a varint. */
  big(n: bigint): void {
    const u = BigInt.asUintN(64, n);
    this.split(Number(u & 0xffffffffn), Number(u >> 32n));
  }

  bool(v: boolean): void {
    this.need(1);
    this.b[this.p++] = v ? 1 : 0;
  }

  fixed32(v: number): void {
    if (!Number.isInteger(v) || v > 0xffffffff || v < 0) throw new Error(`invalid uint32: ${v}`);
    this.need(4);
    new DataView(this.b.buffer).setUint32(this.p, v, true);
    this.p += 4;
  }

  sfixed32(v: number): void {
    if (!Number.isInteger(v) || v > 0x7fffffff || v < -0x80000000) throw new Error(`invalid int32: ${v}`);
    this.need(4);
    new DataView(this.b.buffer).setInt32(this.p, v, true);
    this.p += 4;
  }

  fixed64(v: bigint | number | string, signed: boolean): void {
    const n = toBig(v);
    if ((signed ? BigInt.asIntN(64, n) : BigInt.asUintN(64, n)) !== n) throw new Error(`invalid ${signed ? "int64" : "uint64"}: ${v}`);
    this.need(8);
    new DataView(this.b.buffer).setBigUint64(this.p, BigInt.asUintN(64, n), true);
    this.p += 8;
  }

  double(v: number): void {
    this.need(8);
    new DataView(this.b.buffer).setFloat64(this.p, v, true);
    this.p += 8;
  }

  float(v: number): void {
    this.need(4);
    new DataView(this.b.buffer).setFloat32(this.p, v, true);
    this.p += 4;
  }

  /** A length-prefixed UTF-8 string (Bun's native UTF-8 write into the buffer). */
  str(s: string): void {
    this.need(s.length * 3 + 5);
    const at = this.fork();
    this.p += this.#nb.utf8Write(s, this.p, this.b.length - this.p);
    this.join(at);
  }

  bytes(v: Uint8Array): void {
    this.u32(v.length);
    this.need(v.length);
    this.b.set(v, this.p);
    this.p += v.length;
  }

  /** Starts a length-delimited record (after its tag): reserves one length byte. */
  fork(): number {
    this.need(1);
    return this.p++;
  }

  /** Ends the record `fork` started: writes its length, moving its body when it needs more bytes. */
  join(at: number): void {
    const len = this.p - at - 1;
    if (len < 128) {
      this.b[at] = len;
      return;
    }
    const size = varintSize(len);
    this.need(size - 1);
    this.b.copyWithin(at + size, at + 1, this.p);
    const end = this.p + size - 1;
    this.p = at;
    this.u32(len);
    this.p = end;
  }
}

/** The shared writer of the generated encoders. */
export const writer = new Writer();

function toBig(v: bigint | number | string): bigint {
  if (typeof v === "bigint") return v;
  try {
    return BigInt(v);
  } catch {
    throw new Error(`invalid 64-bit integer: ${v}`);
  }
}

function varintSize(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : n < 268435456 ? 4 : 5;
}

/** A bounds-checked reader over one message's bytes. */
export class Reader {
  p = 0;
  readonly len: number;
  #view: DataView | undefined;
  #buf: NativeSlices | undefined;

  constructor(readonly b: Uint8Array) {
    this.len = b.length;
  }

  /** A tag (field number << 3 | wire type); field number 0 and wire types 6 and 7 are errors. */
  tag(): number {
    const t = this.u32();
    if (t < 8 || (t & 7) > 5) throw new DecodeError(`illegal tag: field no ${t >>> 3} wire type ${t & 7}`);
    return t;
  }

  /** A varint's low 32 bits, unsigned (protobuf's uint32; int32 is `u32() | 0`). */
  u32(): number {
    const b = this.b;
    let p = this.p;
    if (p >= this.len) throw new DecodeError("premature EOF");
    let c = b[p++]!;
    if (c < 128) {
      this.p = p;
      return c;
    }
    let v = c & 127;
    for (let shift = 7; shift < 32; shift += 7) {
      if (p >= this.len) throw new DecodeError("premature EOF");
      c = b[p++]!;
      v |= (c & 127) << shift;
      if (c < 128) {
        this.p = p;
        return v >>> 0;
      }
    }
    // bits above 32 are dropped, as a 64-bit varint read into 32 bits
    for (let i = 0; i < 5; i++) {
      if (p >= this.len) throw new DecodeError("premature EOF");
      if (b[p++]! < 128) {
        this.p = p;
        return v >>> 0;
      }
    }
    throw new DecodeError("invalid varint");
  }

  int32(): number {
    return this.u32() | 0;
  }

  sint32(): number {
    const v = this.u32();
    return (v >>> 1) ^ -(v & 1);
  }

  /** A 64-bit varint as [lo, hi] 32-bit halves. */
  #split(): [number, number] {
    const b = this.b;
    let p = this.p;
    let lo = 0;
    let hi = 0;
    let c = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (p >= this.len) throw new DecodeError("premature EOF");
      c = b[p++]!;
      lo |= (c & 127) << shift;
      if (c < 128) {
        this.p = p;
        return [lo >>> 0, 0];
      }
    }
    if (p >= this.len) throw new DecodeError("premature EOF");
    c = b[p++]!;
    lo |= (c & 15) << 28;
    hi = (c & 127) >> 4;
    if (c < 128) {
      this.p = p;
      return [lo >>> 0, hi];
    }
    for (let shift = 3; shift <= 31; shift += 7) {
      if (p >= this.len) throw new DecodeError("premature EOF");
      c = b[p++]!;
      hi |= (c & 127) << shift;
      if (c < 128) {
        this.p = p;
        return [lo >>> 0, hi >>> 0];
      }
    }
    throw new DecodeError("invalid varint");
  }

  int64(): bigint {
    const [lo, hi] = this.#split();
    if (hi === 0) return BigInt(lo);
    if (hi < 0x200000) return BigInt(hi * TWO32 + lo);
    return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
  }

  uint64(): bigint {
    const [lo, hi] = this.#split();
    if (hi < 0x200000) return BigInt(hi * TWO32 + lo);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  sint64(): bigint {
    const u = this.uint64();
    return (u >> 1n) ^ -(u & 1n);
  }

  bool(): boolean {
    const [lo, hi] = this.#split();
    return lo !== 0 || hi !== 0;
  }

  #fixed(n: number): number {
    const at = this.p;
    if (at + n > this.len) throw new DecodeError("premature EOF");
    this.p = at + n;
    return at;
  }

  #dv(): DataView {
    this.#view ??= new DataView(this.b.buffer, this.b.byteOffset, this.b.byteLength);
    return this.#view;
  }

  fixed32(): number {
    return this.#dv().getUint32(this.#fixed(4), true);
  }

  sfixed32(): number {
    return this.#dv().getInt32(this.#fixed(4), true);
  }

  fixed64(): bigint {
    return this.#dv().getBigUint64(this.#fixed(8), true);
  }

  sfixed64(): bigint {
    return this.#dv().getBigInt64(this.#fixed(8), true);
  }

  double(): number {
    return this.#dv().getFloat64(this.#fixed(8), true);
  }

  float(): number {
    return this.#dv().getFloat32(this.#fixed(4), true);
  }

  /** Reads a length and returns where the record it prefixes ends. */
  end(): number {
    const n = this.u32();
    const e = this.p + n;
    if (e > this.len) throw new DecodeError("premature EOF");
    return e;
  }

  bytes(): Uint8Array {
    const e = this.end();
    const v = this.b.subarray(this.p, e);
    this.p = e;
    return v;
  }

  /** A string; invalid UTF-8 is an error (proto3 strings are validated). */
  str(): string {
    const e = this.end();
    const start = this.p;
    this.p = e;
    if (start === e) return "";
    // Bun's native UTF-8 slice; it substitutes U+FFFD for invalid bytes, so a result holding one
    // is checked again strictly (it may also be a real U+FFFD)
    this.#buf ??= nativeOf(this.b);
    const s = this.#buf.utf8Slice(start, e);
    if (s.includes("\uFFFD")) {
      try {
        utf8Strict.decode(this.b.subarray(start, e));
      } catch {
        throw new DecodeError("invalid UTF-8 in a string field");
      }
    }
    return s;
  }

  /** Skips the value of an unknown (or mistyped) field whose tag was just read. */
  skip(tag: number, depth = 0): void {
    switch (tag & 7) {
      case 0:
        this.#split();
        return;
      case 1:
        this.#fixed(8);
        return;
      case 2:
        this.p = this.end();
        return;
      case 5:
        this.#fixed(4);
        return;
      case 3: {
        if (depth > 100) throw new DecodeError("groups nested too deep");
        for (;;) {
          if (this.p >= this.len) throw new DecodeError("premature EOF in a group");
          const t = this.tag();
          if ((t & 7) === 4) {
            if (t >>> 3 !== tag >>> 3) throw new DecodeError("invalid end group tag");
            return;
          }
          this.skip(t, depth + 1);
        }
      }
      default:
        throw new DecodeError(`unexpected end group tag (field ${tag >>> 3})`);
    }
  }

  /** Checks a record ended exactly where its length said. */
  done(end: number): void {
    if (this.p !== end) throw new DecodeError("premature EOF");
  }
}

/** Sets `rec[key]`, also when the key is "__proto__". */
export function setOwn(rec: object, key: string, v: unknown): void {
  if (key === "__proto__") Object.defineProperty(rec, key, { value: v, enumerable: true, configurable: true, writable: true });
  else (rec as Record<string, unknown>)[key] = v;
}

// --- JSON (proto3 JSON mapping, as protobuf-es's toJson/fromJson) ---

/** Thrown by the generated fromJson functions. */
export class JsonError extends Error {
  override name = "JsonError";
}

export function base64(v: Uint8Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");
}

export function jStr(x: unknown, f: string): string {
  if (typeof x !== "string") throw new JsonError(`cannot decode field ${f} from JSON: ${show(x)}`);
  return x;
}

export function jBool(x: unknown, f: string): boolean {
  if (typeof x !== "boolean") throw new JsonError(`cannot decode field ${f} from JSON: ${show(x)}`);
  return x;
}

/** A 32-bit integer from a JSON number or numeric string. */
export function jInt(x: unknown, f: string, unsigned: boolean): number {
  const n = typeof x === "number" ? x : typeof x === "string" && x.trim() !== "" ? Number(x) : Number.NaN;
  if (!Number.isInteger(n) || (unsigned ? n < 0 || n > 0xffffffff : n < -0x80000000 || n > 0x7fffffff))
    throw new JsonError(`cannot decode field ${f} from JSON: ${show(x)}`);
  return n;
}

/** A 64-bit integer from a JSON number or numeric string. */
export function jLong(x: unknown, f: string, unsigned: boolean): bigint {
  let n: bigint | undefined;
  if (typeof x === "number" && Number.isInteger(x)) n = BigInt(x);
  else if (typeof x === "string" && /^-?[0-9]+$/.test(x)) n = BigInt(x);
  if (n === undefined || (unsigned ? BigInt.asUintN(64, n) : BigInt.asIntN(64, n)) !== n) throw new JsonError(`cannot decode field ${f} from JSON: ${show(x)}`);
  return n;
}

export function jFloat(x: unknown, f: string): number {
  if (typeof x === "number") return x;
  if (x === "NaN") return Number.NaN;
  if (x === "Infinity") return Number.POSITIVE_INFINITY;
  if (x === "-Infinity") return Number.NEGATIVE_INFINITY;
  if (typeof x === "string" && x.trim() !== "" && !Number.isNaN(Number(x))) return Number(x);
  throw new JsonError(`cannot decode field ${f} from JSON: ${show(x)}`);
}

export function jFloatOut(v: number): number | string {
  return Number.isNaN(v) ? "NaN" : v === Number.POSITIVE_INFINITY ? "Infinity" : v === Number.NEGATIVE_INFINITY ? "-Infinity" : v;
}

export function jBytes(x: unknown, f: string): Uint8Array {
  if (typeof x !== "string" || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(x)) throw new JsonError(`cannot decode field ${f} from JSON: ${show(x)}`);
  return new Uint8Array(Buffer.from(x, "base64"));
}

/** An enum from its name or number; undefined for an unknown name when unknown fields are ignored. */
export function jEnum(x: unknown, f: string, values: Record<string, number>, ignoreUnknown: boolean): number | undefined {
  if (typeof x === "number" && Number.isInteger(x) && x >= -0x80000000 && x <= 0x7fffffff) return x;
  if (typeof x === "string") {
    const v = Object.hasOwn(values, x) ? values[x] : undefined;
    if (v !== undefined) return v;
    if (ignoreUnknown) return undefined;
  }
  throw new JsonError(`cannot decode field ${f} from JSON: ${show(x)}`);
}

export function jObj(x: unknown, what: string): Record<string, unknown> {
  if (x === null || typeof x !== "object" || Array.isArray(x)) throw new JsonError(`cannot decode ${what} from JSON: ${show(x)}`);
  return x as Record<string, unknown>;
}

export function jArr(x: unknown, f: string): unknown[] {
  if (!Array.isArray(x)) throw new JsonError(`cannot decode field ${f} from JSON: ${show(x)}`);
  return x;
}

function show(x: unknown): string {
  try {
    return typeof x === "string" ? JSON.stringify(x) : String(JSON.stringify(x) ?? x);
  } catch {
    return String(x);
  }
}

// --- the codec objects the generated files build (one definition for every generated file) ---

/** A message's codec: binary as protobuf-es's toBinary/fromBinary, JSON as its toJson/fromJson. */
export interface Codec<T, Init> {
  /** e.g. runtime.v1.VersionRequest */
  readonly typeName: string;
  /** e.g. VersionRequest */
  readonly name: string;
  /** Serializes a message or its init shape (unset and zero fields are skipped, as proto3). */
  encode(v: Init): Uint8Array;
  /** Parses bytes into the full message (every field present); throws DecodeError on bad bytes. */
  decode(b: Uint8Array): T;
  /** The proto3 JSON form (camelCase names, defaults omitted, enums by name, 64-bit integers as strings). */
  toJson(v: Init): JsonObject;
  /** Parses the proto3 JSON form; unknown keys are errors unless ignored. */
  fromJson(j: unknown, o?: { ignoreUnknownFields?: boolean }): T;
}

/** An RPC of a service: its name, handler name, kind and message codecs. */
export interface MethodCodec {
  readonly name: string;
  readonly localName: string;
  readonly kind: "unary" | "server_streaming";
  readonly input: Codec<unknown, never>;
  readonly output: Codec<unknown, never>;
}

/** A service's method table. */
export interface ServiceCodec {
  readonly typeName: string;
  readonly methods: readonly MethodCodec[];
}

/** A message's codec from its generated encoder, decoder, default-maker and JSON functions. */
export function codec<T, Init>(
  typeName: string,
  e: (w: Writer, v: Init) => void,
  d: (r: Reader, end: number, m: T) => T,
  n: () => T,
  j: (v: Init) => JsonObject,
  f: (j: unknown, ig: boolean) => T,
): Codec<T, Init> {
  return {
    typeName,
    name: typeName.slice(typeName.lastIndexOf(".") + 1),
    encode(v) {
      writer.p = 0;
      e(writer, v);
      return writer.finish();
    },
    decode: (b) => d(new Reader(b), b.length, n()),
    toJson: j,
    fromJson: (x, o) => f(x, o?.ignoreUnknownFields === true),
  };
}
