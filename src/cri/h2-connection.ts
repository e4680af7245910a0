// The server side of one HTTP/2 connection (RFC 9113), as much of it as gRPC clients use — grpc-go
// (kubelet, crictl, critest) and grpc-js: the connection preface, SETTINGS and their ACK, HEADERS
// and CONTINUATION with HPACK (hpack.ts: the client's dynamic table is kept; our blocks never use
// one), DATA with padding, flow control both ways (connection and stream windows: we grant
// WINDOW_UPDATE as we consume, and never send beyond the client's windows), PING, RST_STREAM,
// GOAWAY, and protocol errors answered with GOAWAY or RST_STREAM. cri/grpc-server.ts puts the gRPC
// wire on top. It replaced node:http2 (Bun's is JavaScript too, with a generic stream machinery
// around it): per-call CPU, memory and start-up (bench/RESULTS.md, "h2").
//
// Any `:authority` is accepted: older grpc-go clients send the socket path there.
//
// Memory stays bounded whatever the client does: a frame is at most our MAX_FRAME_SIZE, a header
// block at most MAX_BLOCK, a request body is the gRPC layer's to limit, at most
// MAX_CONCURRENT_STREAMS streams are open; a client that stops reading stops being read (its
// socket is paused while our unsent bytes exceed SOCKET_HIGH) and gets no new streams while the
// answers it has not taken exceed QUEUED_HIGH.

import type { Duplex } from "node:stream";
import { encodeHeaderBlock, type HeaderField, HpackDecoder } from "./hpack.ts";

/** HTTP/2 error codes (RFC 9113 §7). */
export const H2Error = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

/** The settings we announce (RFC 9113 §6.5.2). */
export const OUR_SETTINGS = {
  /** Streams a client may have open at once; more are refused (REFUSED_STREAM). */
  maxConcurrentStreams: 1000,
  /** Each stream's receive window; also the connection's, raised by a WINDOW_UPDATE at the start. */
  initialWindowSize: 1 << 20,
  /** The largest frame payload we accept (the protocol's default and least). */
  maxFrameSize: 16384,
};

/** The largest header block (HEADERS + CONTINUATION fragments) accepted. */
export const MAX_BLOCK = 128 * 1024;

/** Pre-encodes a header block (HPACK, no dynamic table) for `H2Stream.respond` / `end`. */
export function headerBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  return encodeHeaderBlock(fields.map(([name, value]): HeaderField => ({ name, value, sensitive: false })));
}

/** One request stream. The handler sets the `on*` callbacks when it gets the stream. */
export class H2Stream {
  /** The request's header fields (first value of each name; names in lower case). */
  readonly headers: Map<string, string>;
  /** Request body bytes (padding removed), in order. */
  onData?: (chunk: Buffer) => void;
  /** The client ended its side (END_STREAM). */
  onEnd?: () => void;
  /** The stream is gone before we ended it: the client reset it, or the connection closed. */
  onReset?: () => void;
  headersSent = false;
  /** No more may be sent: we ended our side, or the stream was reset. */
  closed = false;
  /** The client ended its side. */
  remoteEnded = false;
  /** Bytes written and not yet framed (waiting for the client's windows). */
  queued = 0;
  /** @internal */ sendWindow: number;
  /** @internal */ recvWindow = OUR_SETTINGS.initialWindowSize;
  /** @internal */ recvUnacked = 0;
  /** @internal */ queue: Uint8Array[] = [];
  /** @internal */ queueAt = 0;
  /** @internal */ trailers: Buffer | undefined;
  /** @internal */ waiters: Array<() => void> | undefined;

  constructor(
    readonly id: number,
    headers: Map<string, string>,
    readonly conn: H2Connection,
    sendWindow: number,
  ) {
    this.headers = headers;
    this.sendWindow = sendWindow;
  }

  /** Sends the response's header block (from `headerBlock`); `end` = nothing follows (trailers-only). */
  respond(block: Buffer, end: boolean): void {
    if (this.closed) return;
    this.headersSent = true;
    this.conn.sendHeaders(this, block, end);
  }

  /** Queues body bytes; they go out as the client's windows allow. */
  write(data: Uint8Array): void {
    if (this.closed || data.length === 0) return;
    this.queue.push(data);
    this.queued += data.length;
    this.conn.queuedBytes(data.length);
    this.conn.pump(this);
  }

  /** Ends our side with the trailers' header block, after the queued body bytes. */
  end(trailers: Buffer): void {
    if (this.closed || this.trailers) return;
    this.trailers = trailers;
    this.conn.pump(this);
  }

  /**
   * The handler is done with the stream (its work has ended, not only its answer): until then
   * the stream counts against MAX_CONCURRENT_STREAMS even once reset, so a client resetting
   * streams as fast as it opens them cannot start unbounded work. Idempotent.
   */
  done(): void {
    if (this.#done) return;
    this.#done = true;
    this.conn.release();
  }
  #done = false;

  /** Resolves once the queued bytes are in the socket and the socket is not full (or the stream is gone). */
  drained(): Promise<void> {
    if (this.closed || (this.queued === 0 && !this.conn.congested)) return Promise.resolve();
    return new Promise((resolve) => (this.waiters ??= []).push(resolve));
  }
}

/**
 * The byte stream under a connection: a Bun socket (the daemon's listener, cri/h2-front.ts) or a
 * node:net Socket (`duplexTransport`). Its owner feeds the connection: `input` with each chunk
 * read, `drained` when the written bytes went out, `closed` when it closed.
 */
export interface Transport {
  write(b: Uint8Array): void;
  /** Bytes written and not yet taken by the kernel. */
  readonly pending: number;
  /** Stops reading (TCP-like backpressure on the client); `resume` reads again. */
  pause(): void;
  resume(): void;
  /** Closes once what was written is sent. */
  end(): void;
  /** Closes now. */
  destroy(): void;
}

/** Serves `socket` (node:net, or any Duplex of bytes) with a connection made by `make`. */
export function serveDuplex(socket: Duplex, make: (t: Transport) => H2Connection): H2Connection {
  const c = make({
    write: (b) => void socket.write(b),
    get pending() {
      return socket.writableLength;
    },
    pause: () => void socket.pause(),
    resume: () => void socket.resume(),
    end: () => void socket.end(() => socket.destroy()),
    destroy: () => void socket.destroy(),
  });
  socket.on("data", (chunk: Buffer) => c.input(chunk));
  socket.on("drain", () => c.drained());
  socket.on("error", () => {});
  socket.on("end", () => c.closed());
  socket.on("close", () => c.closed());
  return c;
}

export interface H2ConnectionOptions {
  /** A new request stream: set its callbacks now. */
  onStream: (s: H2Stream) => void;
  /** Told of protocol trouble (the client's fault; debug-level news). */
  onError?: (what: string) => void;
  /** The connection is closed. */
  onClose?: () => void;
}

/** Serves HTTP/2 on one client's connection. */
export class H2Connection {
  #socket: Transport;
  #o: H2ConnectionOptions;
  #streams = new Map<number, H2Stream>();
  #decoder = new HpackDecoder(4096, 4096);
  // the start of a frame not yet whole: its parts, their length, and the length that makes it whole
  #pending: Buffer[] | undefined;
  #pendingLen = 0;
  #pendingNeed = 0;
  #prefaceAt = 0;
  #lastPeerStream = 0;
  // a header block in progress (HEADERS without END_HEADERS, then CONTINUATIONs)
  #blockStream = 0;
  #blockFlags = 0;
  #blockParts: Buffer[] = [];
  #blockSize = 0;
  // the client's settings
  #peerWindow = 65535;
  #peerMaxFrame = 16384;
  // flow control: what we may send on the connection, what the client may send us
  #sendWindow = 65535;
  #recvWindow = OUR_SETTINGS.initialWindowSize;
  #recvUnacked = 0;
  #blocked = new Set<H2Stream>();
  #queued = 0;
  // streams whose handler has not said it is done (H2Stream.done), reset ones included
  #active = 0;
  // output of this turn, written to the socket at once
  #out: Uint8Array[] = [];
  #outLen = 0;
  #flushing = false;
  #paused = false;
  #resuming = false;
  #goingAway = false;
  #dead = false;
  #closeWait: ReturnType<typeof setTimeout> | undefined;

  constructor(socket: Transport, o: H2ConnectionOptions) {
    this.#socket = socket;
    this.#o = o;
    const s = Buffer.allocUnsafe(9 + 18 + 13);
    frameHeader(s, 0, 18, SETTINGS, 0, 0);
    let p = setting(s, 9, 0x3, OUR_SETTINGS.maxConcurrentStreams);
    p = setting(s, p, 0x4, OUR_SETTINGS.initialWindowSize);
    p = setting(s, p, 0x2, 0); // ENABLE_PUSH off
    frameHeader(s, p, 4, WINDOW_UPDATE, 0, 0);
    s.writeUInt32BE(OUR_SETTINGS.initialWindowSize - 65535, p + 9);
    this.#emit(s);
  }

  /** True while the socket holds more unsent bytes than it should. */
  get congested(): boolean {
    return this.#paused;
  }

  /** Open streams. */
  get streams(): number {
    return this.#streams.size;
  }

  /** Tells the client to go away (GOAWAY, NO_ERROR): open streams finish, new ones are ignored; closes when none is left. */
  goaway(): void {
    if (this.#goingAway || this.#dead) return;
    this.#goingAway = true;
    this.#goawayFrame(H2Error.NO_ERROR, "");
    if (this.#streams.size === 0) this.#finish();
  }

  /** Closes now: every open stream is reset (its onReset called). */
  destroy(): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#socket.destroy();
    this.closed();
  }

  // --- used by H2Stream ---

  /** @internal */
  sendHeaders(s: H2Stream, block: Buffer, end: boolean): void {
    const max = this.#peerMaxFrame;
    const flags = end ? END_STREAM : 0;
    if (block.length <= max) {
      const h = Buffer.allocUnsafe(9);
      frameHeader(h, 0, block.length, HEADERS, flags | END_HEADERS, s.id);
      this.#emit(h);
      this.#emit(block);
    } else {
      for (let at = 0; at < block.length; at += max) {
        const e = Math.min(at + max, block.length);
        const h = Buffer.allocUnsafe(9);
        frameHeader(h, 0, e - at, at === 0 ? HEADERS : CONTINUATION, (at === 0 ? flags : 0) | (e === block.length ? END_HEADERS : 0), s.id);
        this.#emit(h);
        this.#emit(block.subarray(at, e));
      }
    }
    if (end) this.#localEnd(s);
  }

  /** @internal A stream's handler is done (H2Stream.done). */
  release(): void {
    this.#active--;
  }

  /** @internal */
  queuedBytes(n: number): void {
    this.#queued += n;
  }

  /** @internal Frames what the windows allow of the stream's queue; then its trailers. */
  pump(s: H2Stream): void {
    if (s.closed) return;
    while (s.queued > 0) {
      const n = Math.min(s.queued, this.#sendWindow, s.sendWindow, this.#peerMaxFrame);
      if (n <= 0) {
        this.#blocked.add(s);
        return;
      }
      if (this.#paused || this.#outLen + this.#socket.pending >= SOCKET_HIGH) {
        this.#pause();
        this.#blocked.add(s);
        return;
      }
      const h = Buffer.allocUnsafe(9);
      frameHeader(h, 0, n, DATA, 0, s.id);
      this.#emit(h);
      for (let left = n; left > 0; ) {
        const head = s.queue[0]!;
        const take = Math.min(left, head.length - s.queueAt);
        this.#emit(s.queueAt === 0 && take === head.length ? head : head.subarray(s.queueAt, s.queueAt + take));
        left -= take;
        s.queueAt += take;
        if (s.queueAt === head.length) {
          s.queue.shift();
          s.queueAt = 0;
        }
      }
      s.queued -= n;
      this.#queued -= n;
      this.#sendWindow -= n;
      s.sendWindow -= n;
    }
    this.#blocked.delete(s);
    if (s.trailers) this.sendHeaders(s, s.trailers, true);
    else if (!this.#paused) wake(s);
  }

  // --- input ---

  /** The next bytes from the client. */
  input(chunk: Buffer): void {
    if (this.#dead) return;
    let buf = chunk;
    if (this.#pending) {
      // gathered until the frame is whole: a frame trickling in byte by byte is copied once
      this.#pending.push(chunk);
      this.#pendingLen += chunk.length;
      if (this.#pendingLen < this.#pendingNeed) return;
      buf = Buffer.concat(this.#pending, this.#pendingLen);
      this.#pending = undefined;
    }
    let p = 0;
    if (this.#prefaceAt < PREFACE.length) {
      while (p < buf.length && this.#prefaceAt < PREFACE.length) {
        if (buf[p++] !== PREFACE[this.#prefaceAt++]) return this.#fail(H2Error.PROTOCOL_ERROR, "not an HTTP/2 connection preface");
      }
      if (this.#prefaceAt < PREFACE.length) return;
    }
    try {
      while (buf.length - p >= 9 && !this.#paused) {
        const len = (buf[p]! << 16) | (buf[p + 1]! << 8) | buf[p + 2]!;
        if (len > OUR_SETTINGS.maxFrameSize) return this.#fail(H2Error.FRAME_SIZE_ERROR, `a frame of ${len} bytes`);
        if (buf.length - p - 9 < len) break;
        const type = buf[p + 3]!;
        const flags = buf[p + 4]!;
        const sid = buf.readUInt32BE(p + 5) & 0x7fffffff;
        this.#frame(type, flags, sid, buf, p + 9, p + 9 + len);
        if (this.#dead) return;
        p += 9 + len;
      }
    } catch (e) {
      return this.#fail(H2Error.INTERNAL_ERROR, e instanceof Error ? e.message : String(e));
    }
    if (p < buf.length) {
      const rest = p === 0 ? buf : buf.subarray(p);
      this.#pending = [rest];
      this.#pendingLen = rest.length;
      // paused: whole frames may wait here too (`drained` goes on with them)
      this.#pendingNeed = this.#paused ? 0 : rest.length < 9 ? 9 : 9 + ((rest[0]! << 16) | (rest[1]! << 8) | rest[2]!);
    }
    buf = EMPTY;
    this.#flush();
  }

  #frame(type: number, flags: number, sid: number, b: Buffer, s: number, e: number): void {
    const len = e - s;
    if (this.#blockStream !== 0 && type !== CONTINUATION) return this.#fail(H2Error.PROTOCOL_ERROR, "a header block was interrupted by another frame");
    switch (type) {
      case DATA: {
        if (sid === 0) return this.#fail(H2Error.PROTOCOL_ERROR, "DATA on stream 0");
        if (flags & PADDED) {
          if (len < 1 || b[s]! >= len) return this.#fail(H2Error.PROTOCOL_ERROR, "DATA padding larger than the frame");
          e -= b[s]!;
          s += 1;
        }
        this.#recvWindow -= len;
        if (this.#recvWindow < 0) return this.#fail(H2Error.FLOW_CONTROL_ERROR, "DATA beyond the connection's window");
        this.#recvUnacked += len;
        if (this.#recvUnacked >= OUR_SETTINGS.initialWindowSize / 2) {
          this.#windowUpdate(0, this.#recvUnacked);
          this.#recvWindow += this.#recvUnacked;
          this.#recvUnacked = 0;
        }
        const st = this.#streams.get(sid);
        if (!st) {
          if (sid > this.#lastPeerStream) return this.#fail(H2Error.PROTOCOL_ERROR, "DATA on an idle stream");
          return; // a stream we ended or reset: what was in flight is dropped
        }
        if (st.remoteEnded) return this.#rst(sid, H2Error.STREAM_CLOSED);
        st.recvWindow -= len;
        if (st.recvWindow < 0) return this.#rst(sid, H2Error.FLOW_CONTROL_ERROR);
        if (e > s) st.onData?.(b.subarray(s, e));
        if (flags & END_STREAM) return this.#remoteEnd(st);
        if (st.closed) return;
        st.recvUnacked += len;
        if (st.recvUnacked >= OUR_SETTINGS.initialWindowSize / 2) {
          this.#windowUpdate(sid, st.recvUnacked);
          st.recvWindow += st.recvUnacked;
          st.recvUnacked = 0;
        }
        return;
      }
      case HEADERS: {
        if (sid === 0 || (sid & 1) === 0) return this.#fail(H2Error.PROTOCOL_ERROR, `HEADERS on stream ${sid}`);
        if (flags & PADDED) {
          if (len < 1 || b[s]! >= len) return this.#fail(H2Error.PROTOCOL_ERROR, "HEADERS padding larger than the frame");
          e -= b[s]!;
          s += 1;
        }
        if (flags & PRIORITY_FLAG) {
          if (e - s < 5) return this.#fail(H2Error.PROTOCOL_ERROR, "HEADERS priority fields larger than the frame");
          if ((b.readUInt32BE(s) & 0x7fffffff) === sid) return this.#rst(sid, H2Error.PROTOCOL_ERROR);
          s += 5;
        }
        if (flags & END_HEADERS) return this.#block(sid, flags, b.subarray(s, e));
        this.#blockStream = sid;
        this.#blockFlags = flags;
        this.#blockParts = [Buffer.from(b.subarray(s, e))];
        this.#blockSize = e - s;
        return;
      }
      case CONTINUATION: {
        if (this.#blockStream === 0 || sid !== this.#blockStream) return this.#fail(H2Error.PROTOCOL_ERROR, "CONTINUATION without HEADERS");
        this.#blockSize += len;
        if (this.#blockSize > MAX_BLOCK) return this.#fail(H2Error.ENHANCE_YOUR_CALM, `a header block larger than ${MAX_BLOCK} bytes`);
        this.#blockParts.push(Buffer.from(b.subarray(s, e)));
        if (!(flags & END_HEADERS)) return;
        const block = Buffer.concat(this.#blockParts);
        this.#blockStream = 0;
        this.#blockParts = [];
        return this.#block(sid, this.#blockFlags, block);
      }
      case PRIORITY:
        if (sid === 0) return this.#fail(H2Error.PROTOCOL_ERROR, "PRIORITY on stream 0");
        if (len !== 5) return this.#rst(sid, H2Error.FRAME_SIZE_ERROR);
        return;
      case RST_STREAM: {
        if (sid === 0) return this.#fail(H2Error.PROTOCOL_ERROR, "RST_STREAM on stream 0");
        if (len !== 4) return this.#fail(H2Error.FRAME_SIZE_ERROR, "RST_STREAM of a wrong size");
        if (sid > this.#lastPeerStream) return this.#fail(H2Error.PROTOCOL_ERROR, "RST_STREAM on an idle stream");
        const st = this.#streams.get(sid);
        if (st) this.#reset(st);
        return;
      }
      case SETTINGS:
        if (sid !== 0) return this.#fail(H2Error.PROTOCOL_ERROR, "SETTINGS on a stream");
        if (flags & ACK) {
          if (len !== 0) return this.#fail(H2Error.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
          return;
        }
        if (len % 6 !== 0) return this.#fail(H2Error.FRAME_SIZE_ERROR, "SETTINGS of a wrong size");
        for (let p = s; p < e; p += 6) if (!this.#setting(b.readUInt16BE(p), b.readUInt32BE(p + 2))) return;
        {
          const ack = Buffer.allocUnsafe(9);
          frameHeader(ack, 0, 0, SETTINGS, ACK, 0);
          this.#emit(ack);
        }
        for (const st of [...this.#blocked]) this.pump(st);
        return;
      case PUSH_PROMISE:
        return this.#fail(H2Error.PROTOCOL_ERROR, "PUSH_PROMISE from a client");
      case PING: {
        if (sid !== 0) return this.#fail(H2Error.PROTOCOL_ERROR, "PING on a stream");
        if (len !== 8) return this.#fail(H2Error.FRAME_SIZE_ERROR, "PING of a wrong size");
        if (flags & ACK) return;
        const pong = Buffer.allocUnsafe(17);
        frameHeader(pong, 0, 8, PING, ACK, 0);
        b.copy(pong, 9, s, e);
        this.#emit(pong);
        return;
      }
      case GOAWAY:
        if (sid !== 0) return this.#fail(H2Error.PROTOCOL_ERROR, "GOAWAY on a stream");
        if (len < 8) return this.#fail(H2Error.FRAME_SIZE_ERROR, "GOAWAY of a wrong size");
        // the client sends nothing new; what is open finishes
        this.#goingAway = true;
        if (this.#streams.size === 0) this.#finish();
        return;
      case WINDOW_UPDATE: {
        if (len !== 4) return this.#fail(H2Error.FRAME_SIZE_ERROR, "WINDOW_UPDATE of a wrong size");
        const inc = b.readUInt32BE(s) & 0x7fffffff;
        if (sid === 0) {
          if (inc === 0) return this.#fail(H2Error.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
          this.#sendWindow += inc;
          if (this.#sendWindow > MAX_WINDOW) return this.#fail(H2Error.FLOW_CONTROL_ERROR, "the connection's window beyond 2^31-1");
          for (const st of [...this.#blocked]) this.pump(st);
          return;
        }
        const st = this.#streams.get(sid);
        if (!st) {
          if (sid > this.#lastPeerStream) return this.#fail(H2Error.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
          return;
        }
        if (inc === 0) return this.#rst(sid, H2Error.PROTOCOL_ERROR);
        st.sendWindow += inc;
        if (st.sendWindow > MAX_WINDOW) return this.#rst(sid, H2Error.FLOW_CONTROL_ERROR);
        this.pump(st);
        return;
      }
      default:
        return; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  // A complete header block for stream `sid`.
  #block(sid: number, flags: number, block: Buffer): void {
    if (block.length > MAX_BLOCK) return this.#fail(H2Error.ENHANCE_YOUR_CALM, `a header block larger than ${MAX_BLOCK} bytes`);
    let fields: HeaderField[];
    try {
      fields = this.#decoder.decode(block).fields;
    } catch (e) {
      return this.#fail(H2Error.COMPRESSION_ERROR, e instanceof Error ? e.message : String(e));
    }
    const old = this.#streams.get(sid);
    if (old) {
      // trailers: they end the request
      if (old.remoteEnded) return this.#rst(sid, H2Error.STREAM_CLOSED);
      if (!(flags & END_STREAM)) return this.#rst(sid, H2Error.PROTOCOL_ERROR);
      return this.#remoteEnd(old);
    }
    if (sid <= this.#lastPeerStream) return; // a stream we ended or reset: dropped
    this.#lastPeerStream = sid;
    if (this.#goingAway) return; // after our GOAWAY: ignored (the client retries elsewhere)
    if (this.#active >= OUR_SETTINGS.maxConcurrentStreams || this.#queued > QUEUED_HIGH) return this.#rst(sid, H2Error.REFUSED_STREAM);
    const headers = new Map<string, string>();
    for (const f of fields) if (!headers.has(f.name)) headers.set(f.name, f.value);
    if (headers.get(":method") !== "POST" || !headers.has(":path")) {
      // not a gRPC request: a malformed one is a stream error
      return this.#rst(sid, H2Error.PROTOCOL_ERROR);
    }
    const st = new H2Stream(sid, headers, this, this.#peerWindow);
    this.#streams.set(sid, st);
    this.#active++;
    const ended = (flags & END_STREAM) !== 0;
    st.remoteEnded = ended;
    this.#o.onStream(st);
    if (ended && !st.closed) st.onEnd?.();
  }

  #setting(id: number, v: number): boolean {
    switch (id) {
      case 0x2: // ENABLE_PUSH
        if (v > 1) {
          this.#fail(H2Error.PROTOCOL_ERROR, `ENABLE_PUSH ${v}`);
          return false;
        }
        return true;
      case 0x4: {
        // INITIAL_WINDOW_SIZE: applies to every open stream by the difference
        if (v > MAX_WINDOW) {
          this.#fail(H2Error.FLOW_CONTROL_ERROR, `INITIAL_WINDOW_SIZE ${v}`);
          return false;
        }
        const delta = v - this.#peerWindow;
        this.#peerWindow = v;
        for (const st of this.#streams.values()) {
          st.sendWindow += delta;
          if (st.sendWindow > MAX_WINDOW) {
            this.#fail(H2Error.FLOW_CONTROL_ERROR, "a stream's window beyond 2^31-1");
            return false;
          }
          if (delta > 0 && st.queued > 0) this.#blocked.add(st);
        }
        return true;
      }
      case 0x5: // MAX_FRAME_SIZE
        if (v < 16384 || v > 16777215) {
          this.#fail(H2Error.PROTOCOL_ERROR, `MAX_FRAME_SIZE ${v}`);
          return false;
        }
        this.#peerMaxFrame = v;
        return true;
      default:
        // HEADER_TABLE_SIZE: our blocks never use the dynamic table, any size suits them;
        // MAX_CONCURRENT_STREAMS: we open none; MAX_HEADER_LIST_SIZE: ours are small; others: unknown
        return true;
    }
  }

  #remoteEnd(st: H2Stream): void {
    st.remoteEnded = true;
    if (st.closed) {
      this.#forget(st);
      return;
    }
    st.onEnd?.();
  }

  // We sent END_STREAM.
  #localEnd(st: H2Stream): void {
    st.closed = true;
    st.queue = [];
    this.#queued -= st.queued;
    st.queued = 0;
    this.#blocked.delete(st);
    wake(st);
    // a response before the whole request: the rest of it is not wanted (RFC 9113 §8.1)
    if (!st.remoteEnded) this.#rst(st.id, H2Error.NO_ERROR);
    else this.#forget(st);
  }

  // The stream is gone while open: its handler is told.
  #reset(st: H2Stream): void {
    const open = !st.closed;
    st.closed = true;
    st.remoteEnded = true;
    this.#queued -= st.queued;
    st.queued = 0;
    st.queue = [];
    this.#blocked.delete(st);
    this.#forget(st);
    wake(st);
    if (open) st.onReset?.();
  }

  #forget(st: H2Stream): void {
    if (!this.#streams.delete(st.id)) return;
    if (this.#goingAway && this.#streams.size === 0) this.#finish();
  }

  // --- output ---

  #emit(b: Uint8Array): void {
    if (this.#dead) return;
    this.#out.push(b);
    this.#outLen += b.length;
    if (!this.#flushing) {
      this.#flushing = true;
      queueMicrotask(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushing = false;
    if (this.#out.length === 0 || this.#dead) return;
    const out = this.#out.length === 1 ? this.#out[0]! : Buffer.concat(this.#out, this.#outLen);
    this.#out = [];
    this.#outLen = 0;
    this.#socket.write(out);
    if (this.#socket.pending >= SOCKET_HIGH) this.#pause();
    else if (this.#paused && !this.#resuming) {
      // paused for what this turn produced, and the kernel took most of it: go on next turn
      this.#resuming = true;
      setImmediate(() => {
        this.#resuming = false;
        if (this.#socket.pending < SOCKET_HIGH) this.drained();
      });
    }
  }

  // The client is not taking what we send: we stop reading its frames (and its socket) and
  // framing answers until it has (`drained`).
  #pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#socket.pause();
  }

  /** The transport took what was written. */
  drained(): void {
    if (!this.#paused || this.#dead) return;
    this.#paused = false;
    this.#socket.resume();
    for (const st of [...this.#blocked]) this.pump(st);
    if (!this.#paused) for (const st of this.#streams.values()) if (st.queued === 0) wake(st);
    // the frames left unread when we paused
    if (!this.#paused && this.#pending) this.input(EMPTY);
    this.#flush();
  }

  #windowUpdate(sid: number, inc: number): void {
    const f = Buffer.allocUnsafe(13);
    frameHeader(f, 0, 4, WINDOW_UPDATE, 0, sid);
    f.writeUInt32BE(inc, 9);
    this.#emit(f);
  }

  #rst(sid: number, code: number): void {
    const f = Buffer.allocUnsafe(13);
    frameHeader(f, 0, 4, RST_STREAM, 0, sid);
    f.writeUInt32BE(code, 9);
    this.#emit(f);
    const st = this.#streams.get(sid);
    if (st) this.#reset(st);
  }

  #goawayFrame(code: number, debug: string): void {
    const d = Buffer.from(debug, "utf8");
    const f = Buffer.allocUnsafe(17 + d.length);
    frameHeader(f, 0, 8 + d.length, GOAWAY, 0, 0);
    f.writeUInt32BE(this.#lastPeerStream, 9);
    f.writeUInt32BE(code, 13);
    d.copy(f, 17);
    this.#emit(f);
  }

  // A connection error: GOAWAY with the code, then the connection ends.
  #fail(code: number, what: string): void {
    if (this.#dead) return;
    this.#o.onError?.(`http/2 from the client: ${what}`);
    this.#goawayFrame(code, what);
    this.#flush();
    this.#dead = true;
    this.#socket.end();
    this.closed();
  }

  // Graceful end: nothing open is left after a GOAWAY. What is queued goes out now; the client,
  // told to go away, closes the connection once its streams are done, and we wait for that (at
  // most CLOSE_WAIT_MS) before ending it ourselves: ending at once raced the last frames in a
  // client that saw the end of the connection before the trailers it had received with it
  // (Bun's http2 client: "Connection dropped" for a stream already answered).
  #finish(): void {
    if (this.#dead || this.#closeWait) return;
    this.#flush();
    this.#closeWait = setTimeout(() => {
      if (this.#dead) return;
      this.#dead = true;
      this.#socket.end();
      this.closed();
    }, CLOSE_WAIT_MS);
  }

  /** The transport closed (or must be): every open stream is reset. */
  closed(): void {
    clearTimeout(this.#closeWait);
    if (!this.#dead) {
      this.#dead = true;
      this.#socket.destroy();
    }
    if (this.#streams.size === 0 && this.#o.onClose === undefined) return;
    for (const st of [...this.#streams.values()]) this.#reset(st);
    const done = this.#o.onClose;
    this.#o.onClose = undefined;
    done?.();
  }
}

// --- internal ---

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const EMPTY = Buffer.alloc(0);
const DATA = 0x0;
const HEADERS = 0x1;
const PRIORITY = 0x2;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PUSH_PROMISE = 0x5;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY_FLAG = 0x20;
const MAX_WINDOW = 2 ** 31 - 1;
/** How long a connection told to go away, with nothing open, waits for the client to close it. */
const CLOSE_WAIT_MS = 1000;
/** Unsent bytes in the socket above which the client's input is paused. */
const SOCKET_HIGH = 1 << 20;
/** Body bytes waiting for the client's windows above which new streams are refused. */
const QUEUED_HIGH = 32 << 20;

function frameHeader(out: Buffer, p: number, len: number, type: number, flags: number, sid: number): void {
  out[p] = len >>> 16;
  out[p + 1] = (len >>> 8) & 0xff;
  out[p + 2] = len & 0xff;
  out[p + 3] = type;
  out[p + 4] = flags;
  out.writeUInt32BE(sid, p + 5);
}

function setting(out: Buffer, p: number, id: number, v: number): number {
  out.writeUInt16BE(id, p);
  out.writeUInt32BE(v, p + 2);
  return p + 6;
}

function wake(st: H2Stream): void {
  const w = st.waiters;
  if (!w) return;
  st.waiters = undefined;
  for (const f of w) f();
}
