// A gRPC server for the CRI's two kinds of call — unary and server-streaming — straight on
// node:http2: the daemon's whole gRPC layer. It replaced grpc-js's Server, whose generic
// machinery (interceptors, filter stacks, channelz, a client half loaded with it) cost the idle
// daemon ~5 MB of memory and every call ~150 µs of CPU (measured: bench/RESULTS.md, "serial").
//
// The wire (grpc/doc/PROTOCOL-HTTP2.md): a POST with content-type application/grpc[+proto];
// the body is length-prefixed messages (1 byte compressed flag, 4 bytes big-endian length); the
// answer is HEADERS (:status 200), the messages, then trailers (grpc-status, grpc-message,
// percent-encoded) — or, for a call that fails before any message, one HEADERS frame holding
// both ("trailers-only"). `grpc-timeout` sets the call's deadline; a stream the client resets
// cancels it.

import { createServer, type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import type { Duplex } from "node:stream";

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
  #h2: Http2Server;
  #routes: Map<string, Route>;
  #o: GrpcServerOptions;
  #sessions = new Set<Http2Session>();
  #calls = new Set<AbortController>();

  constructor(routes: Map<string, Route>, o: GrpcServerOptions) {
    this.#routes = routes;
    this.#o = o;
    this.#h2 = createServer();
    this.#h2.on("session", (s: Http2Session) => {
      this.#sessions.add(s);
      s.on("close", () => this.#sessions.delete(s));
      s.on("error", (e) => o.onError?.("session", e));
    });
    this.#h2.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => this.#serve(stream, headers));
  }

  /** Serves one connection (a client socket, or the authority-fixing front's Duplex). */
  inject(conn: Duplex): void {
    this.#h2.emit("connection", conn);
  }

  /** Tells every connection to go away (GOAWAY): calls in flight finish, new ones are refused. */
  close(): void {
    for (const s of this.#sessions) if (!s.closed && !s.destroyed) s.close();
  }

  /** Ends every connection now; calls in flight are aborted. */
  destroy(): void {
    for (const ac of this.#calls) ac.abort(new DOMException("the server is stopping", "AbortError"));
    for (const s of this.#sessions) s.destroy();
  }

  // --- internal ---

  #serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on("error", (e) => this.#o.onError?.("stream", e));
    const ctype = String(headers["content-type"] ?? "");
    if (!ctype.startsWith("application/grpc")) {
      stream.respond({ ":status": 415 }, { endStream: true });
      return;
    }
    const path = String(headers[":path"] ?? "");
    const route = this.#routes.get(path);
    const ac = new AbortController();
    this.#calls.add(ac);
    let done = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = () => {
      done = true;
      clearTimeout(timer);
      this.#calls.delete(ac);
    };
    /** Ends the call with a status: trailers-only when nothing was sent yet. */
    const fail = (code: StatusCode, details: string) => {
      if (done) return;
      finish();
      if (stream.destroyed || stream.closed) return;
      const status = { "grpc-status": String(code), "grpc-message": encodeMessage(details) };
      if (!stream.headersSent) stream.respond({ ":status": 200, "content-type": "application/grpc+proto", ...status }, { endStream: true });
      else {
        stream.once("wantTrailers", () => stream.sendTrailers(status));
        stream.end();
      }
    };
    stream.once("close", () => {
      if (!done) {
        finish();
        ac.abort(new DOMException("the client cancelled the call", "AbortError"));
      }
    });
    if (!route) return fail(Status.UNIMPLEMENTED, `The server does not implement the method ${path}`);
    const deadline = parseTimeout(headers["grpc-timeout"]);
    if (deadline === undefined) return fail(Status.INTERNAL, `invalid grpc-timeout header "${String(headers["grpc-timeout"])}"`);
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
    const call: Call = {
      path,
      deadline,
      signal: ac.signal,
      header: (name) => {
        const v = headers[name];
        return Array.isArray(v) ? v[0] : v;
      },
    };

    // the request: exactly one length-prefixed message
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on("data", (c: Buffer) => {
      if (done) return;
      if (size === 0 && chunks.length === 0 && c.length >= 5) {
        const len = c.readUInt32BE(1);
        if (len > this.#o.maxRecvBytes) return fail(Status.RESOURCE_EXHAUSTED, `Received message larger than max (${len} vs. ${this.#o.maxRecvBytes})`);
      }
      chunks.push(c);
      size += c.length;
      if (size > this.#o.maxRecvBytes + 5) fail(Status.RESOURCE_EXHAUSTED, `Received message larger than max (${size - 5} vs. ${this.#o.maxRecvBytes})`);
    });
    stream.once("end", () => {
      if (done) return;
      let req: Uint8Array;
      try {
        req = requestMessage(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), String(headers["grpc-encoding"] ?? "identity"));
      } catch (e) {
        return fail(e instanceof GrpcStatus ? e.code : Status.INTERNAL, e instanceof Error ? e.message : String(e));
      }
      const failed = (e: unknown) => (e instanceof GrpcStatus ? fail(e.code, e.details) : fail(Status.UNKNOWN, e instanceof Error ? e.message : String(e)));
      if (route.kind === "unary") {
        route.handle(req, call).then((res) => {
          if (done || stream.destroyed) return finish();
          if (res.length > this.#o.maxSendBytes)
            return fail(Status.RESOURCE_EXHAUSTED, `Sent message larger than max (${res.length} vs. ${this.#o.maxSendBytes})`);
          finish();
          stream.respond({ ":status": 200, "content-type": "application/grpc+proto" }, { waitForTrailers: true });
          stream.once("wantTrailers", () => stream.sendTrailers(OK_TRAILERS));
          stream.end(frame(res));
        }, failed);
      } else {
        const send = (msg: Uint8Array): Promise<void> => {
          if (done || stream.destroyed || stream.closed) return Promise.resolve();
          if (msg.length > this.#o.maxSendBytes) {
            fail(Status.RESOURCE_EXHAUSTED, `Sent message larger than max (${msg.length} vs. ${this.#o.maxSendBytes})`);
            return Promise.resolve();
          }
          if (!stream.headersSent) stream.respond({ ":status": 200, "content-type": "application/grpc+proto" }, { waitForTrailers: true });
          if (stream.write(frame(msg))) return Promise.resolve();
          return new Promise<void>((resolve) => {
            const go = () => {
              stream.off("drain", go);
              stream.off("close", go);
              resolve();
            };
            stream.on("drain", go);
            stream.on("close", go);
          });
        };
        route.handle(req, call, send).then(() => {
          if (done) return;
          if (!stream.headersSent) return fail(Status.OK, "");
          finish();
          if (stream.destroyed || stream.closed) return;
          stream.once("wantTrailers", () => stream.sendTrailers(OK_TRAILERS));
          stream.end();
        }, failed);
      }
    });
  }
}

// --- internal ---

const OK_TRAILERS = { "grpc-status": "0", "grpc-message": "" };

/** A message with its 5-byte prefix (not compressed). */
function frame(msg: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + msg.length);
  out[0] = 0;
  out.writeUInt32BE(msg.length, 1);
  out.set(msg, 5);
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
function parseTimeout(v: string | string[] | undefined): number | undefined {
  if (v === undefined) return Infinity;
  const m = /^(\d{1,8})([HMSmun])$/.exec(Array.isArray(v) ? (v[0] ?? "") : v);
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
