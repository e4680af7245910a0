/**
 * A tiny tar writer and reader for test images. The writer emits entries exactly as given
 * (absolute names, `..`, links pointing anywhere), which GNU tar refuses to produce, so tests can
 * build hostile layers. Format: POSIX ustar headers (512 bytes, octal fields, checksum), with a
 * PAX extended header (typeflag `x`) when a name, link name or id does not fit.
 * See https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html#tag_20_92_13_06
 */

/** The kinds of tar entries the writer knows. */
export type TarEntryType = "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";

/** One tar entry. `name` and `linkname` are written verbatim: no normalisation, no checks. */
export interface TarEntry {
  name: string;
  /** Default "file". */
  type?: TarEntryType;
  /** Contents of a "file" entry. */
  data?: string | Uint8Array;
  /** Target of a symlink or hard link. */
  linkname?: string;
  /** Permission bits (and setuid/setgid/sticky); default 0644 for files, 0755 for dirs, 0777 for symlinks. */
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch; default 2023-01-01T00:00:00Z so layers are reproducible. */
  mtime?: number;
  devmajor?: number;
  devminor?: number;
  /** Extra PAX records, e.g. `{"SCHILY.xattr.user.k": "v"}`. */
  pax?: Record<string, string>;
}

/** The fixed mtime of every entry that sets none (2023-01-01T00:00:00Z). */
export const TAR_MTIME = 1672531200;

/** Serialises entries into an uncompressed tar archive, ending with two zero blocks. */
export function writeTar(entries: readonly TarEntry[]): Uint8Array<ArrayBuffer> {
  const chunks: Uint8Array[] = [];
  for (const e of entries) {
    const type = e.type ?? "file";
    const data = type === "file" ? toBytes(e.data ?? "") : new Uint8Array(0);
    const pax: Record<string, string> = { ...e.pax };
    const name = enc.encode(e.name);
    const link = enc.encode(e.linkname ?? "");
    if (name.length > 100 || !isAscii(e.name)) pax.path = e.name;
    if (link.length > 100 || !isAscii(e.linkname ?? "")) pax.linkpath = e.linkname ?? "";
    const uid = e.uid ?? 0;
    const gid = e.gid ?? 0;
    if (uid > 0o7777777) pax.uid = String(uid);
    if (gid > 0o7777777) pax.gid = String(gid);
    if (Object.keys(pax).length > 0) {
      const body = paxBody(pax);
      chunks.push(header({ name: `PaxHeaders/${e.name.split("/").filter(Boolean).pop() ?? "x"}`, flag: "x", size: body.length, mode: 0o644 }));
      chunks.push(body, padding(body.length));
    }
    chunks.push(
      header({
        name: e.name,
        flag: FLAG[type],
        size: data.length,
        mode: e.mode ?? (type === "dir" ? 0o755 : type === "symlink" ? 0o777 : 0o644),
        uid: Math.min(uid, 0o7777777),
        gid: Math.min(gid, 0o7777777),
        mtime: e.mtime ?? TAR_MTIME,
        linkname: e.linkname ?? "",
        devmajor: e.devmajor ?? 0,
        devminor: e.devminor ?? 0,
      }),
    );
    if (data.length > 0) chunks.push(data, padding(data.length));
  }
  chunks.push(new Uint8Array(1024));
  return concat(chunks);
}

/** Parses an uncompressed tar archive (ustar, PAX `x`, GNU `L`/`K` long names) back into entries. */
export function readTar(tar: Uint8Array): TarEntry[] {
  const out: TarEntry[] = [];
  let off = 0;
  let pending: Record<string, string> = {};
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const sum = octal(h, 148, 8);
    if (sum !== checksum(h)) throw new Error(`tar: bad header checksum at offset ${off}`);
    const size = octal(h, 124, 12);
    const flag = String.fromCharCode(h[156] ?? 0);
    const body = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (flag === "x") {
      pending = { ...pending, ...parsePax(body) };
      continue;
    }
    if (flag === "L" || flag === "K") {
      pending[flag === "L" ? "path" : "linkpath"] = dec.decode(body).replace(/\0+$/, "");
      continue;
    }
    if (flag === "g") continue;
    const prefix = str(h, 345, 155);
    const type = TYPE[flag] ?? "file";
    const { path, linkpath, uid, gid, ...rest } = pending;
    const e: TarEntry = {
      name: path ?? (prefix ? `${prefix}/${str(h, 0, 100)}` : str(h, 0, 100)),
      type,
      mode: octal(h, 100, 8),
      uid: uid ? Number(uid) : octal(h, 108, 8),
      gid: gid ? Number(gid) : octal(h, 116, 8),
      mtime: octal(h, 136, 12),
    };
    if (type === "file") e.data = body.slice();
    if (type === "symlink" || type === "hardlink") e.linkname = linkpath ?? str(h, 157, 100);
    if (type === "char" || type === "block") Object.assign(e, { devmajor: octal(h, 329, 8), devminor: octal(h, 337, 8) });
    if (Object.keys(rest).length > 0) e.pax = rest;
    out.push(e);
    pending = {};
  }
  return out;
}

// --- internal ---

const enc = new TextEncoder();
const dec = new TextDecoder();

const FLAG: Record<TarEntryType, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
};
const TYPE: Record<string, TarEntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "6": "fifo",
};

interface Header {
  name: string;
  flag: string;
  size: number;
  mode: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

function header(o: Header): Uint8Array {
  const h = new Uint8Array(512);
  put(h, 0, 100, o.name);
  putOctal(h, 100, 8, o.mode & 0o7777);
  putOctal(h, 108, 8, o.uid ?? 0);
  putOctal(h, 116, 8, o.gid ?? 0);
  putOctal(h, 124, 12, o.size);
  putOctal(h, 136, 12, o.mtime ?? TAR_MTIME);
  h[156] = o.flag.charCodeAt(0);
  put(h, 157, 100, o.linkname ?? "");
  put(h, 257, 6, "ustar\0");
  put(h, 263, 2, "00");
  put(h, 265, 32, o.uid ? "" : "root");
  put(h, 297, 32, o.gid ? "" : "root");
  putOctal(h, 329, 8, o.devmajor ?? 0);
  putOctal(h, 337, 8, o.devminor ?? 0);
  const sum = checksum(h);
  put(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

/** Sum of the header bytes with the checksum field counted as eight spaces. */
function checksum(h: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < 512; i++) s += i >= 148 && i < 156 ? 32 : (h[i] ?? 0);
  return s;
}

/** Writes at most `len` bytes of `s` (truncated: long values travel in a PAX record). */
function put(h: Uint8Array, off: number, len: number, s: string): void {
  h.set(enc.encode(s).subarray(0, len), off);
}

function putOctal(h: Uint8Array, off: number, len: number, n: number): void {
  put(
    h,
    off,
    len,
    n
      .toString(8)
      .padStart(len - 1, "0")
      .slice(-(len - 1)) + "\0",
  );
}

function str(h: Uint8Array, off: number, len: number): string {
  const f = h.subarray(off, off + len);
  const end = f.indexOf(0);
  return dec.decode(end < 0 ? f : f.subarray(0, end));
}

function octal(h: Uint8Array, off: number, len: number): number {
  const s = str(h, off, len).trim();
  return s ? parseInt(s, 8) : 0;
}

/** PAX records: "LEN key=value\n" where LEN counts the whole record, itself included. */
function paxBody(rec: Record<string, string>): Uint8Array {
  let out = "";
  for (const [k, v] of Object.entries(rec)) {
    const rest = ` ${k}=${v}\n`;
    const restLen = enc.encode(rest).length;
    let n = restLen + 1;
    while (String(n).length + restLen !== n) n = String(n).length + restLen;
    out += `${n}${rest}`;
  }
  return enc.encode(out);
}

function parsePax(body: Uint8Array): Record<string, string> {
  const rec: Record<string, string> = {};
  let off = 0;
  while (off < body.length) {
    const sp = body.indexOf(0x20, off);
    if (sp < 0) break;
    const n = parseInt(dec.decode(body.subarray(off, sp)), 10);
    if (!(n > 0)) break;
    const kv = dec.decode(body.subarray(sp + 1, off + n - 1));
    const eq = kv.indexOf("=");
    rec[kv.slice(0, eq)] = kv.slice(eq + 1);
    off += n;
  }
  return rec;
}

function padding(n: number): Uint8Array {
  return new Uint8Array((512 - (n % 512)) % 512);
}

function toBytes(d: string | Uint8Array): Uint8Array {
  return typeof d === "string" ? enc.encode(d) : d;
}

function isAscii(s: string): boolean {
  return /^[\x01-\x7f]*$/.test(s);
}

function concat(chunks: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
