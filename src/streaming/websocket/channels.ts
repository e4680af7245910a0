/**
 * The Kubernetes channel protocol over one WebSocket (k8s wsstream): every message starts with
 * a channel byte, raw (`channel.k8s.io`, `v4.channel.k8s.io`, `v5.channel.k8s.io`: binary
 * messages) or as an ASCII digit followed by base64 (`base64.channel.k8s.io`,
 * `v4.base64.channel.k8s.io`: text messages). v5 adds the client's half-close signal
 * `[255, channel]`. Empty messages are ignored, as are messages for unknown channels.
 */
import { Duplex } from "node:stream";
import type { WebSocketConnection } from "./connection.ts";

/** What a channel carries: nothing, client→server, server→client, or both. */
export type ChannelKind = "ignore" | "read" | "write" | "readwrite";

/** The client's half-close signal of v5.channel.k8s.io. */
export const STREAM_CLOSE = 255;

/** Channel framing options, picked by the negotiated subprotocol. */
export interface ChannelOptions {
  base64: boolean;
  /** Honour `[255, channel]` half-close messages (v5.channel.k8s.io). */
  streamClose: boolean;
  channels: ChannelKind[];
}

/** The largest payload put in one message; bigger writes are split. */
const MAX_MESSAGE_PAYLOAD = 256 * 1024;

/** One channel as a Duplex: readable = what the client sent on it, writable = sent to the client. */
export class Channel extends Duplex {
  constructor(
    private readonly mux: ChannelMux,
    /** The channel number. */
    readonly index: number,
    /** What the channel carries. */
    readonly kind: ChannelKind,
  ) {
    super({ allowHalfOpen: true, highWaterMark: 256 * 1024 });
    this.on("error", () => {}); // handed to backends: never crash on an unhandled 'error'
    if (kind !== "read" && kind !== "readwrite") this.remoteEnd();
  }

  /** True for channels the client may send on. */
  get acceptsInput(): boolean {
    return this.kind === "read" || this.kind === "readwrite";
  }

  /** Client data arrived; returns false when the reader lags (pause the socket). */
  receive(data: Buffer): boolean {
    if (this.#ended || this.destroyed || data.length === 0) return true;
    return this.push(data);
  }

  /** The client will send no more on this channel. */
  remoteEnd(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (!this.destroyed) this.push(null);
    this.mux.wantRead(this); // nothing more can land here, so this channel no longer holds the socket
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.mux.wantRead(this);
    cb(err);
  }

  #ended = false;

  override _read(): void {
    this.mux.wantRead(this);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.kind !== "write" && this.kind !== "readwrite") return cb(); // upstream drops writes here too
    this.mux.send(this.index, chunk).then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    cb(); // the channel protocol has no server-side half-close
  }
}

/** Splits one WebSocket into numbered channels. */
export class ChannelMux {
  /** The channels, by number. */
  readonly channels: Channel[];
  readonly #ws: WebSocketConnection;
  readonly #o: ChannelOptions;
  readonly #blocked = new Set<Channel>();

  constructor(ws: WebSocketConnection, o: ChannelOptions) {
    this.#ws = ws;
    this.#o = o;
    this.channels = o.channels.map((k, i) => new Channel(this, i, k));
    ws.on("message", (data: Buffer) => this.#onMessage(data));
    ws.on("close", () => {
      for (const c of this.channels) c.destroy();
    });
  }

  /** Sends `data` on a channel (an empty Buffer sends the bare channel byte). */
  async send(index: number, data: Buffer): Promise<void> {
    if (data.length === 0) return this.#ws.send(this.#frame(index, data));
    for (let off = 0; off < data.length; off += MAX_MESSAGE_PAYLOAD) await this.#ws.send(this.#frame(index, data.subarray(off, off + MAX_MESSAGE_PAYLOAD)));
  }

  /** A channel's reader wants more: resume the socket when nothing else is blocked. */
  wantRead(c: Channel): void {
    if (this.#blocked.delete(c) && this.#blocked.size === 0) this.#ws.resume();
  }

  // --- internal ---

  #frame(index: number, data: Buffer): Buffer | string {
    if (!this.#o.base64) {
      const b = Buffer.allocUnsafe(data.length + 1);
      b[0] = index;
      b.set(data, 1);
      return b;
    }
    return String.fromCharCode(48 + index) + data.toString("base64");
  }

  #onMessage(data: Buffer): void {
    if (data.length === 0) return;
    if (this.#o.streamClose && data[0] === STREAM_CLOSE) {
      const c = data.length === 2 ? this.channels[data[1]!] : undefined;
      if (!c) {
        // upstream ends the connection on a malformed or misdirected close signal
        void this.#ws.close(1002, "invalid stream close signal");
        return;
      }
      if (c.acceptsInput) c.remoteEnd();
      return;
    }
    const index = this.#o.base64 ? data[0]! - 48 : data[0]!;
    const c = this.channels[index];
    if (!c?.acceptsInput) return;
    const payload = this.#o.base64 ? Buffer.from(data.subarray(1).toString("latin1"), "base64") : data.subarray(1);
    if (!c.receive(payload)) {
      this.#blocked.add(c);
      this.#ws.pause();
    }
  }
}
