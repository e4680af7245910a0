import type { Socket, UnixSocketListener } from "bun";
import { unlink } from "../sys/libc.ts";
import { listenUnix, type ShortSocketPath } from "../sys/short-path.ts";
import { SendQueue } from "./io.ts";
import { decodeResize, encodeFrame, Frame, FrameDecoder } from "./protocol.ts";

/** What the attach socket does with client input. */
export interface AttachHandlers {
  /** Bytes for the process's stdin. */
  stdin(data: Uint8Array): void;
  /** The process's stdin should be closed (stdin-once and the first client's input ended). */
  closeStdin(): void;
  /** A terminal resize. */
  resize(rows: number, cols: number): void;
}

/**
 * The attach socket (protocol.ts §7): a unix SOCK_STREAM listener. Output goes to every
 * connected client; client input goes to the handlers. A client that cannot keep up is dropped
 * once it is DROP_BYTES behind, unless `drained()` is awaited between writes (exec sessions use
 * it to slow the process down instead).
 */
export class AttachServer {
  #server: UnixSocketListener<Client>;
  /** The socket's short alias (any runroot depth), held until the listener stops. */
  #alias: ShortSocketPath;
  #clients = new Set<Socket<Client>>();
  #first: Socket<Client> | undefined;
  #stdinClosed = false;
  #waiters: Array<() => void> = [];
  #firstWaiters: Array<() => void> = [];
  #closed = false;
  #exitFrame: Uint8Array | undefined;

  /** Listens at `path` (an old socket file there is replaced). */
  constructor(
    readonly path: string,
    private readonly h: AttachHandlers,
    private readonly opts: { stdin: boolean; stdinOnce: boolean },
  ) {
    unlink(path);
    const l = listenUnix<Client>(path, {
      open: (s) => this.#open(s),
      data: (s, d) => this.#data(s, d),
      drain: (s) => this.#drain(s),
      close: (s) => this.#gone(s),
      error: (s) => this.#gone(s),
    });
    this.#server = l.server;
    this.#alias = l.alias;
  }

  /** How many clients are attached. */
  get clients(): number {
    return this.#clients.size;
  }

  /** Resolves once a client has attached (true), or after `timeoutMs` (false); 0 = no limit. */
  firstClient(timeoutMs = 0): Promise<boolean> {
    if (this.#first) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = timeoutMs > 0 ? setTimeout(() => resolve(false), timeoutMs) : undefined;
      this.#firstWaiters.push(() => {
        clearTimeout(t);
        resolve(!!this.#first);
      });
    });
  }

  /** Sends output to every client. */
  send(type: typeof Frame.STDOUT | typeof Frame.STDERR, data: Uint8Array): void {
    if (this.#clients.size === 0) return;
    const frame = encodeFrame(type, data);
    for (const s of this.#clients) if (!s.data.ending) this.#write(s, frame);
  }

  /** Resolves when no client has more than HIGH_WATER bytes queued. */
  async drained(): Promise<void> {
    while ([...this.#clients].some((s) => s.data.out.queued > HIGH_WATER)) await new Promise<void>((r) => this.#waiters.push(r));
  }

  /**
   * Sends EXIT to every client (and to any that attaches meanwhile), then half-closes: the
   * connection stays open, its input read and dropped, until the client closes it (≤ 2 s), and
   * only then is everything closed. Closing first would make a client whose connect() the
   * monitor accepted but whose event loop has not seen it yet fail to connect at all (Bun
   * reports a connect that completes on a hung-up socket as a failure), and would reset a
   * client that still had input in flight, losing the EXIT frame.
   */
  async finish(exitCode: number): Promise<void> {
    this.#exitFrame = encodeFrame(Frame.EXIT, new TextEncoder().encode(JSON.stringify({ exitCode })));
    for (const s of this.#clients) this.#sendExit(s);
    const deadline = Date.now() + FINISH_GRACE_MS;
    while (this.#clients.size > 0 && Date.now() < deadline) await Bun.sleep(10);
    this.close();
  }

  /** Closes the listener and every connection, and removes the socket file. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.stop(true); // unlinks the socket through its alias: release the alias after
    this.#alias.release();
    for (const s of this.#clients) s.terminate();
    this.#clients.clear();
    unlink(this.path);
    this.#wake();
    for (const f of this.#firstWaiters.splice(0)) f();
  }

  // --- internal ---

  #open(s: Socket<Client>): void {
    s.data = { decoder: new FrameDecoder(), out: new SendQueue(), ending: false, stdinDone: false };
    this.#clients.add(s);
    if (!this.#first) {
      this.#first = s;
      for (const f of this.#firstWaiters.splice(0)) f();
    }
    if (this.#exitFrame) this.#sendExit(s);
  }

  /** Queues EXIT and half-closes once everything queued is written. */
  #sendExit(s: Socket<Client>): void {
    if (s.data.ending) return;
    this.#write(s, this.#exitFrame!);
    s.data.ending = true;
    if (s.data.out.queued === 0) s.shutdown();
  }

  #data(s: Socket<Client>, d: Uint8Array): void {
    let frames;
    try {
      frames = s.data.decoder.push(d);
    } catch {
      s.terminate();
      return;
    }
    for (const f of frames) {
      if (f.type === Frame.STDIN) {
        if (this.opts.stdin && !this.#stdinClosed && !s.data.stdinDone) this.h.stdin(f.payload);
      } else if (f.type === Frame.RESIZE) {
        const r = decodeResize(f.payload);
        if (r) this.h.resize(r.rows, r.cols);
      } else if (f.type === Frame.CLOSE_STDIN) this.#stdinEnded(s);
    }
  }

  #drain(s: Socket<Client>): void {
    const c = s.data;
    // half-close once what was waiting has gone (sendExit half-closed at once when nothing was)
    if (c.out.queued > 0 && c.out.flush(s) && c.ending) s.shutdown();
    this.#wake();
  }

  #write(s: Socket<Client>, frame: Uint8Array): void {
    const c = s.data;
    c.out.write(s, frame);
    if (c.out.queued > DROP_BYTES) s.terminate();
  }

  #gone(s: Socket<Client>): void {
    if (!this.#clients.delete(s)) return;
    this.#stdinEnded(s);
    this.#wake();
  }

  #stdinEnded(s: Socket<Client>): void {
    if (s.data.stdinDone) return;
    s.data.stdinDone = true;
    if (s === this.#first && this.opts.stdinOnce && !this.#stdinClosed) {
      this.#stdinClosed = true;
      this.h.closeStdin();
    }
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
}

// --- internal ---

interface Client {
  decoder: FrameDecoder;
  out: SendQueue;
  ending: boolean;
  stdinDone: boolean;
}

const HIGH_WATER = 256 * 1024;
/** How long finish() waits for clients to read EXIT and close their end. */
const FINISH_GRACE_MS = 2000;
const DROP_BYTES = 8 * 1024 * 1024;
