/**
 * Tar header encoding and decoding (POSIX ustar + PAX, GNU long names), just what the layer
 * guard needs. Names are handled as latin1 strings so every byte string maps to one JS string
 * and back (a lossy UTF-8 decode could make two different names look alike).
 * See https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html#tag_20_92_13_06
 */

/** Block size of the tar format. */
export const BLOCK = 512;

/** The fields of a header the guard looks at. */
export interface TarHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  type: string;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** GNU old sparse: extension headers follow. */
  sparseExtended: boolean;
}

/** Decodes a 512-byte header; returns undefined when the checksum is wrong. */
export function decodeHeader(b: Uint8Array): TarHeader | undefined {
  if (!checksumOk(b)) return undefined;
  const magic = latin1(b, 257, 6);
  let name = cstr(b, 0, 100);
  if (magic === "ustar\0") {
    const prefix = cstr(b, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  const type = b[156] === 0 ? "0" : String.fromCharCode(b[156]!);
  return {
    name,
    mode: num(b, 100, 8),
    uid: num(b, 108, 8),
    gid: num(b, 116, 8),
    size: num(b, 124, 12),
    mtime: num(b, 136, 12),
    type,
    linkname: cstr(b, 157, 100),
    devmajor: num(b, 329, 8),
    devminor: num(b, 337, 8),
    sparseExtended: type === "S" && b[482] !== 0,
  };
}

/** True when the block is all zeros (an end-of-archive marker). */
export function isZeroBlock(b: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** Parses PAX records ("LEN key=value\n" …) into a map of latin1 strings. */
export function parsePax(body: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < body.length) {
    let j = i;
    while (j < body.length && body[j] !== 0x20) j++;
    const len = Number(latin1(body, i, j - i));
    if (!Number.isInteger(len) || len <= 0 || i + len > body.length) break;
    const rec = latin1(body, j + 1, i + len - j - 2); // without the trailing "\n"
    const eq = rec.indexOf("=");
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

/** Serialises PAX records. */
export function encodePax(records: Iterable<[string, string]>): Uint8Array {
  const parts: Buffer[] = [];
  for (const [k, v] of records) {
    const kv = Buffer.from(` ${k}=${v}\n`, "latin1");
    let len = kv.length + 1;
    while (String(len).length + kv.length !== len) len = String(len).length + kv.length;
    parts.push(Buffer.from(String(len), "latin1"), kv);
  }
  return Buffer.concat(parts);
}

/** What encodeEntry writes. */
export interface NewEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extra PAX records (e.g. xattrs). */
  pax?: Array<[string, string]>;
}

/** Encodes one entry's header blocks (a PAX header first when needed); no data blocks. */
export function encodeEntry(e: NewEntry): Uint8Array {
  const pax: Array<[string, string]> = [...(e.pax ?? [])];
  // Names are latin1 strings: one character per byte.
  let name = e.name;
  let prefix = "";
  if (e.name.length > 100) {
    const cut = e.name.lastIndexOf("/", 155);
    if (cut > 0 && e.name.length - cut - 1 <= 100) {
      prefix = e.name.slice(0, cut);
      name = e.name.slice(cut + 1);
    } else {
      pax.push(["path", e.name]);
      name = e.name.slice(-100);
    }
  }
  const out: Uint8Array[] = [];
  if (pax.length) {
    const body = encodePax(pax);
    out.push(rawHeader({ name: "././@PaxHeader", type: "x", mode: 0o644, uid: 0, gid: 0, mtime: e.mtime, size: body.length }, ""));
    out.push(body, new Uint8Array(padding(body.length)));
  }
  out.push(rawHeader({ ...e, name }, prefix));
  return Buffer.concat(out);
}

/** Bytes of padding after `size` bytes of data. */
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

// --- internal ---

function rawHeader(e: NewEntry, prefix: string): Uint8Array {
  const b = new Uint8Array(BLOCK);
  put(b, 0, 100, e.name);
  octal(b, 100, 8, e.mode & 0o7777);
  octal(b, 108, 8, e.uid);
  octal(b, 116, 8, e.gid);
  octal(b, 124, 12, e.size ?? 0);
  octal(b, 136, 12, Math.max(0, Math.floor(e.mtime)));
  b[156] = e.type.charCodeAt(0);
  put(b, 157, 100, e.linkname ?? "");
  put(b, 257, 6, "ustar\0");
  put(b, 263, 2, "00");
  octal(b, 329, 8, e.devmajor ?? 0);
  octal(b, 337, 8, e.devminor ?? 0);
  put(b, 345, 155, prefix);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  put(b, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return b;
}

function put(b: Uint8Array, off: number, len: number, s: string): void {
  const bytes = Buffer.from(s, "latin1");
  b.set(bytes.subarray(0, len), off);
}

/** Octal field; values too large for it use the base-256 (GNU) form. */
function octal(b: Uint8Array, off: number, len: number, v: number): void {
  const s = v.toString(8);
  if (s.length < len) {
    put(b, off, len, s.padStart(len - 1, "0") + "\0");
    return;
  }
  b[off] = 0x80;
  let x = BigInt(v);
  for (let i = off + len - 1; i > off; i--) {
    b[i] = Number(x & 0xffn);
    x >>= 8n;
  }
}

function checksumOk(b: Uint8Array): boolean {
  const want = num(b, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  return want === unsigned || want === signed;
}

/** A numeric field: octal text (NUL/space padded) or GNU base-256 when the high bit is set. */
function num(b: Uint8Array, off: number, len: number): number {
  if (b[off]! & 0x80) {
    let v = BigInt(b[off]! & 0x7f);
    for (let i = off + 1; i < off + len; i++) v = (v << 8n) | BigInt(b[i]!);
    return Number(v);
  }
  const s = latin1(b, off, len)
    .replace(/[\0 ]+$/, "")
    .replace(/^[\0 ]+/, "");
  return s ? parseInt(s, 8) || 0 : 0;
}

function cstr(b: Uint8Array, off: number, len: number): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return latin1(b, off, end - off);
}

function latin1(b: Uint8Array, off: number, len: number): string {
  return Buffer.from(b.buffer, b.byteOffset + off, Math.max(0, len)).toString("latin1");
}
