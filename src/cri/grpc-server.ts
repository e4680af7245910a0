// A gRPC server for the CRI's two kinds of call — unary and server-streaming — on our own HTTP/2
// (cri/h2-connection.ts): the daemon's whole gRPC layer. It replaced grpc-js's Server, whose
// generic machinery cost the idle daemon ~5 MB and every call ~150 µs of CPU, and then Bun's
// node:http2, which still cost most of a call's CPU, several MB and milliseconds of start-up
// (measured: bench/RESULTS.md, "serial" and "h2").
//
// The wire (grpc/doc/PROTOCOL-HTTP2.md): a POST with content-type application/grpc[+proto];
// the body is length-prefixed messages (1 byte compressed flag, 4 bytes big-endian length); the
// answer is HEADERS (:status 200), the messages, then trailers (grpc-status, grpc-message,
// percent-encoded) — or, for a call that fails before any message, one HEADERS frame holding
// both ("trailers-only"). `grpc-timeout` sets the call's deadline; a stream the client resets
// cancels it.

import type { Duplex } from "node:stream";
import { H2Connection, type H2Stream, headerBlock, serveDuplex, type Transport } from "./h2-connection.ts";

/** gRPC status codes (grpc/doc/statuscodes.md). */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type StatusCode = (typeof Status)[keyof typeof Status];

/** A call's outcome other than OK; a handler throws it (anything else thrown is UNKNOWN). */
export class GrpcStatus extends Error {
  constructor(
    readonly code: StatusCode,
    readonly details: string,
  ) {
    super(details);
  }
}

/** What a handler learns about its call. */
export interface Call {
  /** "/runtime.v1.RuntimeService/Version" */
  path: string;
  /** The first value of a request header (gRPC metadata), e.g. "traceparent". */
  header(name: string): string | undefined;
  /** The client's deadline (ms since the epoch), or Infinity. */
  deadline: number;
  /**
   * Aborted when the call can no longer be answered: the client cancelled it (reset the stream
   * or went away; reason: an AbortError DOMException), its deadline passed (TimeoutError; the
   * client has been told DEADLINE_EXCEEDED), or the server was destroyed.
   */
  signal: AbortSignal;
}

/** A unary method: the request's bytes in, the response's bytes out. */
export type UnaryHandler = (req: Uint8Array, call: Call) => Promise<Uint8Array>;
/** A server-streaming method: `send` resolves once the transport took the message (or the call ended). */
export type StreamingHandler = (req: Uint8Array, call: Call, send: (msg: Uint8Array) => Promise<void>) => Promise<void>;
export type Route = { kind: "unary"; handle: UnaryHandler } | { kind: "server_streaming"; handle: StreamingHandler };

export interface GrpcServerOptions {
  /** Largest request message accepted (RESOURCE_EXHAUSTED beyond). */
  maxRecvBytes: number;
  /** Largest response message sent (RESOURCE_EXHAUSTED instead). */
  maxSendBytes: number;
  /** Told of transport-level trouble (a session or stream error); debug-level news. */
  onError?: (what: string, e: unknown) => void;
}

/** Serves `routes` (by :path) on the connections handed to `inject`. */
export class GrpcServer {
  #routes: Map<string, Route>;
  #o: GrpcServerOptions;
  #conns = new Set<H2Connection>();
  #calls = new Set<AbortController>();
  #closing = false;

  constructor(routes: Map<string, Route>, o: GrpcServerOptions) {
    this.#routes = routes;
    this.#o = o;
  }

  /** Serves one client connection given as a node:net Socket (or any Duplex of its bytes). */
  inject(conn: Duplex): void {
    serveDuplex(conn, (t) => this.accept(t));
  }

  /** Serves one client connection; its owner feeds the returned connection (see `Transport`). */
  accept(t: Transport): H2Connection {
    const c: H2Connection = new H2Connection(t, {
      onStream: (s) => this.#serve(s),
      onError: (what) => this.#o.onError?.("connection", new Error(what)),
      onClose: () => this.#conns.delete(c),
    });
    this.#conns.add(c);
    if (this.#closing) c.goaway();
    return c;
  }

  /** Tells every connection to go away (GOAWAY): calls in flight finish, new ones are refused. */
  close(): void {
    this.#closing = true;
    for (const c of this.#conns) c.goaway();
  }

  /** Ends every connection now; calls in flight are aborted. */
  destroy(): void {
    for (const ac of this.#calls) ac.abort(new DOMException("the server is stopping", "AbortError"));
    for (const c of [...this.#conns]) c.destroy();
  }

  // --- internal ---

  #serve(stream: H2Stream): void {
    const headers = stream.headers;
    const ctype = headers.get("content-type") ?? "";
    if (!ctype.startsWith("application/grpc")) {
      stream.respond(STATUS_415, true);
      stream.done();
      return;
    }
    const path = headers.get(":path")!;
    const route = this.#routes.get(path);
    const ac = new AbortController();
    this.#calls.add(ac);
    let done = false;
    let running = false; // the handler was called and has not settled
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = () => {
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      this.#calls.delete(ac);
      if (!running) stream.done();
    };
    const settled = () => {
      running = false;
      if (done) stream.done();
    };
    /** Ends the call with a status: trailers-only when nothing was sent yet. */
    const fail = (code: StatusCode, details: string) => {
      if (done) return;
      finish();
      if (stream.closed) return;
      if (!stream.headersSent) stream.respond(statusBlock(code, details, true), true);
      else stream.end(statusBlock(code, details, false));
    };
    stream.onReset = () => {
      if (!done) {
        finish();
        ac.abort(new DOMException("the client cancelled the call", "AbortError"));
      }
    };
    if (!route) return fail(Status.UNIMPLEMENTED, `The server does not implement the method ${path}`);
    const timeout = headers.get("grpc-timeout");
    const deadline = parseTimeout(timeout);
    if (deadline === undefined) return fail(Status.INTERNAL, `invalid grpc-timeout header "${String(timeout)}"`);
    if (Number.isFinite(deadline)) {
      timer = setTimeout(
        () => {
          fail(Status.DEADLINE_EXCEEDED, "Deadline exceeded");
          ac.abort(new DOMException("the call's deadline passed", "TimeoutError"));
        },
        Math.max(0, deadline - Date.now()),
      );
      timer.unref?.();
    }
    const call: Call = { path, deadline, signal: ac.signal, header: (name) => headers.get(name) };

    // the request: exactly one length-prefixed message
    let first: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    let size = 0;
    const max = this.#o.maxRecvBytes;
    stream.onData = (c) => {
      if (done) return;
      if (size === 0 && c.length >= 5) {
        const len = c.readUInt32BE(1);
        if (len > max) return fail(Status.RESOURCE_EXHAUSTED, `Received message larger than max (${len} vs. ${max})`);
      }
      if (first === undefined) first = c;
      else (chunks ??= [first]).push(c);
      size += c.length;
      if (size > max + 5) fail(Status.RESOURCE_EXHAUSTED, `Received message larger than max (${size - 5} vs. ${max})`);
    };
    stream.onEnd = () => {
      if (done) return;
      let req: Uint8Array;
      try {
        req = requestMessage(chunks ? Buffer.concat(chunks, size) : (first ?? EMPTY), headers.get("grpc-encoding") ?? "identity");
      } catch (e) {
        return fail(e instanceof GrpcStatus ? e.code : Status.INTERNAL, e instanceof Error ? e.message : String(e));
      }
      first = chunks = undefined;
      const failed = (e: unknown) => {
        settled();
        if (e instanceof GrpcStatus) fail(e.code, e.details);
        else fail(Status.UNKNOWN, e instanceof Error ? e.message : String(e));
      };
      running = true;
      if (route.kind === "unary") {
        route.handle(req, call).then((res) => {
          settled();
          if (done || stream.closed) return finish();
          if (res.length > this.#o.maxSendBytes)
            return fail(Status.RESOURCE_EXHAUSTED, `Sent message larger than max (${res.length} vs. ${this.#o.maxSendBytes})`);
          finish();
          stream.respond(RESPONSE_HEADERS, false);
          stream.write(prefix(res.length));
          stream.write(res);
          stream.end(OK_TRAILERS);
        }, failed);
      } else {
        const send = (msg: Uint8Array): Promise<void> => {
          if (done || stream.closed) return Promise.resolve();
          if (msg.length > this.#o.maxSendBytes) {
            fail(Status.RESOURCE_EXHAUSTED, `Sent message larger than max (${msg.length} vs. ${this.#o.maxSendBytes})`);
            return Promise.resolve();
          }
          if (!stream.headersSent) stream.respond(RESPONSE_HEADERS, false);
          stream.write(prefix(msg.length));
          stream.write(msg);
          return stream.drained();
        };
        route.handle(req, call, send).then(() => {
          settled();
          if (done) return;
          if (!stream.headersSent) return fail(Status.OK, "");
          finish();
          stream.end(OK_TRAILERS);
        }, failed);
      }
    };
  }
}

// --- internal ---

const EMPTY = Buffer.alloc(0);
const RESPONSE_HEADERS = headerBlock([
  [":status", "200"],
  ["content-type", "application/grpc+proto"],
]);
const OK_TRAILERS = headerBlock([
  ["grpc-status", "0"],
  ["grpc-message", ""],
]);
const STATUS_415 = headerBlock([[":status", "415"]]);

/** The header block of a status: trailers, or (`only`) the whole answer. */
function statusBlock(code: StatusCode, details: string, only: boolean): Buffer {
  if (code === Status.OK && !only) return OK_TRAILERS;
  const status: Array<[string, string]> = [
    ["grpc-status", String(code)],
    ["grpc-message", encodeMessage(details)],
  ];
  return headerBlock(only ? [[":status", "200"], ["content-type", "application/grpc+proto"], ...status] : status);
}

/** The 5-byte prefix of an uncompressed message of `len` bytes. */
function prefix(len: number): Buffer {
  const out = Buffer.allocUnsafe(5);
  out[0] = 0;
  out.writeUInt32BE(len, 1);
  return out;
}

/** The one message of a request body; gzip/deflate-compressed ones are inflated. */
function requestMessage(body: Buffer, encoding: string): Uint8Array {
  if (body.length < 5) throw new GrpcStatus(Status.INTERNAL, body.length === 0 ? "the request has no message" : "the request's message is cut short");
  const len = body.readUInt32BE(1);
  if (body.length < 5 + len) throw new GrpcStatus(Status.INTERNAL, "the request's message is cut short");
  if (body.length > 5 + len) throw new GrpcStatus(Status.UNIMPLEMENTED, "a unary or server-streaming method takes one request message");
  const msg = body.subarray(5, 5 + len);
  if (body[0] === 0) return msg;
  if (body[0] !== 1) throw new GrpcStatus(Status.INTERNAL, `bad message flag ${body[0]}`);
  // compressed: as the client's grpc-encoding says (grpc-js and grpc-go accept gzip and deflate)
  const zlib = require("node:zlib") as typeof import("node:zlib");
  if (encoding === "gzip") return zlib.gunzipSync(msg);
  if (encoding === "deflate") return zlib.inflateSync(msg);
  throw new GrpcStatus(Status.UNIMPLEMENTED, `compression "${encoding}" is not supported`);
}

/** grpc-timeout ("<digits><H|M|S|m|u|n>") → the deadline in ms since the epoch; Infinity when absent, undefined when malformed. */
function parseTimeout(v: string | undefined): number | undefined {
  if (v === undefined) return Infinity;
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  if (!m) return undefined;
  const unitMs = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 }[m[2] as "H"]!;
  return Date.now() + Number(m[1]) * unitMs;
}

/** grpc-message: percent-encoding of every byte outside printable ASCII, and of '%'. */
export function encodeMessage(s: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(s)) return s;
  let out = "";
  for (const b of Buffer.from(s, "utf8"))
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  return out;
}
