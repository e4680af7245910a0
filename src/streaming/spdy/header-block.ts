/**
 * SPDY/3 name/value header blocks and their compression. A block is
 * `count(32) { nameLen(32) name valueLen(32) value }*`, names lower-case, several values of one
 * name joined by NUL. Each direction of a connection has ONE zlib stream, primed with the
 * SPDY/3 dictionary, that every block of that direction goes through, each ended with a sync
 * flush (what Go's compress/zlib writer does in moby/spdystream, and what its reader expects).
 */
import zlib from "node:zlib";
import { SPDY3_DICTIONARY } from "./dictionary.ts";
import { SpdyProtocolError } from "./frames.ts";

/** Header names (lower-case) to their values. */
export type SpdyHeaders = Map<string, string[]>;

/** The largest decompressed header block accepted (a zlib bomb stops here). */
export const MAX_HEADER_BLOCK = 256 * 1024;

/** Builds SpdyHeaders from a plain object; names are lower-cased. */
export function spdyHeaders(init: Record<string, string | string[]> = {}): SpdyHeaders {
  const h: SpdyHeaders = new Map();
  for (const [k, v] of Object.entries(init)) h.set(k.toLowerCase(), Array.isArray(v) ? v : [v]);
  return h;
}

/** The first value of a header (names compare case-insensitively), or undefined. */
export function headerValue(h: SpdyHeaders, name: string): string | undefined {
  return h.get(name.toLowerCase())?.[0];
}

/** Encodes an uncompressed name/value block. */
export function encodeHeaderBlock(h: SpdyHeaders): Buffer {
  const parts: Buffer[] = [u32(h.size)];
  for (const [name, values] of h) {
    const n = Buffer.from(name.toLowerCase(), "utf8");
    const v = Buffer.from(values.join("\0"), "utf8");
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

/** Decodes an uncompressed name/value block. Throws SpdyProtocolError when malformed. */
export function decodeHeaderBlock(b: Buffer): SpdyHeaders {
  const h: SpdyHeaders = new Map();
  let off = 0;
  const take = (n: number): Buffer => {
    if (off + n > b.length) throw new SpdyProtocolError("truncated spdy header block");
    const s = b.subarray(off, off + n);
    off += n;
    return s;
  };
  const count = take(4).readUInt32BE(0);
  for (let i = 0; i < count; i++) {
    const name = take(take(4).readUInt32BE(0)).toString("utf8").toLowerCase();
    const value = take(take(4).readUInt32BE(0)).toString("utf8");
    if (name === "") throw new SpdyProtocolError("empty header name in spdy header block");
    const prev = h.get(name) ?? [];
    h.set(name, prev.concat(value.split("\0")));
  }
  return h;
}

/** One direction's compressor: compress() calls are serialized and share one zlib context. */
export class HeaderCompressor {
  #z = zlib.createDeflate({ dictionary: SPDY3_DICTIONARY, level: zlib.constants.Z_BEST_COMPRESSION });
  #chain: Promise<unknown> = Promise.resolve();

  /** Compresses a header block, ending it with a sync flush. */
  compress(h: SpdyHeaders): Promise<Buffer> {
    const block = encodeHeaderBlock(h);
    const next = this.#chain.then(() => flushThrough(this.#z, block, Infinity));
    this.#chain = next.catch(() => {});
    return next;
  }

  /** Frees the zlib context. */
  close(): void {
    this.#z.destroy();
  }
}

/** One direction's decompressor: decompress() calls are serialized and share one zlib context. */
export class HeaderDecompressor {
  #z = zlib.createInflate({ dictionary: SPDY3_DICTIONARY });
  #chain: Promise<unknown> = Promise.resolve();

  /** Inflates one frame's compressed block and decodes it. Rejects with SpdyProtocolError. */
  decompress(compressed: Buffer): Promise<SpdyHeaders> {
    const next = this.#chain.then(async () => {
      const raw = await flushThrough(this.#z, compressed, MAX_HEADER_BLOCK).catch((e: unknown) => {
        throw new SpdyProtocolError(`spdy header block does not inflate: ${e instanceof Error ? e.message : String(e)}`);
      });
      return decodeHeaderBlock(raw);
    });
    this.#chain = next.catch(() => {});
    return next;
  }

  /** Frees the zlib context. */
  close(): void {
    this.#z.destroy();
  }
}

// --- internal ---

/** Writes `input` through a zlib stream and resolves with everything it emitted by a sync flush. */
function flushThrough(z: zlib.Deflate | zlib.Inflate, input: Buffer, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      z.off("data", onData);
      z.off("error", onError);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, size));
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) return finish(new Error(`header block larger than ${limit} bytes`));
      chunks.push(c);
    };
    const onError = (e: Error) => finish(e);
    if (z.destroyed) return finish(new Error("zlib context closed"));
    z.on("data", onData);
    z.on("error", onError);
    z.write(input);
    z.flush(zlib.constants.Z_SYNC_FLUSH, () => finish());
  });
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
