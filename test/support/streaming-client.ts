/**
 * Minimal streaming clients for the tests: an HTTP upgrade, a SPDY/3.1 client session (what
 * client-go's remotecommand and portforward do over moby/spdystream) and a WebSocket client
 * (masked frames, optional fragmentation) with the k8s channel framing helpers.
 */
import net from "node:net";
import tls from "node:tls";
import { FLAG_FIN, FrameParser, dataFrame, goAwayFrame, pingFrame, rstStreamFrame, synStreamFrame, type Frame } from "../../src/streaming/spdy/frames.ts";
import { HeaderCompressor, HeaderDecompressor, spdyHeaders } from "../../src/streaming/spdy/header-block.ts";
import { Opcode, WsFrameParser, closePayload, encodeFrame, parseClosePayload } from "../../src/streaming/websocket/frames.ts";

/** The answer to an upgrade request. */
export interface UpgradeResult {
  status: number;
  headers: Map<string, string[]>;
  body: string;
  socket: net.Socket;
  rest: Buffer;
}

/** Sends one request to `url` and reads the response head (and, unless 101, the body). */
export async function rawRequest(
  url: string,
  o: { method?: string; headers?: Array<[string, string]>; ca?: Buffer; tls?: tls.ConnectionOptions } = {},
): Promise<UpgradeResult> {
  const u = new URL(url);
  const socket: net.Socket = await new Promise((resolve, reject) => {
    const s =
      u.protocol === "https:"
        ? tls.connect({ host: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port), ca: o.ca, rejectUnauthorized: !!o.ca, ...o.tls }, () => resolve(s))
        : net.connect(Number(u.port), u.hostname.replace(/^\[|\]$/g, ""), () => resolve(s));
    s.once("error", reject);
  });
  const lines = [`${o.method ?? "POST"} ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, ...(o.headers ?? []).map(([k, v]) => `${k}: ${v}`), "", ""];
  socket.write(lines.join("\r\n"));
  // Not `for await`: leaving that loop would destroy the socket.
  const read = (): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const onData = (c: Buffer) => (cleanup(), resolve(c));
      const onClose = () => (cleanup(), reject(new Error("connection closed before a response")));
      const cleanup = () => {
        socket.off("data", onData);
        socket.off("close", onClose);
        socket.pause();
      };
      socket.on("data", onData);
      socket.on("close", onClose);
      socket.resume();
    });
  let buf: Buffer = Buffer.alloc(0);
  let end = -1;
  while (end < 0) {
    buf = Buffer.concat([buf, await read()]);
    end = buf.indexOf("\r\n\r\n");
  }
  const [statusLine, ...hl] = buf.subarray(0, end).toString("latin1").split("\r\n");
  const headers = new Map<string, string[]>();
  for (const l of hl) {
    const i = l.indexOf(":");
    const k = l.slice(0, i).toLowerCase();
    headers.set(k, [...(headers.get(k) ?? []), l.slice(i + 1).trim()]);
  }
  const status = Number(statusLine!.split(" ")[1]);
  let rest = buf.subarray(end + 4);
  if (status === 101) return { status, headers, body: "", socket, rest };
  const len = Number(headers.get("content-length")?.[0] ?? 0);
  while (rest.length < len) rest = Buffer.concat([rest, await read()]);
  socket.destroy();
  return { status, headers, body: rest.toString("utf8"), socket, rest: Buffer.alloc(0) };
}

/** A stream of the SPDY test client. */
export class ClientStream {
  readonly chunks: Buffer[] = [];
  finished = false;
  reset = false;
  #done!: () => void;
  /** Resolves with everything received once the server sent FIN or RST (or the connection ended). */
  readonly ended: Promise<Buffer>;

  constructor(
    readonly client: SpdyClient,
    readonly id: number,
  ) {
    const p = new Promise<void>((r) => (this.#done = r));
    this.ended = p.then(() => Buffer.concat(this.chunks));
  }

  /** Sends data (split in 32 KiB frames). */
  write(data: Buffer | string): void {
    const b = Buffer.from(data);
    for (let off = 0; off < b.length; off += 32768) this.client.sendRaw(dataFrame(this.id, b.subarray(off, off + 32768)));
  }

  /** Sends FIN. */
  end(): void {
    this.client.sendRaw(dataFrame(this.id, Buffer.alloc(0), true));
  }

  /** Text received so far. */
  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }

  /** @internal */
  finish(reset: boolean): void {
    this.reset ||= reset;
    this.finished = true;
    this.#done();
  }
}

/** A SPDY/3.1 client session over an upgraded socket. */
export class SpdyClient {
  readonly streams = new Map<number, ClientStream>();
  readonly replies = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  readonly frames: Frame[] = [];
  #next = 1;
  #deflate = new HeaderCompressor();
  #inflate = new HeaderDecompressor();
  #chain: Promise<void> = Promise.resolve();
  readonly closed: Promise<void>;

  constructor(
    readonly socket: net.Socket,
    rest: Buffer,
  ) {
    const parser = new FrameParser();
    let pump: Promise<void> = Promise.resolve();
    const onBytes = (c: Buffer) => {
      for (const f of parser.push(c)) pump = pump.then(() => this.#onFrame(f));
    };
    // Frames still queued behind header inflation are handled before the close is.
    this.closed = new Promise((r) =>
      socket.on("close", () => {
        pump = pump.then(() => {
          for (const s of this.streams.values()) s.finish(true);
          for (const r of this.replies.values()) r.reject(new Error("connection closed"));
          r();
        });
      }),
    );
    socket.on("error", () => {});
    socket.on("data", onBytes);
    if (rest.length) onBytes(rest);
    socket.resume();
  }

  /** Upgrades `url` to SPDY offering `protocols`; throws with the response when refused. */
  static async connect(url: string, protocols: string[], ca?: Buffer): Promise<{ client: SpdyClient; protocol: string }> {
    const r = await rawRequest(url, {
      ca,
      headers: [["Connection", "Upgrade"], ["Upgrade", "SPDY/3.1"], ...protocols.map((p) => ["X-Stream-Protocol-Version", p] as [string, string])],
    });
    if (r.status !== 101) throw Object.assign(new Error(`upgrade refused: ${r.status} ${r.body.trim()}`), { result: r });
    return { client: new SpdyClient(r.socket, r.rest), protocol: r.headers.get("x-stream-protocol-version")?.[0] ?? "" };
  }

  /** Opens a stream and waits for SYN_REPLY (rejects on RST). */
  createStream(headers: Record<string, string>): Promise<ClientStream> {
    const id = this.#next;
    this.#next += 2;
    const s = new ClientStream(this, id);
    this.streams.set(id, s);
    const replied = new Promise<void>((resolve, reject) => this.replies.set(id, { resolve, reject }));
    this.#send(this.#deflate.compress(spdyHeaders(headers)).then((b) => synStreamFrame(id, b)));
    return replied.then(() => s);
  }

  /** Writes a raw frame (ordered after pending header frames). */
  sendRaw(frame: Buffer): void {
    this.#send(Promise.resolve(frame));
  }

  /** Sends PING with an odd id and waits for the echo. */
  async ping(id = 1): Promise<void> {
    const before = this.frames.length;
    this.sendRaw(pingFrame(id));
    for (let i = 0; i < 200; i++) {
      if (this.frames.slice(before).some((f) => f.kind === "ping" && f.id === id)) return;
      await Bun.sleep(10);
    }
    throw new Error("no ping reply");
  }

  /** Resets a stream. */
  resetStream(id: number, status = 5): void {
    this.sendRaw(rstStreamFrame(id, status));
  }

  /** GOAWAY and end the socket. */
  async close(): Promise<void> {
    this.sendRaw(goAwayFrame(0));
    await this.#chain;
    this.socket.end();
    await this.closed;
  }

  #send(frame: Promise<Buffer>): void {
    this.#chain = this.#chain.then(async () => {
      const b = await frame;
      if (!this.socket.destroyed) this.socket.write(b);
    });
  }

  async #onFrame(f: Frame): Promise<void> {
    this.frames.push(f);
    if (f.kind === "syn_reply" || f.kind === "headers" || f.kind === "syn_stream") await this.#inflate.decompress(f.headerBlock);
    if (f.kind === "syn_reply") {
      this.replies.get(f.streamId)?.resolve();
      this.replies.delete(f.streamId);
      if (f.flags & FLAG_FIN) this.streams.get(f.streamId)?.finish(false);
    } else if (f.kind === "rst_stream") {
      this.replies.get(f.streamId)?.reject(new Error(`stream ${f.streamId} reset (${f.status})`));
      this.replies.delete(f.streamId);
      this.streams.get(f.streamId)?.finish(true);
    } else if (f.kind === "data") {
      const s = this.streams.get(f.streamId);
      if (!s) return;
      if (f.data.length) s.chunks.push(Buffer.from(f.data));
      if (f.flags & FLAG_FIN) s.finish(false);
    }
  }
}

/** A received WebSocket message. */
export interface WsMessage {
  opcode: number;
  data: Buffer;
}

/** A WebSocket client: masks every frame, can fragment, collects messages. */
export class WsClient {
  readonly messages: WsMessage[] = [];
  closeFrame?: { code: number; reason: string };
  readonly closed: Promise<void>;
  #waiters: Array<() => void> = [];

  constructor(
    readonly socket: net.Socket,
    rest: Buffer,
  ) {
    const parser = new WsFrameParser({ requireMask: false, maxPayload: 64 << 20 });
    let frag: Buffer[] = [];
    let fragOp = 0;
    const onBytes = (c: Buffer) => {
      for (const f of parser.push(c)) {
        if (f.opcode === Opcode.CLOSE) {
          this.closeFrame = parseClosePayload(f.payload);
          if (!socket.destroyed) socket.write(encodeFrame(Opcode.CLOSE, f.payload.subarray(0, 2), { mask: randomMask() }));
          socket.end();
        } else if (f.opcode === Opcode.PING) socket.write(encodeFrame(Opcode.PONG, f.payload, { mask: randomMask() }));
        else if (f.opcode === Opcode.PONG) this.messages.push({ opcode: f.opcode, data: f.payload });
        else {
          if (f.opcode !== Opcode.CONTINUATION) fragOp = f.opcode;
          frag.push(f.payload);
          if (f.fin) {
            this.messages.push({ opcode: fragOp, data: Buffer.concat(frag) });
            frag = [];
          }
        }
        this.#wake();
      }
    };
    this.closed = new Promise((r) => socket.on("close", () => (this.#wake(), r())));
    socket.on("error", () => {});
    socket.on("data", onBytes);
    if (rest.length) onBytes(rest);
    socket.resume();
  }

  /** Performs the opening handshake offering `protocols` (none: no header). Throws with the response when refused. */
  static async connect(
    url: string,
    protocols: string[],
    extra: Array<[string, string]> = [],
  ): Promise<{ ws: WsClient; protocol: string; result: UpgradeResult }> {
    const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
    const headers: Array<[string, string]> = [
      ["Connection", "Upgrade"],
      ["Upgrade", "websocket"],
      ["Sec-WebSocket-Version", "13"],
      ["Sec-WebSocket-Key", key],
      ...extra,
    ];
    if (protocols.length) headers.push(["Sec-WebSocket-Protocol", protocols.join(", ")]);
    const r = await rawRequest(url, { method: "GET", headers });
    if (r.status !== 101) throw Object.assign(new Error(`upgrade refused: ${r.status} ${r.body.trim()}`), { result: r });
    return { ws: new WsClient(r.socket, r.rest), protocol: r.headers.get("sec-websocket-protocol")?.[0] ?? "", result: r };
  }

  /** Sends a message, masked, optionally split into `fragments` frames. */
  send(data: Buffer | string, fragments = 1): void {
    const binary = typeof data !== "string";
    const b = Buffer.from(data);
    const size = Math.max(1, Math.ceil(b.length / fragments));
    let first = true;
    for (let off = 0; off < b.length || first; off += size) {
      const last = off + size >= b.length;
      const op = first ? (binary ? Opcode.BINARY : Opcode.TEXT) : Opcode.CONTINUATION;
      this.socket.write(encodeFrame(op, b.subarray(off, off + size), { fin: last, mask: randomMask() }));
      first = false;
    }
  }

  /** Sends a raw frame as given (tests of protocol errors). */
  sendFrame(opcode: number, payload: Buffer, o: { fin?: boolean; mask?: boolean } = {}): void {
    this.socket.write(encodeFrame(opcode, payload, { fin: o.fin, mask: o.mask === false ? undefined : randomMask() }));
  }

  /** Starts the close handshake. */
  close(code = 1000): void {
    this.sendFrame(Opcode.CLOSE, closePayload(code));
  }

  /** Waits until `pred` holds over the received messages. */
  async waitFor<T>(pred: () => T | undefined | false, ms = 10_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = pred();
      if (v !== undefined && v !== false) return v as T;
      if (Date.now() > end) throw new Error("timed out waiting for websocket messages");
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
}

/** Splits channel-framed messages (raw or base64) into per-channel buffers. */
export function channelData(messages: WsMessage[], base64 = false): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (const m of messages) {
    if (m.opcode !== Opcode.BINARY && m.opcode !== Opcode.TEXT) continue;
    if (m.data.length === 0) continue;
    const ch = base64 ? m.data[0]! - 48 : m.data[0]!;
    const payload = base64 ? Buffer.from(m.data.subarray(1).toString("latin1"), "base64") : m.data.subarray(1);
    out.set(ch, Buffer.concat([out.get(ch) ?? Buffer.alloc(0), payload]));
  }
  return out;
}

/** A channel message: the channel byte then the payload. */
export function channelMessage(channel: number, data: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from([channel]), Buffer.from(data)]);
}

function randomMask(): Buffer {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(4)));
}
