/**
 * The server side of an RFC 6455 connection after the handshake: whole messages in (fragments
 * reassembled, pings answered, the close handshake honoured), messages out with backpressure,
 * an idle timeout (reset by traffic either way, like the deadline x/net/websocket gets in
 * k8s wsstream).
 */
import { EventEmitter } from "node:events";
import { SerialWriter } from "../serial-writer.ts";
import type { Duplex } from "node:stream";
import type { Logger } from "../../log/index.ts";
import { CloseCode, Opcode, WsFrameParser, WsProtocolError, closePayload, encodeFrame, parseClosePayload } from "./frames.ts";

/** Options of a server-side WebSocket connection. */
export interface WebSocketOptions {
  /** Close after this long without a message either way (0: never). */
  idleTimeoutMs: number;
  /** The largest message accepted (x/net/websocket's default is 32 MiB). */
  maxMessageBytes?: number;
  log: Logger;
  /** How long close() waits for the peer's close frame before dropping the socket. */
  lingerMs?: number;
}

/** How a connection ended. */
export interface CloseInfo {
  code: number;
  reason: string;
  /** True when the peer answered or started the close handshake. */
  clean: boolean;
}

/** A server-side WebSocket. Emits "message" (data: Buffer, binary: boolean) and "close" (CloseInfo). */
export class WebSocketConnection extends EventEmitter {
  /** Resolves when the transport is gone. */
  readonly closed: Promise<CloseInfo>;
  readonly #socket: Duplex;
  readonly #o: WebSocketOptions;
  readonly #parser: WsFrameParser;
  readonly #max: number;
  #fragments: Buffer[] = [];
  #fragmentLen = 0;
  #fragmentBinary = false;
  #fragmenting = false;
  #closeSent = false;
  #closeReceived?: { code: number; reason: string };
  #done = false;
  readonly #writer: SerialWriter;
  #lastActivity = Date.now();
  #idleTimer?: ReturnType<typeof setTimeout>;
  #lingerTimer?: ReturnType<typeof setTimeout>;
  #resolveClosed!: (c: CloseInfo) => void;

  constructor(socket: Duplex, head: Buffer, o: WebSocketOptions) {
    super();
    this.#socket = socket;
    this.#writer = new SerialWriter(
      socket,
      () => this.#done,
      "websocket",
      () => (this.#lastActivity = Date.now()),
    );
    this.#o = o;
    this.#max = o.maxMessageBytes ?? 32 << 20;
    this.#parser = new WsFrameParser({ requireMask: true, maxPayload: this.#max });
    this.closed = new Promise((r) => (this.#resolveClosed = r));
    socket.on("data", (c: Buffer) => this.#onBytes(c));
    socket.on("error", (e) => o.log.debug("websocket connection error", { error: e.message }));
    socket.on("close", () => this.#teardown());
    // The peer half-closed: it is gone, but what this side already wrote still drains.
    socket.on("end", () => this.#teardown(false));
    if (o.idleTimeoutMs > 0) this.#armIdle(o.idleTimeoutMs);
    // Deferred so the caller can attach its 'message' listener first.
    if (head.length > 0) queueMicrotask(() => this.#onBytes(head));
    socket.resume();
  }

  /** True once the transport is gone. */
  get isClosed(): boolean {
    return this.#done;
  }

  /** Sends one message (binary for a Buffer, text for a string); resolves once the socket took it. */
  send(data: Buffer | string): Promise<void> {
    if (this.#closeSent || this.#done) return Promise.reject(new Error("websocket is closing"));
    const binary = typeof data !== "string";
    return this.#write(encodeFrame(binary ? Opcode.BINARY : Opcode.TEXT, binary ? data : Buffer.from(data, "utf8")));
  }

  /** Starts the close handshake and resolves when the transport is gone (the peer answered or lingerMs passed). */
  async close(code: number = CloseCode.NORMAL, reason = ""): Promise<CloseInfo> {
    if (!this.#done && !this.#closeSent) {
      this.#closeSent = true;
      this.#socket.resume(); // the peer's close frame must be read even if a consumer lagged
      await this.#write(encodeFrame(Opcode.CLOSE, closePayload(code, reason))).catch(() => {});
      if (this.#closeReceived) this.#socket.end();
      this.#lingerTimer = setTimeout(() => this.destroy(), this.#o.lingerMs ?? 5000);
    }
    return this.closed;
  }

  /** Drops the transport at once. */
  destroy(): void {
    this.#socket.destroy();
    this.#teardown();
  }

  /** Stops reading from the socket (backpressure from a slow consumer). */
  pause(): void {
    this.#socket.pause();
  }

  /** Resumes reading. */
  resume(): void {
    if (!this.#done) this.#socket.resume();
  }

  // --- internal ---

  #write(frame: Buffer): Promise<void> {
    return this.#writer.write(frame);
  }

  #onBytes(chunk: Buffer): void {
    if (this.#done) return;
    this.#lastActivity = Date.now();
    try {
      for (const f of this.#parser.push(chunk)) {
        if (this.#done || this.#closeReceived) return;
        this.#onFrame(f.opcode, f.fin, f.payload);
      }
    } catch (e) {
      this.#fail(e);
    }
  }

  #onFrame(opcode: number, fin: boolean, payload: Buffer): void {
    switch (opcode) {
      case Opcode.PING:
        if (!this.#closeSent) this.#write(encodeFrame(Opcode.PONG, payload)).catch(() => {});
        return;
      case Opcode.PONG:
        return;
      case Opcode.CLOSE: {
        this.#closeReceived = parseClosePayload(payload);
        if (!this.#closeSent) {
          this.#closeSent = true;
          const echo = this.#closeReceived.code === CloseCode.NO_STATUS ? Buffer.alloc(0) : closePayload(this.#closeReceived.code);
          this.#write(encodeFrame(Opcode.CLOSE, echo)).catch(() => {});
        }
        this.#writer.idle().then(() => this.#socket.end());
        clearTimeout(this.#lingerTimer);
        this.#lingerTimer = setTimeout(() => this.destroy(), this.#o.lingerMs ?? 5000);
        return;
      }
      case Opcode.CONTINUATION:
        if (!this.#fragmenting) throw new WsProtocolError(CloseCode.PROTOCOL_ERROR, "continuation frame without a message");
        this.#gather(payload, fin);
        return;
      default:
        if (this.#fragmenting) throw new WsProtocolError(CloseCode.PROTOCOL_ERROR, "new message inside a fragmented one");
        this.#fragmenting = true;
        this.#fragmentBinary = opcode === Opcode.BINARY;
        this.#gather(payload, fin);
    }
  }

  #gather(payload: Buffer, fin: boolean): void {
    this.#fragmentLen += payload.length;
    if (this.#fragmentLen > this.#max) throw new WsProtocolError(CloseCode.TOO_BIG, `message larger than ${this.#max} bytes`);
    this.#fragments.push(payload);
    if (!fin) return;
    const msg = this.#fragments.length === 1 ? this.#fragments[0]! : Buffer.concat(this.#fragments, this.#fragmentLen);
    this.#fragments = [];
    this.#fragmentLen = 0;
    this.#fragmenting = false;
    this.emit("message", msg, this.#fragmentBinary);
  }

  #fail(e: unknown): void {
    const code = e instanceof WsProtocolError ? e.code : CloseCode.INTERNAL;
    const msg = e instanceof Error ? e.message : String(e);
    this.#o.log.warn("websocket protocol error, closing the connection", { error: msg, code });
    if (!this.#closeSent) {
      this.#closeSent = true;
      this.#write(encodeFrame(Opcode.CLOSE, closePayload(code, msg)))
        .catch(() => {})
        .finally(() => this.destroy());
    } else this.destroy();
  }

  #armIdle(ms: number): void {
    this.#idleTimer = setTimeout(() => {
      if (this.#done) return;
      const idle = Date.now() - this.#lastActivity;
      if (idle >= ms) {
        this.#o.log.info("websocket connection idle, closing", { idleMs: idle });
        this.destroy();
      } else this.#armIdle(ms - idle);
    }, ms);
    this.#idleTimer.unref?.();
  }

  #teardown(destroySocket = true): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#lingerTimer);
    if (destroySocket) this.#socket.destroy();
    else if (!this.#socket.destroyed) {
      this.#socket.end();
      setTimeout(() => this.#socket.destroy(), this.#o.lingerMs ?? 5000).unref?.();
    }
    const info: CloseInfo = this.#closeReceived ? { ...this.#closeReceived, clean: true } : { code: CloseCode.ABNORMAL, reason: "", clean: false };
    this.#resolveClosed(info);
    this.emit("close", info);
  }
}
