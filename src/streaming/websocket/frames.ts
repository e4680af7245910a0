/**
 * RFC 6455 framing: encoding (server frames go unmasked, a client's are masked), an incremental
 * parser that unmasks and enforces the rules a server must (client frames masked, no RSV bits
 * without extensions, control frames short and unfragmented), close payloads and the
 * Sec-WebSocket-Accept key.
 */
import { createHash } from "node:crypto";

/** Frame opcodes. */
export const Opcode = { CONTINUATION: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 } as const;

/** Close codes this server uses. */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  NO_STATUS: 1005,
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
} as const;

/** One parsed (and unmasked) frame. */
export interface WsFrame {
  fin: boolean;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** A violation that fails the connection with `code` (RFC 6455 section 7.1.7). */
export class WsProtocolError extends Error {
  override name = "WsProtocolError";
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Encodes one frame; pass `mask` (4 bytes) for a client frame. */
export function encodeFrame(opcode: number, payload: Uint8Array, o: { fin?: boolean; mask?: Uint8Array } = {}): Buffer {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 0x10000 ? 2 : 8;
  const maskLen = o.mask ? 4 : 0;
  const b = Buffer.allocUnsafe(2 + ext + maskLen + len);
  b[0] = ((o.fin ?? true) ? 0x80 : 0) | (opcode & 0x0f);
  b[1] = (o.mask ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) b.writeUInt16BE(len, 2);
  else if (ext === 8) b.writeBigUInt64BE(BigInt(len), 2);
  const off = 2 + ext + maskLen;
  if (o.mask) {
    b.set(o.mask.subarray(0, 4), 2 + ext);
    for (let i = 0; i < len; i++) b[off + i] = payload[i]! ^ o.mask[i & 3]!;
  } else b.set(payload, off);
  return b;
}

/** The payload of a close frame. */
export function closePayload(code: number, reason = ""): Buffer {
  const r = Buffer.from(reason, "utf8").subarray(0, 123);
  const b = Buffer.allocUnsafe(2 + r.length);
  b.writeUInt16BE(code, 0);
  b.set(r, 2);
  return b;
}

/** Reads a close frame's payload; an empty one means 1005 (no status). Throws WsProtocolError. */
export function parseClosePayload(p: Buffer): { code: number; reason: string } {
  if (p.length === 0) return { code: CloseCode.NO_STATUS, reason: "" };
  if (p.length === 1) throw new WsProtocolError(CloseCode.PROTOCOL_ERROR, "close frame with a 1-byte payload");
  const code = p.readUInt16BE(0);
  const valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
  if (!valid) throw new WsProtocolError(CloseCode.PROTOCOL_ERROR, `invalid close code ${code}`);
  return { code, reason: p.subarray(2).toString("utf8") };
}

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key. */
export function acceptKey(key: string): string {
  return createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
}

/**
 * Incremental frame parser. `requireMask` is true on the server side. Frames whose payload
 * exceeds `maxPayload` fail with 1009 before they are buffered.
 */
export class WsFrameParser {
  #buf: Buffer = Buffer.alloc(0);
  #more: Buffer[] = [];
  #moreLen = 0;
  #need = 0;
  constructor(private readonly o: { requireMask: boolean; maxPayload: number }) {}

  /** Appends bytes and returns every frame now complete. Throws WsProtocolError. */
  push(chunk: Buffer): WsFrame[] {
    // Bytes of a big frame are gathered without copying until the whole frame is there.
    this.#more.push(chunk);
    this.#moreLen += chunk.length;
    if (this.#buf.length + this.#moreLen < this.#need) return [];
    this.#buf = Buffer.concat([this.#buf, ...this.#more]);
    this.#more = [];
    this.#moreLen = 0;
    this.#need = 0;
    const out: WsFrame[] = [];
    let off = 0;
    for (;;) {
      const b = this.#buf;
      if (b.length - off < 2) break;
      const b0 = b[off]!;
      const b1 = b[off + 1]!;
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      const masked = (b1 & 0x80) !== 0;
      if (b0 & 0x70) throw new WsProtocolError(CloseCode.PROTOCOL_ERROR, "reserved bits set without an extension");
      if (![0, 1, 2, 8, 9, 10].includes(opcode)) throw new WsProtocolError(CloseCode.PROTOCOL_ERROR, `unknown opcode ${opcode}`);
      if (this.o.requireMask && !masked) throw new WsProtocolError(CloseCode.PROTOCOL_ERROR, "client frame is not masked");
      let len = b1 & 0x7f;
      let hdr = 2;
      if (len === 126) {
        if (b.length - off < 4) break;
        len = b.readUInt16BE(off + 2);
        hdr = 4;
      } else if (len === 127) {
        if (b.length - off < 10) break;
        const big = b.readBigUInt64BE(off + 2);
        if (big > BigInt(this.o.maxPayload)) throw new WsProtocolError(CloseCode.TOO_BIG, `frame of ${big} bytes is too big`);
        len = Number(big);
        hdr = 10;
      }
      if (opcode >= 8 && (len > 125 || !fin)) throw new WsProtocolError(CloseCode.PROTOCOL_ERROR, "control frame too long or fragmented");
      if (len > this.o.maxPayload) throw new WsProtocolError(CloseCode.TOO_BIG, `frame of ${len} bytes is too big`);
      const maskOff = off + hdr;
      const dataOff = maskOff + (masked ? 4 : 0);
      if (b.length < dataOff + len) {
        this.#need = dataOff + len - off;
        break;
      }
      const payload = Buffer.from(b.subarray(dataOff, dataOff + len));
      if (masked) unmask(payload, b.subarray(maskOff, maskOff + 4));
      out.push({ fin, opcode, masked, payload });
      off = dataOff + len;
    }
    this.#buf = off === this.#buf.length ? Buffer.alloc(0) : this.#buf.subarray(off);
    return out;
  }
}

// --- internal ---

function unmask(p: Buffer, mask: Buffer): void {
  const m0 = mask[0]!,
    m1 = mask[1]!,
    m2 = mask[2]!,
    m3 = mask[3]!;
  const n = p.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    p[i] = p[i]! ^ m0;
    p[i + 1] = p[i + 1]! ^ m1;
    p[i + 2] = p[i + 2]! ^ m2;
    p[i + 3] = p[i + 3]! ^ m3;
  }
  for (; i < n; i++) p[i] = p[i]! ^ mask[i & 3]!;
}
