import { close, pollIn, read, write } from "../sys/libc.ts";

/**
 * Moving bytes between the monitor and a process. A Pump reads a non-blocking fd (pipe or pty
 * master) through Bun's poller until end of stream — EIO on a pty whose slave side is closed
 * counts as the end. A Writer feeds a non-blocking fd with write(2) and retries on a short timer
 * while the reader is slow; Bun's FileSink is not used because it makes a tty fd blocking, which
 * would stall the monitor on a container that does not read its terminal (measured).
 */
export class Pump {
  /** Settles when the stream ended, failed or was cancelled. */
  readonly done: Promise<void>;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #cancelled = false;

  /** Starts reading `fd`; each chunk is handed to `onData`, whose promise is awaited first. */
  constructor(
    readonly fd: number,
    onData: (chunk: Uint8Array) => void | Promise<void>,
  ) {
    const reader = Bun.file(fd).stream().getReader() as ReadableStreamDefaultReader<Uint8Array>;
    this.#reader = reader;
    this.done = (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done || this.#cancelled) return;
          await onData(value);
        }
      } catch {
        // EIO (pty hung up) or a read error: either way the stream is over
      }
    })();
  }

  /** Stops reading (the fd stays open: its owner closes it). */
  cancel(): void {
    this.#cancelled = true;
    this.#reader.cancel().catch(() => {});
  }
}

/**
 * A pipe of the process's output, read from the moment the runtime starts: the runtime (or its
 * hooks, or a wrapper around it) writes there too, and must never block on a full pipe while the
 * monitor waits for it to exit. What is read before a sink is attached is kept: while the runtime
 * runs the last EARLY_MAX bytes of it (reading never stops), once it has exited one chunk at a
 * time (reading waits for the sink, as it would before any reading began). attach() hands what
 * was kept to the sink, then the rest, in order; tail() gives the runtime's last words on failure.
 */
export class OutputPipe {
  readonly pump: Pump;
  #kept: Uint8Array[] = [];
  #size = 0;
  #dropped = 0;
  #holding = false;
  #cancelled = false;
  #sink: ((chunk: Uint8Array) => void | Promise<void>) | undefined;
  #wake: (() => void) | undefined;
  #delivered!: () => void;

  /** Settles when the stream ended (and all of it reached the sink), failed or was cancelled. */
  readonly done: Promise<void>;

  /** Starts reading `fd` (non-blocking; its owner closes it, after cancel()). */
  constructor(readonly fd: number) {
    this.pump = new Pump(fd, (chunk) => this.#take(chunk));
    const delivered = new Promise<void>((r) => (this.#delivered = r));
    this.done = this.pump.done.then(() => delivered);
  }

  /** The runtime has exited: from now on reading waits for the sink rather than dropping. */
  hold(): void {
    this.#holding = true;
  }

  /** Delivers what was kept (and the count of bytes dropped, if any), then each chunk as it is read. */
  async attach(sink: (chunk: Uint8Array) => void | Promise<void>): Promise<number> {
    try {
      while (this.#kept.length && !this.#cancelled) {
        const chunk = this.#kept.shift()!;
        this.#size -= chunk.length;
        await sink(chunk);
      }
      this.#sink = sink;
      this.#wakeUp();
    } finally {
      this.#delivered();
    }
    return this.#dropped;
  }

  /** The last `max` bytes read so far (kept, not yet attached), as text. */
  tail(max: number): string {
    return textTail(this.#kept, this.#size, max);
  }

  /** Resolves when the stream has been read to its end (every writer closed it), or after `ms`. */
  async ended(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.pump.done, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  /** Stops reading (the fd stays open). */
  cancel(): void {
    this.#cancelled = true;
    this.pump.cancel();
    this.#wakeUp();
    this.#delivered();
  }

  // --- internal ---

  #take(chunk: Uint8Array): void | Promise<void> {
    if (this.#sink) return this.#sink(chunk);
    this.#kept.push(chunk);
    this.#size += chunk.length;
    while (this.#size > EARLY_MAX && this.#kept.length > 1) {
      const old = this.#kept.shift()!;
      this.#size -= old.length;
      this.#dropped += old.length;
    }
    if (this.#holding) return new Promise<void>((r) => (this.#wake = r));
  }

  #wakeUp(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }
}

/**
 * A pipe only the runtime writes to (its own stderr, beside a terminal), read with read(2) while
 * the monitor waits for the runtime, keeping the last TAIL_MAX bytes for its error message. Not
 * a Pump: a Bun stream that reaches its end starts Bun's thread pool, two threads for the rest
 * of the container's life (measured: +0.4 MB PSS per monitor).
 */
export class TailReader {
  #kept: Uint8Array[] = [];
  #size = 0;
  #eof = false;
  #buf: Uint8Array | undefined;

  /** Reads `fd` (non-blocking; its owner closes it). */
  constructor(readonly fd: number) {}

  /** Reads what the pipe holds now, without blocking; true when it read anything. */
  readNow(): boolean {
    let any = false;
    while (!this.#eof) {
      this.#buf ??= new Uint8Array(65536);
      const n = read(this.fd, this.#buf);
      if (n < 0) break; // nothing more for now
      if (n === 0) this.#eof = true;
      else {
        any = true;
        this.#kept.push(this.#buf.slice(0, n));
        this.#size += n;
        while (this.#size > TAIL_MAX && this.#kept.length > 1) this.#size -= this.#kept.shift()!.length;
      }
    }
    return any;
  }

  /**
   * Reads until the stream ends, `stop()` says so or `ms` have passed, blocking in poll(2) for
   * slices of ≤ SLICE_MS (the end of the runtime wakes it at once) and yielding to the event loop
   * between them.
   */
  async readUntil(stop: () => boolean, ms = Infinity): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      this.readNow();
      const left = deadline - Date.now();
      if (this.#eof || stop() || left <= 0) return;
      pollIn(this.fd, Math.min(SLICE_MS, left));
      await Bun.sleep(0);
    }
  }

  /** Resolves when the stream has been read to its end, or after `ms`. */
  ended(ms: number): Promise<void> {
    return this.readUntil(() => false, ms);
  }

  /** The last `max` bytes read, as text. */
  tail(max: number): string {
    return textTail(this.#kept, this.#size, max);
  }
}

/** Writes to a non-blocking fd in order without ever blocking the monitor. */
export class Writer {
  #queue: Uint8Array[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #state: "open" | "closing" | "closed" | "failed" = "open";
  #flushed: Array<() => void> = [];

  /** Wraps `fd` (already O_NONBLOCK); close() closes it unless `ownsFd` is false. */
  constructor(
    readonly fd: number,
    private readonly ownsFd = true,
  ) {}

  /** Bytes waiting for the reader. */
  get pending(): number {
    let n = 0;
    for (const b of this.#queue) n += b.length;
    return n;
  }

  /** Queues bytes; they are dropped once the reader went away (EPIPE) or after close(). */
  write(data: Uint8Array): void {
    if (this.#state !== "open" || data.length === 0) return;
    this.#queue.push(data);
    if (!this.#timer) this.#flush();
  }

  /** Writes what is queued (waiting ≤ `graceMs` for a slow reader), then closes the fd. */
  async close(graceMs = 1000): Promise<void> {
    if (this.#state === "closed" || this.#state === "closing") return;
    if (this.#state === "open" && this.#queue.length) {
      this.#state = "closing";
      await Promise.race([new Promise<void>((r) => this.#flushed.push(r)), Bun.sleep(graceMs)]);
    }
    this.#state = "closed";
    clearTimeout(this.#timer);
    this.#queue = [];
    if (this.ownsFd) close(this.fd);
  }

  // --- internal ---

  #flush(): void {
    this.#timer = undefined;
    try {
      while (this.#queue.length) {
        const head = this.#queue[0]!;
        const n = write(this.fd, head);
        if (n < 0) {
          this.#timer = setTimeout(() => this.#flush(), RETRY_MS);
          return;
        }
        if (n < head.length) this.#queue[0] = head.subarray(n);
        else this.#queue.shift();
      }
    } catch {
      this.#state = "failed";
      this.#queue = [];
    }
    for (const r of this.#flushed.splice(0)) r();
  }
}

// --- internal ---

const RETRY_MS = 10;

/**
 * What a pipe keeps of the output read while the runtime runs: enough for any runtime's error and
 * for what an exec'd process writes in the moment before `runtime exec -d` exits.
 */
const EARLY_MAX = 1 << 20;

/** What a TailReader keeps: the runtime's last words (its error message is the last 4096 characters). */
const TAIL_MAX = 64 * 1024;
/** The longest a TailReader blocks the event loop in poll(2). */
const SLICE_MS = 50;

/** The last `max` bytes of `chunks` (`size` bytes in all), as text. */
function textTail(chunks: Uint8Array[], size: number, max: number): string {
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) all.set(c, (at += c.length) - c.length);
  return new TextDecoder().decode(all.subarray(Math.max(0, size - max)));
}

/**
 * Bytes for a socket whose reader may be slow: what the socket takes is written at once, the
 * rest waits here, in order, and goes out as the socket drains (call flush from its drain handler).
 */
export class SendQueue {
  #queue: Uint8Array[] = [];
  /** Bytes waiting. */
  queued = 0;

  /** Writes `data` after what is waiting; queues what the socket does not take now. */
  write(s: { write(b: Uint8Array): number }, data: Uint8Array): void {
    if (this.#queue.length === 0) {
      const n = s.write(data);
      if (n >= data.length) return;
      data = data.subarray(Math.max(n, 0));
    }
    this.#queue.push(data);
    this.queued += data.length;
  }

  /** Writes what is waiting, as far as the socket takes it; true when nothing is left. */
  flush(s: { write(b: Uint8Array): number }): boolean {
    while (this.#queue.length) {
      const head = this.#queue[0]!;
      const n = s.write(head);
      if (n > 0) this.queued -= n;
      if (n < head.length) {
        if (n > 0) this.#queue[0] = head.subarray(n);
        return false;
      }
      this.#queue.shift();
    }
    return true;
  }

  /** Drops what is waiting (the reader went away). */
  clear(): void {
    this.#queue = [];
    this.queued = 0;
  }
}
