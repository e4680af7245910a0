/**
 * SPDY/3.1 framing (draft-mbelshe-httpbis-spdy-00 and the 3.1 changes): encoding of every frame
 * the streaming server sends, and an incremental parser for what a client sends. Header blocks
 * travel here still compressed; `header-block.ts` owns the zlib contexts.
 *
 *   control frame: |1|version(15)|type(16)|flags(8)|length(24)|payload
 *   data frame:    |0|stream-id(31)|flags(8)|length(24)|payload
 */

/** Control frame types. */
export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

/** FLAG_FIN on data frames and on SYN_STREAM/SYN_REPLY/HEADERS. */
export const FLAG_FIN = 0x01;
/** FLAG_UNIDIRECTIONAL on SYN_STREAM: the receiver may not send on the stream. */
export const FLAG_UNIDIRECTIONAL = 0x02;

/** RST_STREAM status codes. */
export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
} as const;

/** GOAWAY status codes. */
export const GoAwayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

/** The SETTINGS id of the initial per-stream window. */
export const SETTINGS_INITIAL_WINDOW_SIZE = 7;
/** The largest payload a frame's 24-bit length can carry. */
export const MAX_FRAME_PAYLOAD = 0xffffff;

/** A parsed frame. Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are left compressed. */
export type Frame =
  | { kind: "data"; streamId: number; flags: number; data: Buffer }
  | { kind: "syn_stream"; streamId: number; associatedId: number; priority: number; flags: number; headerBlock: Buffer }
  | { kind: "syn_reply"; streamId: number; flags: number; headerBlock: Buffer }
  | { kind: "headers"; streamId: number; flags: number; headerBlock: Buffer }
  | { kind: "rst_stream"; streamId: number; status: number }
  | { kind: "settings"; flags: number; entries: Array<{ flags: number; id: number; value: number }> }
  | { kind: "ping"; id: number }
  | { kind: "goaway"; lastGoodStreamId: number; status: number }
  | { kind: "window_update"; streamId: number; delta: number }
  | { kind: "unknown"; version: number; type: number; flags: number; payload: Buffer };

/** A malformed frame: the connection cannot continue (GOAWAY PROTOCOL_ERROR). */
export class SpdyProtocolError extends Error {
  override name = "SpdyProtocolError";
}

/** Encodes a DATA frame. */
export function dataFrame(streamId: number, data: Uint8Array, fin = false): Buffer {
  if (data.length > MAX_FRAME_PAYLOAD) throw new RangeError(`spdy data frame of ${data.length} bytes is too large`);
  const b = Buffer.allocUnsafe(8 + data.length);
  b.writeUInt32BE(streamId & 0x7fffffff, 0);
  b.writeUInt32BE((((fin ? FLAG_FIN : 0) << 24) | data.length) >>> 0, 4);
  b.set(data, 8);
  return b;
}

/** Encodes a SYN_STREAM frame around an already compressed header block. */
export function synStreamFrame(streamId: number, headerBlock: Buffer, o: { flags?: number; associatedId?: number; priority?: number } = {}): Buffer {
  const p = Buffer.alloc(10);
  p.writeUInt32BE(streamId & 0x7fffffff, 0);
  p.writeUInt32BE((o.associatedId ?? 0) & 0x7fffffff, 4);
  p[8] = ((o.priority ?? 0) & 0x7) << 5;
  return controlFrame(FrameType.SYN_STREAM, o.flags ?? 0, Buffer.concat([p, headerBlock]));
}

/** Encodes a SYN_REPLY frame around an already compressed header block. */
export function synReplyFrame(streamId: number, headerBlock: Buffer, flags = 0): Buffer {
  return controlFrame(FrameType.SYN_REPLY, flags, Buffer.concat([u32(streamId & 0x7fffffff), headerBlock]));
}

/** Encodes a HEADERS frame around an already compressed header block. */
export function headersFrame(streamId: number, headerBlock: Buffer, flags = 0): Buffer {
  return controlFrame(FrameType.HEADERS, flags, Buffer.concat([u32(streamId & 0x7fffffff), headerBlock]));
}

/** Encodes a RST_STREAM frame. */
export function rstStreamFrame(streamId: number, status: number): Buffer {
  return controlFrame(FrameType.RST_STREAM, 0, Buffer.concat([u32(streamId & 0x7fffffff), u32(status)]));
}

/** Encodes a SETTINGS frame. */
export function settingsFrame(entries: Array<{ id: number; value: number; flags?: number }>, flags = 0): Buffer {
  const p = Buffer.alloc(4 + entries.length * 8);
  p.writeUInt32BE(entries.length, 0);
  entries.forEach((e, i) => {
    p.writeUInt32BE(((((e.flags ?? 0) & 0xff) << 24) | (e.id & 0xffffff)) >>> 0, 4 + i * 8);
    p.writeUInt32BE(e.value >>> 0, 8 + i * 8);
  });
  return controlFrame(FrameType.SETTINGS, flags, p);
}

/** Encodes a PING frame. */
export function pingFrame(id: number): Buffer {
  return controlFrame(FrameType.PING, 0, u32(id));
}

/** Encodes a GOAWAY frame. */
export function goAwayFrame(lastGoodStreamId: number, status: number = GoAwayStatus.OK): Buffer {
  return controlFrame(FrameType.GOAWAY, 0, Buffer.concat([u32(lastGoodStreamId & 0x7fffffff), u32(status)]));
}

/** Encodes a WINDOW_UPDATE frame (stream 0 is the SPDY/3.1 session window). */
export function windowUpdateFrame(streamId: number, delta: number): Buffer {
  return controlFrame(FrameType.WINDOW_UPDATE, 0, Buffer.concat([u32(streamId & 0x7fffffff), u32(delta & 0x7fffffff)]));
}

/**
 * Incremental frame parser: feed it socket chunks, take whole frames out. Frames larger than
 * `maxPayload` are a protocol error (a client would otherwise make us buffer 16 MiB at a time).
 */
export class FrameParser {
  #buf: Buffer = Buffer.alloc(0);
  #more: Buffer[] = [];
  #moreLen = 0;
  #need = 0;
  constructor(private readonly maxPayload = MAX_FRAME_PAYLOAD) {}

  /** Bytes received but not yet part of a whole frame. */
  get pending(): number {
    return this.#buf.length + this.#moreLen;
  }

  /** Appends bytes and returns every frame now complete, in order. Throws SpdyProtocolError. */
  push(chunk: Buffer): Frame[] {
    // Bytes of a big frame are gathered without copying until the whole frame is there.
    this.#more.push(chunk);
    this.#moreLen += chunk.length;
    if (this.#buf.length + this.#moreLen < this.#need) return [];
    this.#buf = this.#buf.length === 0 && this.#more.length === 1 ? chunk : Buffer.concat([this.#buf, ...this.#more]);
    this.#more = [];
    this.#moreLen = 0;
    this.#need = 0;
    const out: Frame[] = [];
    let off = 0;
    while (this.#buf.length - off >= 8) {
      const len = this.#buf.readUInt32BE(off + 4) & 0xffffff;
      if (len > this.maxPayload) throw new SpdyProtocolError(`spdy frame of ${len} bytes exceeds the limit of ${this.maxPayload}`);
      if (this.#buf.length - off < 8 + len) {
        this.#need = 8 + len;
        break;
      }
      out.push(parseFrame(this.#buf.subarray(off, off + 8 + len)));
      off += 8 + len;
    }
    this.#buf = off === this.#buf.length ? Buffer.alloc(0) : this.#buf.subarray(off);
    return out;
  }
}

/** Parses one whole frame (header and payload). Throws SpdyProtocolError. */
export function parseFrame(b: Buffer): Frame {
  const first = b.readUInt32BE(0);
  const flags = b[4]!;
  const p = b.subarray(8);
  if ((first & 0x80000000) === 0) return { kind: "data", streamId: first & 0x7fffffff, flags, data: p };
  const version = (first >>> 16) & 0x7fff;
  const type = first & 0xffff;
  if (version !== 3) return { kind: "unknown", version, type, flags, payload: p };
  const need = (n: number, what: string) => {
    if (p.length < n) throw new SpdyProtocolError(`spdy ${what} frame is ${p.length} bytes, needs ${n}`);
  };
  switch (type) {
    case FrameType.SYN_STREAM:
      need(10, "SYN_STREAM");
      return {
        kind: "syn_stream",
        flags,
        streamId: p.readUInt32BE(0) & 0x7fffffff,
        associatedId: p.readUInt32BE(4) & 0x7fffffff,
        priority: p[8]! >> 5,
        headerBlock: p.subarray(10),
      };
    case FrameType.SYN_REPLY:
      need(4, "SYN_REPLY");
      return { kind: "syn_reply", flags, streamId: p.readUInt32BE(0) & 0x7fffffff, headerBlock: p.subarray(4) };
    case FrameType.HEADERS:
      need(4, "HEADERS");
      return { kind: "headers", flags, streamId: p.readUInt32BE(0) & 0x7fffffff, headerBlock: p.subarray(4) };
    case FrameType.RST_STREAM:
      need(8, "RST_STREAM");
      return { kind: "rst_stream", streamId: p.readUInt32BE(0) & 0x7fffffff, status: p.readUInt32BE(4) };
    case FrameType.SETTINGS: {
      need(4, "SETTINGS");
      const n = p.readUInt32BE(0);
      need(4 + n * 8, "SETTINGS");
      const entries = [];
      for (let i = 0; i < n; i++) {
        const fid = p.readUInt32BE(4 + i * 8);
        entries.push({ flags: fid >>> 24, id: fid & 0xffffff, value: p.readUInt32BE(8 + i * 8) });
      }
      return { kind: "settings", flags, entries };
    }
    case FrameType.PING:
      need(4, "PING");
      return { kind: "ping", id: p.readUInt32BE(0) };
    case FrameType.GOAWAY:
      need(4, "GOAWAY");
      // SPDY/3 has an 8-byte GOAWAY (with status); SPDY/2 peers send 4 bytes.
      return { kind: "goaway", lastGoodStreamId: p.readUInt32BE(0) & 0x7fffffff, status: p.length >= 8 ? p.readUInt32BE(4) : 0 };
    case FrameType.WINDOW_UPDATE:
      need(8, "WINDOW_UPDATE");
      return { kind: "window_update", streamId: p.readUInt32BE(0) & 0x7fffffff, delta: p.readUInt32BE(4) & 0x7fffffff };
    default:
      return { kind: "unknown", version, type, flags, payload: p };
  }
}

// --- internal ---

function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  if (payload.length > MAX_FRAME_PAYLOAD) throw new RangeError(`spdy control frame of ${payload.length} bytes is too large`);
  const h = Buffer.allocUnsafe(8);
  h.writeUInt32BE((((0x8000 | 3) << 16) | type) >>> 0, 0);
  h.writeUInt32BE((((flags & 0xff) << 24) | payload.length) >>> 0, 4);
  return Buffer.concat([h, payload]);
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
