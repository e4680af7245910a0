/**
 * The server side of a SPDY/3.1 session over an upgraded HTTP connection, shaped after what
 * moby/spdystream (k8s client-go's SPDY transport) does: the client opens streams (odd ids) and
 * each gets a SYN_REPLY with no headers, PINGs are echoed, GOAWAY ends the session.
 *
 * Flow control: spdystream neither sends WINDOW_UPDATE nor honours it, so this side does not
 * hold its sends to the peer's window (it would stall Go clients after 64 KiB). It does credit
 * what it receives (stream and session WINDOW_UPDATEs), so a strict SPDY/3.1 client keeps
 * sending, and memory is bounded by TCP: the socket is paused while a stream's reader lags.
 */
import { EventEmitter } from "node:events";
import { SerialWriter } from "../serial-writer.ts";
import type { Duplex } from "node:stream";
import type { Logger } from "../../log/index.ts";
import {
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  FrameParser,
  GoAwayStatus,
  RstStatus,
  SpdyProtocolError,
  dataFrame,
  goAwayFrame,
  pingFrame,
  rstStreamFrame,
  synReplyFrame,
  windowUpdateFrame,
  type Frame,
} from "./frames.ts";
import { HeaderCompressor, HeaderDecompressor } from "./header-block.ts";
import { SpdyStream, type StreamOwner } from "./stream.ts";

/** Options of a server-side SPDY session. */
export interface SpdyConnectionOptions {
  /** Close the session after this long without a frame either way (0: never). */
  idleTimeoutMs: number;
  /**
   * Decides on each new client stream, synchronously: true sends SYN_REPLY, false resets it
   * (the client's CreateStream then fails). Writes to the stream wait for the reply.
   */
  onStream: (stream: SpdyStream) => boolean;
  log: Logger;
  /** How long close() waits for the client to hang up before destroying the socket. */
  lingerMs?: number;
}

/** Credit the peer's window after this many bytes. */
const WINDOW_CREDIT = 32 * 1024;

/** A server-side SPDY/3.1 session. Emits "close" once, when the transport is gone. */
export class SpdyConnection extends EventEmitter implements StreamOwner {
  /** Resolves when the transport is gone (client hung up, close() finished, or destroy()). */
  readonly closed: Promise<void>;
  readonly #socket: Duplex;
  readonly #o: SpdyConnectionOptions;
  readonly #parser = new FrameParser();
  readonly #deflate = new HeaderCompressor();
  readonly #inflate = new HeaderDecompressor();
  readonly #streams = new Map<number, SpdyStream>();
  readonly #blocked = new Set<SpdyStream>();
  readonly #inbox: Frame[] = [];
  #pumping = false;
  #lastStreamId = 0;
  #goneAway = false;
  #isClosed = false;
  readonly #writer: SerialWriter;
  #sessionCredit = 0;
  #credit = new Map<number, number>();
  #lastActivity = Date.now();
  #idleTimer?: ReturnType<typeof setTimeout>;
  #resolveClosed!: () => void;

  constructor(socket: Duplex, head: Buffer, o: SpdyConnectionOptions) {
    super();
    this.#socket = socket;
    this.#writer = new SerialWriter(
      socket,
      () => this.#isClosed,
      "spdy connection",
      () => (this.#lastActivity = Date.now()),
    );
    this.#o = o;
    this.closed = new Promise((r) => (this.#resolveClosed = r));
    socket.on("data", (chunk: Buffer) => this.#onBytes(chunk));
    socket.on("error", (e) => o.log.debug("spdy connection error", { error: e.message }));
    socket.on("close", () => this.#teardown());
    // The peer half-closed: it is gone, but what this side already wrote still drains.
    socket.on("end", () => this.#teardown(false));
    if (o.idleTimeoutMs > 0) this.#armIdle(o.idleTimeoutMs);
    if (head.length > 0) this.#onBytes(head);
    socket.resume();
  }

  /** True once the transport is gone. */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Streams still open in at least one direction. */
  get openStreams(): number {
    return this.#streams.size;
  }

  /**
   * Ends the session as the kubelet's connection.Close does: resets every stream this side has
   * not finished, sends GOAWAY, then half-closes the socket and waits (up to lingerMs) for the
   * client to hang up.
   */
  async close(): Promise<void> {
    if (this.#isClosed) return;
    if (!this.#goneAway) {
      this.#goneAway = true;
      this.#blocked.clear();
      this.#socket.resume(); // the client's hang-up must be seen even if a reader lagged
      for (const s of [...this.#streams.values()]) s.reset();
      const sent = this.#send(goAwayFrame(this.#lastStreamId, GoAwayStatus.OK));
      await sent.catch(() => {});
      if (!this.#isClosed) this.#socket.end();
      const t = setTimeout(() => this.destroy(), this.#o.lingerMs ?? 5000);
      void this.closed.then(() => clearTimeout(t));
    }
    await this.closed;
  }

  /** Drops the transport at once; every stream is torn down without further frames. */
  destroy(): void {
    this.#socket.destroy();
    this.#teardown();
  }

  // --- StreamOwner ---

  /** Sends one DATA frame, resolving once the socket took it (and is not congested). */
  sendData(id: number, data: Buffer, fin: boolean): Promise<void> {
    return this.#send(dataFrame(id, data, fin));
  }

  /** Sends RST_STREAM. */
  sendRst(id: number, status: number): void {
    this.#send(rstStreamFrame(id, status)).catch(() => {});
  }

  /** A stream's reader wants more: resume the socket if nothing else is blocked. */
  wantRead(stream: SpdyStream): void {
    if (this.#blocked.delete(stream) && this.#blocked.size === 0 && !this.#isClosed) this.#socket.resume();
  }

  /** A stream's buffer is full: pause the socket until its reader catches up. */
  blockedOn(stream: SpdyStream): void {
    this.#blocked.add(stream);
    this.#socket.pause();
  }

  /** Both sides of a stream finished, or it was reset. */
  forget(stream: SpdyStream): void {
    if (this.#streams.get(stream.id) === stream) this.#streams.delete(stream.id);
    this.#credit.delete(stream.id);
    this.wantRead(stream);
  }

  // --- internal ---

  #send(frame: Buffer | Promise<Buffer>): Promise<void> {
    return this.#writer.write(frame);
  }

  #onBytes(chunk: Buffer): void {
    if (this.#isClosed) return;
    this.#lastActivity = Date.now();
    let frames: Frame[];
    try {
      frames = this.#parser.push(chunk);
    } catch (e) {
      return this.#protocolError(e);
    }
    this.#inbox.push(...frames);
    void this.#pump();
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#inbox.length > 0 && !this.#isClosed) {
        const f = this.#inbox.shift()!;
        if (f.kind === "syn_stream" || f.kind === "syn_reply" || f.kind === "headers") {
          // Every header block goes through the one inflate context, in order, even when ignored.
          const headers = await this.#inflate.decompress(f.headerBlock);
          if (f.kind === "syn_stream") this.#onSynStream(f.streamId, f.flags, headers);
          else if (f.flags & FLAG_FIN) this.#streams.get(f.streamId)?.remoteFin();
        } else this.#onFrame(f);
      }
    } catch (e) {
      this.#protocolError(e);
    } finally {
      this.#pumping = false;
    }
  }

  #onSynStream(id: number, flags: number, headers: Map<string, string[]>): void {
    if (this.#goneAway) return; // after GOAWAY new streams are ignored (spdystream does the same)
    if (id % 2 !== 1 || id <= this.#lastStreamId) {
      this.sendRst(id, RstStatus.PROTOCOL_ERROR);
      return;
    }
    this.#lastStreamId = id;
    const stream = new SpdyStream(this, id, headers, {
      localFin: (flags & FLAG_UNIDIRECTIONAL) !== 0,
      remoteFin: (flags & FLAG_FIN) !== 0,
    });
    this.#streams.set(id, stream);
    let accepted = false;
    try {
      accepted = this.#o.onStream(stream);
    } catch (e) {
      this.#o.log.warn("spdy stream handler failed", { error: e instanceof Error ? e.message : String(e) });
    }
    if (!accepted) {
      stream.reset(RstStatus.CANCEL);
      return;
    }
    this.#send(this.#deflate.compress(new Map()).then((block) => synReplyFrame(id, block))).catch(() => {});
    stream.replied();
  }

  #onFrame(f: Frame): void {
    switch (f.kind) {
      case "data": {
        const s = this.#streams.get(f.streamId);
        if (f.data.length > 0) this.#creditWindow(f.streamId, f.data.length);
        if (!s) return; // unknown or finished stream: dropped, as spdystream does
        s.receive(f.data);
        if (f.flags & FLAG_FIN) s.remoteFin();
        return;
      }
      case "rst_stream":
        this.#streams.get(f.streamId)?.remoteReset();
        return;
      case "ping":
        // Odd ids are the client's pings: echo them. Even ids would answer ours (we send none).
        if (f.id % 2 === 1) this.#send(pingFrame(f.id)).catch(() => {});
        return;
      case "goaway":
        this.#goneAway = true;
        this.emit("goaway");
        return;
      default:
        return; // SETTINGS, WINDOW_UPDATE and unknown frames need nothing from this side
    }
  }

  #creditWindow(id: number, n: number): void {
    const c = (this.#credit.get(id) ?? 0) + n;
    this.#sessionCredit += n;
    if (c >= WINDOW_CREDIT && this.#streams.has(id)) {
      this.#send(windowUpdateFrame(id, c)).catch(() => {});
      this.#credit.set(id, 0);
    } else this.#credit.set(id, c);
    if (this.#sessionCredit >= WINDOW_CREDIT) {
      this.#send(windowUpdateFrame(0, this.#sessionCredit)).catch(() => {});
      this.#sessionCredit = 0;
    }
  }

  #protocolError(e: unknown): void {
    if (this.#isClosed) return;
    const msg = e instanceof Error ? e.message : String(e);
    this.#o.log.warn("spdy protocol error, closing the connection", { error: msg });
    if (e instanceof SpdyProtocolError) {
      this.#goneAway = true;
      this.#send(goAwayFrame(this.#lastStreamId, GoAwayStatus.PROTOCOL_ERROR))
        .finally(() => this.destroy())
        .catch(() => {});
    } else this.destroy();
  }

  #armIdle(ms: number): void {
    this.#idleTimer = setTimeout(() => {
      if (this.#isClosed) return;
      const idle = Date.now() - this.#lastActivity;
      if (idle >= ms) {
        this.#o.log.info("spdy connection idle, closing", { idleMs: idle });
        this.destroy();
      } else this.#armIdle(ms - idle);
    }, ms);
    this.#idleTimer.unref?.();
  }

  #teardown(destroySocket = true): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    clearTimeout(this.#idleTimer);
    this.#inbox.length = 0;
    for (const s of [...this.#streams.values()]) s.remoteReset();
    this.#streams.clear();
    this.#deflate.close();
    this.#inflate.close();
    if (destroySocket) this.#socket.destroy();
    else if (!this.#socket.destroyed) {
      this.#socket.end();
      setTimeout(() => this.#socket.destroy(), this.#o.lingerMs ?? 5000).unref?.();
    }
    this.#resolveClosed();
    this.emit("close");
  }
}
