/**
 * One SPDY stream as a Node Duplex: what the peer sends on it is readable (ending at its FIN),
 * what is written goes out as DATA frames (end() sends FIN). reset() or destroy() before both
 * sides finished sends RST_STREAM CANCEL, as moby/spdystream's Stream.Reset does.
 */
import { Duplex } from "node:stream";
import { RstStatus } from "./frames.ts";
import { headerValue, type SpdyHeaders } from "./header-block.ts";

/** What a stream needs from its connection. */
export interface StreamOwner {
  sendData(id: number, data: Buffer, fin: boolean): Promise<void>;
  sendRst(id: number, status: number): void;
  wantRead(stream: SpdyStream): void;
  blockedOn(stream: SpdyStream): void;
  forget(stream: SpdyStream): void;
}

/** The largest DATA frame this side sends (client-go copies in 32 KiB pieces too). */
export const DATA_CHUNK = 32 * 1024;

/** A client-initiated SPDY stream. */
export class SpdyStream extends Duplex {
  #owner: StreamOwner;
  #localFin: boolean;
  #remoteFin: boolean;
  #reset = false;
  #replied: Promise<void>;
  #markReplied!: () => void;

  constructor(
    owner: StreamOwner,
    /** The stream id (odd: the client opened it). */
    readonly id: number,
    /** The SYN_STREAM headers, names lower-case. */
    readonly headers: SpdyHeaders,
    o: { localFin: boolean; remoteFin: boolean },
  ) {
    super({ allowHalfOpen: true, highWaterMark: 256 * 1024 });
    this.#owner = owner;
    this.#localFin = o.localFin;
    this.#remoteFin = o.remoteFin;
    this.#replied = new Promise((r) => (this.#markReplied = r));
    // A stream handed to a backend must never crash the daemon with an unhandled 'error'.
    this.on("error", () => {});
    if (o.remoteFin) this.push(null);
    if (o.localFin) this.end();
  }

  /** The first value of a SYN_STREAM header (case-insensitive), or undefined. */
  header(name: string): string | undefined {
    return headerValue(this.headers, name);
  }

  /** True once this side sent FIN or either side reset the stream. */
  get localFinished(): boolean {
    return this.#localFin || this.#reset;
  }

  /** True once the peer sent FIN or either side reset the stream. */
  get remoteFinished(): boolean {
    return this.#remoteFin || this.#reset;
  }

  /** Sends RST_STREAM (unless this side already finished, as spdystream does) and destroys the stream. */
  reset(status: number = RstStatus.CANCEL): void {
    if (!this.#reset && !this.#localFin) this.#owner.sendRst(this.id, status);
    this.#reset = true;
    this.destroy();
  }

  // --- called by the connection ---

  /** The SYN_REPLY is queued: writes may follow it. */
  replied(): void {
    this.#markReplied();
  }

  /** A DATA frame's payload arrived. */
  receive(data: Buffer): void {
    if (this.#remoteFin || this.destroyed) return;
    if (data.length > 0 && !this.push(data)) this.#owner.blockedOn(this);
  }

  /** The peer sent FIN. */
  remoteFin(): void {
    if (this.#remoteFin) return;
    this.#remoteFin = true;
    if (!this.destroyed) this.push(null);
    this.#owner.wantRead(this); // nothing more can land here, so this stream no longer holds the socket
    this.#maybeDone();
  }

  /** The peer sent RST_STREAM, or the connection is gone. */
  remoteReset(): void {
    this.#reset = true;
    this.destroy();
  }

  // --- Duplex ---

  override _read(): void {
    this.#owner.wantRead(this);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.localFinished) return cb(new Error(`write on finished spdy stream ${this.id}`));
    this.#replied
      .then(async () => {
        for (let off = 0; off < chunk.length; off += DATA_CHUNK) {
          if (this.localFinished) throw new Error(`spdy stream ${this.id} was reset`);
          await this.#owner.sendData(this.id, chunk.subarray(off, off + DATA_CHUNK), false);
        }
      })
      .then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.localFinished) return cb();
    this.#localFin = true;
    this.#replied
      .then(() => this.#owner.sendData(this.id, Buffer.alloc(0), true))
      .then(() => {
        this.#maybeDone();
        cb();
      }, cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.#reset && !(this.#localFin && this.#remoteFin)) {
      // Torn down before both sides finished: tell the peer, as spdystream's Reset does.
      if (!this.#localFin) this.#owner.sendRst(this.id, RstStatus.CANCEL);
      this.#reset = true;
    }
    this.#markReplied();
    this.#owner.forget(this);
    cb(err);
  }

  // --- internal ---

  #maybeDone(): void {
    if (this.#localFin && this.#remoteFin) this.#owner.forget(this);
  }
}
