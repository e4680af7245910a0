import type { Duplex } from "node:stream";

/**
 * Writes frames to a socket one at a time, in order, waiting for `drain` when the socket's
 * buffer is full (or for `close`). Shared by the SPDY and WebSocket connections. A write after
 * the connection closed rejects with "<what> is closed".
 */
export class SerialWriter {
  #chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly socket: Duplex,
    private readonly closed: () => boolean,
    private readonly what: string,
    private readonly onWrite: () => void = () => {},
  ) {}

  /** Resolves once every frame queued so far was written (or failed). */
  idle(): Promise<void> {
    return this.#chain;
  }

  /** Queues a frame (or a frame still being built) behind the earlier ones. */
  write(frame: Buffer | Promise<Buffer>): Promise<void> {
    const next = this.#chain.then(async () => {
      const buf = await frame;
      const s = this.socket;
      if (this.closed() || s.destroyed || s.writableEnded) throw new Error(`${this.what} is closed`);
      this.onWrite();
      if (!s.write(buf)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            s.off("drain", done);
            s.off("close", done);
            resolve();
          };
          s.on("drain", done);
          s.on("close", done);
        });
      }
    });
    this.#chain = next.catch(() => {});
    return next;
  }
}
