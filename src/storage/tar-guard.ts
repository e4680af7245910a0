import { RuntimeError } from "../errors.ts";
import { BLOCK, decodeHeader, encodeEntry, encodePax, isZeroBlock, padding, parsePax } from "./tar-header.ts";

/**
 * A streaming filter between a layer's uncompressed tar and GNU tar. It reads every header
 * before tar sees it and:
 *  - refuses entries that could land outside the layer directory: names with "..", NUL bytes,
 *    an entry below an earlier symlink of the archive (a symlinked parent), a hard link whose
 *    target has ".." or lies below a symlink, a directory over a symlink; absolute names are
 *    harmless because GNU tar strips the leading "/" (and so does our bookkeeping);
 *  - refuses what would make its view and tar's differ: links/devices/dirs carrying data,
 *    sparse entries, unknown entry types, a bad checksum, a truncated archive;
 *  - converts whiteouts to overlay's form: `.wh.NAME` becomes a character device 0:0 named NAME,
 *    `DIR/.wh..wh..opq` becomes the xattr trusted.overlay.opaque=y on DIR (a PAX xattr on a
 *    repeated directory entry), other `.wh..wh.*` metadata entries are dropped;
 *  - drops trusted.overlay.* xattrs that the layer itself carries (only we may set them).
 */

/** What the guard counted in a layer. */
export interface LayerStats {
  /** Bytes of the uncompressed archive. */
  tarBytes: number;
  entries: number;
  /** Sum of regular file sizes. */
  fileBytes: number;
  /** Estimated disk usage: files rounded up to 4 KiB plus 4 KiB per directory. */
  usageBytes: number;
}

/** The filter; push() the uncompressed stream in order, then finish(). */
export class TarGuard {
  readonly stats: LayerStats = { tarBytes: 0, entries: 0, fileBytes: 0, usageBytes: 0 };
  #layer: string;
  #out: (b: Uint8Array) => void = () => {};
  #hdr = new Uint8Array(BLOCK);
  #hdrFill = 0;
  #mode: "header" | "data" | "collect" | "trailer" = "header";
  #remaining = 0;
  #forward = true;
  #collect = new Uint8Array(0);
  #collectFill = 0;
  #collectSize = 0;
  #collectType = "";
  #pendingRaw: Uint8Array[] = [];
  #pax = new Map<string, string>();
  #longName: string | undefined;
  #longLink: string | undefined;
  #zeros = 0;
  #offset = 0;
  #symlinks = new Set<string>();
  #dirs = new Map<string, { mode: number; uid: number; gid: number; mtime: number }>();

  /** `layer` names the layer in errors. */
  constructor(layer: string) {
    this.#layer = layer;
  }

  /**
   * Feeds the next bytes of the uncompressed archive; `out` receives, in order, the bytes tar must
   * read (often subarrays of `chunk`). Throws invalid-argument for a hostile or malformed layer.
   */
  push(chunk: Uint8Array, out: (b: Uint8Array) => void): void {
    this.#out = out;
    this.stats.tarBytes += chunk.length;
    let i = 0;
    while (i < chunk.length) {
      if (this.#mode === "trailer") return; // after the end marker tar reads nothing more
      if (this.#mode === "data") {
        const n = Math.min(this.#remaining, chunk.length - i);
        if (this.#forward) this.#out(chunk.subarray(i, i + n));
        this.#remaining -= n;
        i += n;
        this.#offset += n;
        if (this.#remaining === 0) this.#mode = "header";
      } else if (this.#mode === "collect") {
        const n = Math.min(this.#collect.length - this.#collectFill, chunk.length - i);
        this.#collect.set(chunk.subarray(i, i + n), this.#collectFill);
        this.#collectFill += n;
        i += n;
        this.#offset += n;
        if (this.#collectFill === this.#collect.length) this.#extended();
      } else {
        const n = Math.min(BLOCK - this.#hdrFill, chunk.length - i);
        this.#hdr.set(chunk.subarray(i, i + n), this.#hdrFill);
        this.#hdrFill += n;
        i += n;
        this.#offset += n;
        if (this.#hdrFill === BLOCK) {
          this.#hdrFill = 0;
          this.#header();
        }
      }
    }
  }

  /** The stream ended: throws when it stopped inside an entry. */
  finish(): LayerStats {
    if (this.#mode === "data" || this.#mode === "collect" || this.#hdrFill !== 0 || this.#pendingRaw.length) throw this.#bad("the archive is truncated");
    return this.stats;
  }

  // --- internal ---

  #bad(why: string): RuntimeError {
    return new RuntimeError("invalid-argument", `layer ${this.#layer} refused: ${why}`);
  }

  #header(): void {
    const block = this.#hdr;
    if (isZeroBlock(block)) {
      if (this.#pendingRaw.length) throw this.#bad("extended header not followed by an entry");
      this.#out(block.slice());
      if (++this.#zeros === 2) this.#mode = "trailer";
      return;
    }
    this.#zeros = 0;
    const h = decodeHeader(block);
    if (!h) throw this.#bad(`not a valid tar archive (bad header checksum at byte ${this.#offset - BLOCK})`);
    if (h.type === "x" || h.type === "g" || h.type === "L" || h.type === "K") {
      if (h.size > 1 << 20) throw this.#bad(`extended header of ${h.size} bytes is too large`);
      this.#collectType = h.type;
      this.#collectSize = h.size;
      this.#collect = new Uint8Array(h.size + padding(h.size));
      this.#collectFill = 0;
      this.#pendingRaw.push(block.slice());
      this.#mode = "collect";
      if (this.#collect.length === 0) this.#extended();
      return;
    }
    this.#entry(h);
  }

  /** An extended header's body is complete. */
  #extended(): void {
    const body = this.#collect.subarray(0, this.#collectSize);
    this.#pendingRaw.push(this.#collect);
    this.#mode = "header";
    if (this.#collectType === "x" || this.#collectType === "g") {
      const recs = parsePax(body);
      for (const k of recs.keys()) if (k.startsWith("GNU.sparse.")) throw this.#bad("sparse files are not supported");
      if (this.#collectType === "g") {
        if (recs.has("path") || recs.has("linkpath") || recs.has("size")) throw this.#bad("a global PAX header may not set path, linkpath or size");
        // Forward only this global header; extended headers before it still wait for their entry.
        const [h, b] = this.#pendingRaw.splice(-2, 2);
        this.#out(h!);
        this.#out(b!);
        return;
      }
      for (const [k, v] of recs) this.#pax.set(k, v);
      return;
    }
    let end = body.indexOf(0);
    if (end < 0) end = body.length;
    const s = Buffer.from(body.buffer, body.byteOffset, end).toString("latin1");
    if (this.#collectType === "L") this.#longName = s;
    else this.#longLink = s;
  }

  #entry(h: NonNullable<ReturnType<typeof decodeHeader>>): void {
    const pax = this.#pax;
    const rawName = pax.get("path") ?? this.#longName ?? h.name;
    const rawLink = pax.get("linkpath") ?? this.#longLink ?? h.linkname;
    const size = pax.has("size") ? Number(pax.get("size")) : h.size;
    if (!Number.isSafeInteger(size) || size < 0) throw this.#bad(`bad size for "${rawName}"`);
    let type = h.type === "7" ? "0" : h.type;
    if (!"0123456".includes(type) || type.length !== 1) throw this.#bad(`unsupported tar entry type "${h.type}" for "${rawName}"`);
    if (type === "0" && rawName.endsWith("/")) {
      if (size !== 0) throw this.#bad(`"${rawName}" is a file with a directory name`);
      type = "5";
    }
    if (type !== "0" && size !== 0) throw this.#bad(`entry "${rawName}" of type ${type} carries data`);
    const path = this.#normalize(rawName);
    this.#checkParents(path, rawName);
    if (path === "" && type !== "5") throw this.#bad(`entry "${rawName}" would replace the layer root`);
    if (type === "5" && this.#symlinks.has(path)) throw this.#bad(`directory "${rawName}" would replace a symlink of the same layer`);
    if (type === "1") {
      const target = this.#normalize(rawLink);
      if (target === "") throw this.#bad(`hard link "${rawName}" points at the layer root`);
      this.#checkParents(target, rawLink);
    }
    if (rawLink.includes("\0") || rawName.includes("\0")) throw this.#bad(`entry "${rawName}" has a NUL byte in its name`);

    const slash = path.lastIndexOf("/");
    const parent = slash < 0 ? "" : path.slice(0, slash);
    const base = path.slice(slash + 1);
    const mtime = pax.has("mtime") ? Math.floor(Number(pax.get("mtime"))) || 0 : h.mtime;
    const uid = pax.has("uid") ? Number(pax.get("uid")) : h.uid;
    const gid = pax.has("gid") ? Number(pax.get("gid")) : h.gid;
    let forward = true;
    if (base.startsWith(".wh.")) {
      forward = false;
      if (base === ".wh..wh..opq") this.#opaque(parent);
      else if (!base.startsWith(".wh..wh.") && base.length > 4) {
        const target = parent ? `${parent}/${base.slice(4)}` : base.slice(4);
        this.#out(encodeEntry({ name: target, type: "3", mode: 0, uid, gid, mtime, devmajor: 0, devminor: 0 }));
        this.stats.entries++;
      }
    } else {
      this.#flushPending(pax);
      this.#out(this.#hdr.slice());
      this.stats.entries++;
      if (type === "0") {
        this.stats.fileBytes += size;
        this.stats.usageBytes += Math.ceil(size / 4096) * 4096;
      } else if (type === "5") {
        this.stats.usageBytes += 4096;
        this.#dirs.set(path, { mode: h.mode, uid, gid, mtime });
      } else if (type === "2") {
        this.#symlinks.add(path);
      }
    }
    this.#pendingRaw = [];
    this.#pax = new Map();
    this.#longName = this.#longLink = undefined;
    this.#remaining = size + padding(size);
    this.#forward = forward;
    this.#mode = this.#remaining > 0 ? "data" : "header";
  }

  /** Forwards the extended headers of the entry, rewriting a PAX header that carries trusted.overlay.* xattrs. */
  #flushPending(pax: Map<string, string>): void {
    const strip = [...pax.keys()].some((k) => k.startsWith("SCHILY.xattr.trusted.overlay."));
    if (!strip) {
      for (const b of this.#pendingRaw) this.#out(b);
      return;
    }
    // Re-encode: GNU long-name blocks stay as they were; the PAX records lose the overlay xattrs.
    const recs = [...pax].filter(([k]) => !k.startsWith("SCHILY.xattr.trusted.overlay."));
    const raw = this.#pendingRaw;
    for (let i = 0; i < raw.length; i += 2) {
      const typeflag = String.fromCharCode(raw[i]![156]!);
      if (typeflag === "x") continue;
      this.#out(raw[i]!);
      this.#out(raw[i + 1]!);
    }
    if (recs.length) {
      const body = encodePax(recs);
      const hdr = encodeEntry({ name: "././@PaxHeader", type: "x", mode: 0o644, uid: 0, gid: 0, mtime: 0, size: body.length });
      this.#out(hdr);
      this.#out(body);
      this.#out(new Uint8Array(padding(body.length)));
    }
  }

  /** A repeated directory entry for `dir` carrying trusted.overlay.opaque=y, with the metadata it had. */
  #opaque(dir: string): void {
    const m = this.#dirs.get(dir) ?? { mode: 0o755, uid: 0, gid: 0, mtime: Math.floor(Date.now() / 1000) };
    this.#out(encodeEntry({ name: dir ? `${dir}/` : "./", type: "5", ...m, pax: [["SCHILY.xattr.trusted.overlay.opaque", "y"]] }));
  }

  /** Strips "/" and "." components as GNU tar resolves them; refuses "..". */
  #normalize(name: string): string {
    const parts: string[] = [];
    for (const c of name.split("/")) {
      if (c === "" || c === ".") continue;
      if (c === "..") throw this.#bad(`entry "${name}" has a ".." component`);
      parts.push(c);
    }
    return parts.join("/");
  }

  /** Refuses a path whose parent goes through a symlink created earlier by this archive. */
  #checkParents(path: string, raw: string): void {
    if (this.#symlinks.size === 0) return;
    let i = path.indexOf("/");
    while (i >= 0) {
      if (this.#symlinks.has(path.slice(0, i))) throw this.#bad(`"${raw}" lies below the symlink "${path.slice(0, i)}"`);
      i = path.indexOf("/", i + 1);
    }
  }
}
