import type { DescMessage, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { randomUUID } from "node:crypto";
import { RuntimeError, messageOf, unimplemented } from "../errors.ts";
import { log, logEnabled } from "../log/index.ts";
import { currentTracer, traceAttrs, traced } from "../log/trace.ts";
import { GrpcStatus, Status, type Call, type Route } from "./grpc-server.ts";
import { Encoded } from "./list-cache.ts";
import { CODE } from "./status.ts";
import type { Codec, ServiceCodec } from "../util/protowire.ts";

/** What a handler learns about its call. */
export interface CallContext {
  /** Aborted when the client cancels or the deadline passes. */
  signal: AbortSignal;
  /** e.g. "RunPodSandbox" */
  method: string;
  /** The request id logged with the call. */
  id: string;
}

type Method = { input: DescMessage; output: DescMessage; methodKind: string };
type HandlerOf<M> = M extends { input: infer I extends DescMessage; output: infer O extends DescMessage; methodKind: "unary" }
  ? (req: MessageShape<I>, ctx: CallContext) => Promise<MessageInitShape<O> | Encoded>
  : M extends { input: infer I extends DescMessage; output: infer O extends DescMessage; methodKind: "server_streaming" }
    ? (req: MessageShape<I>, ctx: CallContext, send: (msg: MessageInitShape<O>) => Promise<void>) => Promise<void>
    : never;

/** Every RPC of a service, typed from its generated descriptor; a missing key is a type error. */
export type Handlers<S extends DescService & { method: Record<string, Method> }> = { [K in keyof S["method"]]: HandlerOf<S["method"][K]> };

/** A handler for an RPC not built yet: UNIMPLEMENTED naming the RPC, never a canned success. */
export const notBuilt = async (_req: unknown, ctx: CallContext): Promise<never> => {
  throw unimplemented(ctx.method);
};

/** Gate: while it returns an error, every call except the allowed ones fails with it. */
export type Gate = (method: string) => RuntimeError | undefined;

/** A message codec with its types erased (the handlers' types are checked by `Handlers`). */
type AnyCodec = Codec<unknown, unknown>;

/** Told of every finished call (metrics): the RPC name, its duration, and its error if it failed. */
export type CallObserver = (method: string, seconds: number, error?: RuntimeError) => void;

/**
 * RPCs a shutdown answers at once (UNAVAILABLE) instead of waiting for: they change no state of
 * the daemon's (the command of an ExecSync runs on in its container, under its monitor).
 */
const ABANDONED_AT_SHUTDOWN = new Set(["ExecSync"]);

/** RPCs whose success is logged at debug level (they are polled). */
const QUIET =
  /^(List|Stream|Version|Status|ImageStatus|ContainerStatus|PodSandboxStatus|ContainerStats|PodSandboxStats|ImageFsInfo|ExecSync|RuntimeConfig|GetContainerEvents)/;

/**
 * Builds the routes (by :path) of a service for cri/grpc-server.ts: decode (the generated codec of
 * gen/runtime/v1/api_codec.ts, no reflection), readiness gate, request/response logging at debug
 * level (proto3 JSON) with one request id, errors mapped to gRPC codes through cri/status.ts;
 * `observe` (optional) is told of each call's outcome.
 */
export function bridge(
  svc: ServiceCodec,
  handlers: Record<string, unknown>,
  gate: Gate,
  observe?: CallObserver,
): { routes: Map<string, Route>; shutdown(): void } {
  const routes = new Map<string, Route>();
  // Daemon shutdown: aborted, so streams end and abandonable calls answer at once.
  const stopping = new AbortController();
  const inFlight = new Set<AbortController>();
  for (const m of svc.methods) {
    const streaming = m.kind === "server_streaming";
    const input = m.input as AnyCodec;
    const output = m.output as AnyCodec;
    const handler = (handlers[m.localName] ?? notBuilt) as (req: unknown, ctx: CallContext, send?: (x: unknown) => Promise<void>) => Promise<unknown>;
    const quiet = QUIET.test(m.name);
    const path = `/${svc.typeName}/${m.name}`;
    const spanName = `${svc.typeName}/${m.name}`;
    /** Decodes the request and opens the call's context; the returned `end` closes it, telling `observe`. */
    const begin = (bytes: Uint8Array, call: Call) => {
      const id = randomUUID();
      const started = observe ? performance.now() : 0;
      // the handler's signal: the call's (client cancel, deadline) or the daemon stopping
      const ac = new AbortController();
      const onCall = () => ac.abort(call.signal.reason);
      if (call.signal.aborted) ac.abort(call.signal.reason);
      else call.signal.addEventListener("abort", onCall, { once: true });
      if (stopping.signal.aborted) ac.abort(stopping.signal.reason);
      inFlight.add(ac);
      const ctx: CallContext = { signal: ac.signal, method: m.name, id };
      const end = (e?: RuntimeError) => {
        inFlight.delete(ac);
        call.signal.removeEventListener("abort", onCall);
        observe?.(m.name, (performance.now() - started) / 1000, e);
      };
      let req: unknown;
      try {
        req = input.decode(bytes);
      } catch (e) {
        end(new RuntimeError("internal", `decoding the request: ${messageOf(e)}`));
        throw new GrpcStatus(Status.INTERNAL, `Error deserializing request: ${messageOf(e)}`);
      }
      if (logEnabled("debug")) log.debug(`${input.name} ${JSON.stringify(input.toJson(req))}`, { id, name: path });
      return { req, ctx, end };
    };
    const failed = (ctx: CallContext, end: (e?: RuntimeError) => void, e: unknown): GrpcStatus => {
      const r = RuntimeError.from(e);
      end(r);
      const line = `${m.name} failed: ${r.message}`;
      if (quiet || r.kind === "not-found") log.debug(line, { id: ctx.id });
      else log.info(line, { id: ctx.id, error_kind: r.kind });
      return new GrpcStatus(CODE[r.kind], r.message);
    };
    if (!streaming) {
      const abandon = ABANDONED_AT_SHUTDOWN.has(m.name);
      routes.set(path, {
        kind: "unary",
        handle: async (bytes, call) => {
          const { req, ctx, end } = begin(bytes, call);
          try {
            const blocked = gate(m.name);
            if (blocked) throw blocked;
            const run = () => inSpan(spanName, svc.typeName, m.name, call, () => handler(req, ctx));
            const res = await (abandon ? Promise.race([run(), aborted(stopping.signal)]) : run());
            // a cached List answer (list-cache.ts) is sent as the bytes it already is
            const cached = res instanceof Encoded;
            if (logEnabled("debug"))
              log.debug(`${output.name} ${JSON.stringify(output.toJson(cached ? output.decode(res.bytes) : res))}`, { id: ctx.id, name: path });
            const out = cached ? res.bytes : output.encode(res);
            end();
            return out;
          } catch (e) {
            throw failed(ctx, end, e);
          }
        },
      });
    } else {
      routes.set(path, {
        kind: "server_streaming",
        handle: async (bytes, call, send) => {
          const { req, ctx, end } = begin(bytes, call);
          try {
            const blocked = gate(m.name);
            if (blocked) throw blocked;
            await inSpan(spanName, svc.typeName, m.name, call, () => handler(req, ctx, (res) => send(output.encode(res))));
            end();
          } catch (e) {
            throw failed(ctx, end, e);
          }
        },
      });
    }
  }
  return {
    routes,
    shutdown: () => {
      stopping.abort(new RuntimeError("unavailable", "the runtime is shutting down"));
      for (const ac of inFlight) ac.abort(stopping.signal.reason);
    },
  };
}

// --- internal ---

/**
 * Runs a call in a span when tracing is on (named and attributed as OpenTelemetry's gRPC
 * instrumentation does, as CRI-O's otelgrpc; continuing the caller's W3C traceparent), recording
 * its gRPC status code. With tracing off it only runs the call.
 */
function inSpan<T>(name: string, service: string, method: string, call: Call, run: () => Promise<T>): Promise<T> {
  if (!currentTracer()) return run();
  const traceparent = call.header("traceparent") || undefined;
  const attrs = { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method };
  return traced(
    name,
    () =>
      run().then(
        (r) => {
          traceAttrs({ "rpc.grpc.status_code": 0 });
          return r;
        },
        (e) => {
          traceAttrs({ "rpc.grpc.status_code": CODE[RuntimeError.from(e).kind] });
          throw e;
        },
      ),
    { kind: "server", attrs, traceparent },
  );
}

/** Rejects with the signal's reason once it aborts. */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}
