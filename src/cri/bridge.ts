import { create, fromBinary, toBinary, toJsonString, type DescMessage, type DescService, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import type { ServerUnaryCall, ServerWritableStream, ServiceDefinition, UntypedServiceImplementation, sendUnaryData } from "@grpc/grpc-js";
import { Metadata } from "@grpc/grpc-js";
import { randomUUID } from "node:crypto";
import { RuntimeError, unimplemented } from "../errors.ts";
import { log, logEnabled } from "../log/index.ts";
import { currentTracer, traceAttrs, traced } from "../log/trace.ts";
import { CODE } from "./status.ts";

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
  ? (req: MessageShape<I>, ctx: CallContext) => Promise<MessageInitShape<O>>
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

/** Told of every finished call (metrics): the RPC name, its duration, and its error if it failed. */
export type CallObserver = (method: string, seconds: number, error?: RuntimeError) => void;

/**
 * RPCs a shutdown answers at once (UNAVAILABLE) instead of waiting for: they change no state of
 * the daemon's (the command of an ExecSync runs on in its container, under its monitor).
 */
const ABANDONED_AT_SHUTDOWN = new Set(["ExecSync"]);

/** RPCs whose success is logged at debug level (they are polled). */
const QUIET = /^(List|Stream|Version|Status|ImageStatus|ContainerStatus|PodSandboxStatus|ContainerStats|PodSandboxStats|ImageFsInfo|ExecSync|RuntimeConfig|GetContainerEvents)/;

/**
 * Builds the grpc-js service definition and implementation for a protobuf-es service: decode,
 * readiness gate, request/response logging at debug level with one request id, errors mapped
 * to gRPC codes through cri/status.ts; `observe` (optional) is told of each call's outcome.
 */
export function bridge<S extends DescService>(svc: S, handlers: Record<string, unknown>, gate: Gate, observe?: CallObserver): { definition: ServiceDefinition; implementation: UntypedServiceImplementation; shutdown(): void } {
  const definition: Record<string, unknown> = {};
  // Daemon shutdown: aborted, so streams end and abandonable calls answer at once.
  const stopping = new AbortController();
  const inFlight = new Map<CallContext, { ac: AbortController; timer?: ReturnType<typeof setTimeout> }>();
  const implementation: UntypedServiceImplementation = {};
  const started = new WeakMap<CallContext, number>();
  const observed = (ctx: CallContext, e?: RuntimeError) => (clearTimeout(inFlight.get(ctx)?.timer), inFlight.delete(ctx), observe?.(ctx.method, (performance.now() - (started.get(ctx) ?? performance.now())) / 1000, e));
  for (const m of svc.methods) {
    const streaming = m.methodKind === "server_streaming";
    if (m.methodKind !== "unary" && !streaming) continue;
    definition[m.localName] = {
      path: `/${svc.typeName}/${m.name}`,
      requestStream: false,
      responseStream: streaming,
      requestSerialize: (msg: never) => Buffer.from(toBinary(m.input, msg)),
      requestDeserialize: (b: Buffer) => fromBinary(m.input, b),
      responseSerialize: (msg: never) => Buffer.from(toBinary(m.output, msg)),
      responseDeserialize: (b: Buffer) => fromBinary(m.output, b),
      originalName: m.localName,
    };
    const handler = (handlers[m.localName] ?? notBuilt) as (req: unknown, ctx: CallContext, send?: (x: unknown) => Promise<void>) => Promise<unknown>;
    const quiet = QUIET.test(m.name);
    const spanName = `${svc.typeName}/${m.name}`;
    const begin = (req: unknown, call: { cancelled: boolean; on(ev: "cancelled", f: () => void): unknown; getDeadline(): Date | number }) => {
      const id = randomUUID();
      const a = callAbort(call);
      if (stopping.signal.aborted) a.ac.abort(stopping.signal.reason);
      const ctx: CallContext = { signal: a.ac.signal, method: m.name, id };
      inFlight.set(ctx, a);
      if (observe) started.set(ctx, performance.now());
      if (logEnabled("debug")) log.debug(`${m.input.name} ${toJsonString(m.input, req as never)}`, { id, name: `/${svc.typeName}/${m.name}` });
      return ctx;
    };
    const failed = (ctx: CallContext, e: unknown) => {
      const r = RuntimeError.from(e);
      observed(ctx, r);
      const line = `${m.name} failed: ${r.message}`;
      if (quiet || r.kind === "not-found") log.debug(line, { id: ctx.id });
      else log.info(line, { id: ctx.id, error_kind: r.kind });
      const md = new Metadata();
      return { code: CODE[r.kind], details: r.message, metadata: md };
    };
    if (!streaming) {
      implementation[m.localName] = (call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => {
        const ctx = begin(call.request, call);
        const blocked = gate(m.name);
        if (blocked) return cb(failed(ctx, blocked), null);
        const run = () => inSpan(spanName, svc.typeName, m.name, call, () => handler(call.request, ctx));
        const answer = ABANDONED_AT_SHUTDOWN.has(m.name) ? Promise.race([run(), aborted(stopping.signal)]) : run();
        answer.then(
          (res) => {
            const msg = create(m.output, res as never);
            if (logEnabled("debug")) log.debug(`${m.output.name} ${toJsonString(m.output, msg as never)}`, { id: ctx.id, name: `/${svc.typeName}/${m.name}` });
            observed(ctx);
            cb(null, msg);
          },
          (e) => cb(failed(ctx, e), null),
        );
      };
    } else {
      implementation[m.localName] = (call: ServerWritableStream<unknown, unknown>) => {
        const ctx = begin(call.request, call);
        const end = streamEnder(call);
        const blocked = gate(m.name);
        if (blocked) return end(failed(ctx, blocked));
        inSpan(spanName, svc.typeName, m.name, call, () => handler(call.request, ctx, streamSender(call, (res) => create(m.output, res as never)))).then(
          () => {
            observed(ctx);
            end();
          },
          (e) => end(failed(ctx, e)),
        );
      };
    }
  }
  return {
    definition: definition as ServiceDefinition,
    implementation,
    shutdown: () => {
      stopping.abort(new RuntimeError("unavailable", "the runtime is shutting down"));
      for (const { ac } of inFlight.values()) ac.abort(stopping.signal.reason);
    },
  };
}

// --- internal ---

/**
 * Runs a call in a span when tracing is on (named and attributed as OpenTelemetry's gRPC
 * instrumentation does, as CRI-O's otelgrpc; continuing the caller's W3C traceparent), recording
 * its gRPC status code. With tracing off it only runs the call.
 */
function inSpan<T>(name: string, service: string, method: string, call: { metadata: Metadata }, run: () => Promise<T>): Promise<T> {
  if (!currentTracer()) return run();
  const traceparent = String(call.metadata.get("traceparent")[0] ?? "") || undefined;
  const attrs = { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method };
  return traced(name, () => run().then(
    (r) => {
      traceAttrs({ "rpc.grpc.status_code": 0 });
      return r;
    },
    (e) => {
      traceAttrs({ "rpc.grpc.status_code": CODE[RuntimeError.from(e).kind] });
      throw e;
    },
  ), { kind: "server", attrs, traceparent });
}

type Status = { code: number; details: string; metadata: Metadata };

/** Rejects with the signal's reason once it aborts. */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

/**
 * Ends a server stream once, with OK or the given status. grpc-js sends a stream's status from
 * its final write: `destroy(err)` would drop it (the client then waits forever), so an error goes
 * through the stream's 'error' event, which records the status and ends the stream. A cancelled
 * call has no one to tell.
 */
function streamEnder(call: ServerWritableStream<unknown, unknown>): (status?: Status) => void {
  let ended = false;
  return (status) => {
    if (ended) return;
    ended = true;
    if (call.cancelled || call.destroyed || call.writableEnded) return;
    if (!status) call.end();
    else call.emit("error", Object.assign(new Error(status.details), status));
  };
}

/**
 * A handler's `send`: resolves when the transport took the message (or when the client is gone,
 * so a handler never waits on a drain that cannot come); the handler learns of a cancellation
 * from ctx.signal.
 */
function streamSender(call: ServerWritableStream<unknown, unknown>, make: (res: unknown) => unknown): (res: unknown) => Promise<void> {
  return (res) =>
    new Promise<void>((resolve) => {
      if (call.cancelled || call.destroyed || call.writableEnded) return resolve();
      if (call.write(make(res))) return resolve();
      const done = () => {
        call.off("drain", done);
        call.off("cancelled", done);
        call.off("close", done);
        resolve();
      };
      call.on("drain", done);
      call.on("cancelled", done);
      call.on("close", done);
    });
}

/** The call's abort: on cancellation, and at its deadline (a timer, cleared when the call ends). */
function callAbort(call: { cancelled: boolean; on(ev: "cancelled", f: () => void): unknown; getDeadline(): Date | number }): { ac: AbortController; timer?: ReturnType<typeof setTimeout> } {
  const ac = new AbortController();
  if (call.cancelled) ac.abort(new DOMException("the client cancelled the call", "AbortError"));
  call.on("cancelled", () => ac.abort(new DOMException("the client cancelled the call", "AbortError")));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  if (Number.isFinite(ms) && ms > 0) {
    const left = ms - Date.now();
    timer = setTimeout(() => ac.abort(new DOMException("the call's deadline passed", "TimeoutError")), Math.max(0, left));
    timer.unref?.();
  }
  return { ac, timer };
}
