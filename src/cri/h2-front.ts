// The CRI socket's front: a plain unix-socket listener whose connections are handed in-process
// to the gRPC server (cri/grpc-server.ts), after one fix-up of the client's bytes.
//
// Why: Bun's HTTP/2 server resets every stream whose `:authority` contains "/" (PROTOCOL_ERROR),
// and older grpc-go clients — critest v1.26, crictl < 1.30 — send the socket path there. The
// front parses the client→server frames, HPACK-decodes every header block (so it always knows
// the client's dynamic table) and replaces such an authority with "localhost". Blocks that need
// no change go through byte for byte, until the first one that does: from then on every block
// of that connection is re-encoded without the dynamic table (the server's copy of the table no
// longer matches the client's, so nothing may refer to it). All other frames, and everything the
// server sends, pass through untouched.

import { createServer, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { RuntimeError, messageOf } from "../errors.ts";
import { shortSocketPath } from "../sys/short-path.ts";
import { log } from "../log/index.ts";
import { encodeHeaderBlock, HpackDecoder, type HeaderBlock } from "./hpack.ts";

/** The authority sent to the server in place of one it would reject. */
export const LOCAL_AUTHORITY = "localhost";

/** Whether the server would reject this `:authority` value (it contains "/"). */
export function rejectedAuthority(value: string): boolean {
  return value.includes("/");
}

/** A listening front; see `listenH2Front`. */
export interface H2Front {
  /** Stops accepting connections (open ones stay) and resolves when the listener is closed. */
  close(): Promise<void>;
  /** Drops every open connection. */
  destroyConnections(): void;
}

/**
 * Listens on the unix socket `path` and passes each accepted connection to `serve` as a Duplex:
 * reads give the client's bytes with rejected authorities replaced (see `AuthorityRewriter`),
 * writes go to the client unchanged. A client whose header blocks cannot be decoded is
 * disconnected. Rejects with RuntimeError("unavailable") when it cannot listen.
 */
export async function listenH2Front(path: string, serve: (conn: Duplex) => void): Promise<H2Front> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    open.add(client);
    client.once("close", () => open.delete(client));
    serve(frontConnection(client));
  });
  // bound through a short alias of its directory (any path length), held while the server runs:
  // closing the server unlinks the socket through it
  let alias;
  try {
    alias = shortSocketPath(path);
  } catch (e) {
    throw new RuntimeError("unavailable", `listen on "${path}": ${messageOf(e)}`, { cause: e });
  }
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e) => reject(new RuntimeError("unavailable", `listen on "${path}": ${messageOf(e)}`, { cause: e })));
      server.listen(alias.path, () => resolve());
    });
  } catch (e) {
    alias.release();
    throw e;
  }
  return {
    close: () => new Promise<void>((resolve) => server.close(() => (alias.release(), resolve()))),
    destroyConnections: () => {
      for (const c of open) c.destroy();
    },
  };
}

/**
 * Rewrites the client→server byte stream of one HTTP/2 connection: feed it the client's bytes in
 * order; it calls `emit` with the bytes for the server, in order (slices of the input where
 * nothing changes). Throws RuntimeError("invalid-argument") on a malformed header block or
 * frame sequence; the connection must then be dropped. Input that does not start with the
 * HTTP/2 connection preface is passed through untouched.
 */
export class AuthorityRewriter {
  /** Header blocks rewritten so far. */
  rewritten = 0;
  /** True once blocks are re-encoded (a rewrite happened on this connection). */
  reencoding = false;
  #emit: (b: Buffer) => void;
  #decoder = new HpackDecoder();
  #state = PREFACE_STATE;
  #prefaceAt = 0;
  #head = Buffer.alloc(9);
  #headLen = 0;
  #remaining = 0;
  #endHeaders = false;
  // raw HEADERS/CONTINUATION frames of a header block that is not complete yet
  #held = EMPTY;
  #heldLen = 0;

  constructor(emit: (b: Buffer) => void) {
    this.#emit = emit;
  }

  /** Consumes the next bytes from the client. */
  write(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    let from = 0; // chunk[from, i) is still to be emitted verbatim
    const flush = (to: number) => {
      if (to > from) this.#emit(chunk.subarray(from, to));
      from = to;
    };
    while (i < n) {
      if (this.#state === RAW) {
        i = n;
      } else if (this.#state === PREFACE_STATE) {
        for (; i < n && this.#prefaceAt < PREFACE.length; i++, this.#prefaceAt++) {
          if (chunk[i] !== PREFACE[this.#prefaceAt]) break;
        }
        if (this.#prefaceAt === PREFACE.length) this.#state = HEAD;
        else if (i < n) this.#state = RAW; // not HTTP/2 with prior knowledge: the server answers it
      } else if (this.#state === PASS) {
        const take = Math.min(this.#remaining, n - i);
        i += take;
        this.#remaining -= take;
        if (this.#remaining === 0) this.#state = HEAD;
      } else if (this.#state === HOLD) {
        const take = Math.min(this.#remaining, n - i);
        this.#hold(chunk, i, take);
        i += take;
        from = i;
        this.#remaining -= take;
        if (this.#remaining === 0) this.#frameHeld();
      } else {
        // HEAD: a frame header, usually whole in this chunk; a split one is collected in #head
        let hdr = chunk;
        let hp = i;
        const split = this.#headLen > 0 || n - i < 9;
        if (!split) {
          i += 9;
        } else {
          if (this.#headLen === 0) flush(i);
          const take = Math.min(9 - this.#headLen, n - i);
          chunk.copy(this.#head, this.#headLen, i, i + take);
          this.#headLen += take;
          i += take;
          from = i;
          if (this.#headLen < 9) break;
          this.#headLen = 0;
          hdr = this.#head;
          hp = 0;
        }
        const len = hdr.readUIntBE(hp, 3);
        const type = hdr[hp + 3]!;
        const flags = hdr[hp + 4]!;
        if (this.#heldLen > 0 && type !== CONTINUATION) throw protocol("a header block was interrupted by another frame");
        if (this.#heldLen === 0 && type === CONTINUATION) throw protocol("CONTINUATION without HEADERS");
        if (type !== HEADERS && type !== CONTINUATION) {
          if (split) this.#emit(Buffer.from(this.#head));
          this.#remaining = len;
          this.#state = len > 0 ? PASS : HEAD;
          continue;
        }
        if (!split && type === HEADERS && flags & END_HEADERS && n - i >= len) {
          // the common case: a whole header block in one frame in this chunk, decoded in place
          const [s, e] = fragment(chunk, i, len, flags);
          const block = this.#decoder.decode(chunk, s, e);
          if (this.reencoding || needsRewrite(block)) {
            flush(hp);
            this.#emit(this.#reencode(block, hdr.readUInt32BE(hp + 5) & 0x7fffffff, flags, chunk, i));
            from = i + len;
          }
          i += len;
          continue;
        }
        if (!split) flush(hp);
        this.#hold(hdr, hp, 9);
        from = i;
        this.#endHeaders = (flags & END_HEADERS) !== 0;
        this.#remaining = len;
        this.#state = HOLD;
        if (len === 0) this.#frameHeld();
      }
    }
    flush(n);
  }

  #hold(src: Buffer, at: number, len: number): void {
    const need = this.#heldLen + len;
    if (need > MAX_BLOCK) throw protocol(`header block larger than ${MAX_BLOCK} bytes`);
    if (need > this.#held.length) {
      const next = Buffer.allocUnsafe(Math.max(need, this.#held.length * 2, 1024));
      this.#held.copy(next, 0, 0, this.#heldLen);
      this.#held = next;
    }
    src.copy(this.#held, this.#heldLen, at, at + len);
    this.#heldLen = need;
  }

  #frameHeld(): void {
    this.#state = HEAD;
    if (!this.#endHeaders) return;
    const held = this.#held.subarray(0, this.#heldLen);
    this.#held = EMPTY;
    this.#heldLen = 0;
    // gather the fragments of the HEADERS frame and its CONTINUATIONs
    const parts: Buffer[] = [];
    for (let p = 0; p < held.length; ) {
      const len = held.readUIntBE(p, 3);
      const [s, e] = p === 0 ? fragment(held, 9, len, held[4]!) : [p + 9, p + 9 + len];
      parts.push(held.subarray(s, e));
      p += 9 + len;
    }
    const block = this.#decoder.decode(Buffer.concat(parts));
    if (this.reencoding || needsRewrite(block)) this.#emit(this.#reencode(block, held.readUInt32BE(5) & 0x7fffffff, held[4]!, held, 9));
    else this.#emit(held);
  }

  // A HEADERS frame (split into CONTINUATIONs when needed) carrying `block` with rejected
  // authorities replaced, encoded without the dynamic table; `payload[at…]` is the original
  // HEADERS payload, for its priority fields.
  #reencode(block: HeaderBlock, streamId: number, flags: number, payload: Buffer, at: number): Buffer {
    for (const f of block.fields) {
      if (f.name === ":authority" && rejectedAuthority(f.value)) {
        if (this.rewritten++ === 0) l().debug("replacing the client's :authority with localhost", { authority: f.value });
        f.value = LOCAL_AUTHORITY;
      }
    }
    this.reencoding = true;
    const body = encodeHeaderBlock(block.fields, block.sizeUpdates);
    const prio = flags & PRIORITY ? 5 : 0;
    const first = Math.min(body.length, MAX_FRAME - prio);
    const conts = Math.ceil((body.length - first) / MAX_FRAME);
    const out = Buffer.allocUnsafe(9 * (1 + conts) + prio + body.length);
    let p = frameHeader(out, 0, first + prio, HEADERS, (flags & (END_STREAM | PRIORITY)) | (conts === 0 ? END_HEADERS : 0), streamId);
    if (prio) p += payload.copy(out, p, at + (flags & PADDED ? 1 : 0), at + (flags & PADDED ? 6 : 5));
    p += body.copy(out, p, 0, first);
    for (let s = first, k = 1; k <= conts; k++, s += MAX_FRAME) {
      const e = Math.min(s + MAX_FRAME, body.length);
      p = frameHeader(out, p, e - s, CONTINUATION, k === conts ? END_HEADERS : 0, streamId);
      p += body.copy(out, p, s, e);
    }
    return out;
  }
}

// --- internal ---

// A child taken at call time: consola children copy the level when they are made, and the
// daemon sets its level after the modules are loaded.
const l = () => log.withTag("cri");
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const EMPTY = Buffer.alloc(0);
const [PREFACE_STATE, HEAD, PASS, HOLD, RAW] = [0, 1, 2, 3, 4];
const HEADERS = 0x1;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
/** The least SETTINGS_MAX_FRAME_SIZE a peer may advertise (RFC 9113 §6.5.2): always accepted. */
const MAX_FRAME = 16384;
const MAX_BLOCK = 1 << 20;

function protocol(what: string): RuntimeError {
  return new RuntimeError("invalid-argument", `http/2 from the client: ${what}`);
}

function needsRewrite(block: HeaderBlock): boolean {
  for (const f of block.fields) if (f.name === ":authority" && rejectedAuthority(f.value)) return true;
  return false;
}

// The header block fragment of a HEADERS payload `buf[at, at + len)`: without pad length,
// priority fields and padding (RFC 9113 §6.2).
function fragment(buf: Buffer, at: number, len: number, flags: number): [number, number] {
  let s = at;
  let e = at + len;
  if (flags & PADDED) {
    if (len < 1) throw protocol("PADDED HEADERS frame without a pad length");
    e -= buf[s]!;
    s += 1;
  }
  if (flags & PRIORITY) s += 5;
  if (s > e) throw protocol("HEADERS padding or priority larger than the frame");
  return [s, e];
}

function frameHeader(out: Buffer, p: number, len: number, type: number, flags: number, streamId: number): number {
  out.writeUIntBE(len, p, 3);
  out[p + 3] = type;
  out[p + 4] = flags;
  out.writeUInt32BE(streamId, p + 5);
  return p + 9;
}

// The Duplex handed to the gRPC server for one client connection.
function frontConnection(client: Socket): Duplex {
  // The server writes a response as several frames (HEADERS, DATA, trailers) in one turn of the
  // loop: they are gathered and written to the client at once, one system call instead of three.
  // While the client's socket is full, the server is held (its write callbacks wait for drain).
  let out: Buffer[] = [];
  let held: Array<() => void> | undefined;
  const flush = () => {
    const chunks = out;
    out = [];
    if (client.destroyed) return;
    if (client.write(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)) || held) return;
    held = [];
    client.once("drain", () => {
      const cbs = held ?? [];
      held = undefined;
      for (const cb of cbs) cb();
    });
  };
  const conn = new Duplex({
    read: () => void client.resume(),
    write(chunk: Buffer, _enc, cb) {
      if (out.length === 0) setImmediate(flush);
      out.push(chunk);
      if (held) held.push(cb);
      else cb();
    },
    final(cb) {
      if (out.length) flush();
      client.end();
      cb();
    },
    destroy(err, cb) {
      client.destroy();
      cb(err);
    },
  });
  const rewriter = new AuthorityRewriter((b) => {
    if (!conn.push(b)) client.pause();
  });
  client.on("data", (chunk: Buffer) => {
    try {
      rewriter.write(chunk);
    } catch (e) {
      l().warn(`dropping a CRI client connection: ${messageOf(e)}`);
      conn.destroy();
    }
  });
  client.on("end", () => conn.push(null));
  client.on("close", () => conn.destroy());
  client.on("error", (e) => l().debug("CRI client connection error", { error: messageOf(e) }));
  return conn;
}
