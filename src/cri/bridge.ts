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

/** RPCs whose success is logged at debug level (they are polled). */
const QUIET = /^(List|Stream|Version|Status|ImageStatus|ContainerStatus|PodSandboxStatus|ContainerStats|PodSandboxStats|ImageFsInfo|ExecSync|RuntimeConfig|GetContainerEvents)/;

/**
 * Builds the grpc-js service definition and implementation for a protobuf-es service: decode,
 * readiness gate, request/response logging at debug level with one request id, errors mapped
 * to gRPC codes through cri/status.ts; `observe` (optional) is told of each call's outcome.
 */
export function bridge<S extends DescService>(svc: S, handlers: Record<string, unknown>, gate: Gate, observe?: CallObserver): { definition: ServiceDefinition; implementation: UntypedServiceImplementation } {
  const definition: Record<string, unknown> = {};
  const implementation: UntypedServiceImplementation = {};
  const started = new WeakMap<CallContext, number>();
  const observed = (ctx: CallContext, e?: RuntimeError) => observe?.(ctx.method, (performance.now() - (started.get(ctx) ?? performance.now())) / 1000, e);
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
      const ctx: CallContext = { signal: callSignal(call), method: m.name, id };
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
        inSpan(spanName, svc.typeName, m.name, call, () => handler(call.request, ctx)).then(
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
        const blocked = gate(m.name);
        if (blocked) return call.destroy(Object.assign(new Error(blocked.message), failed(ctx, blocked)));
        const send = (res: unknown) =>
          new Promise<void>((resolve) => {
            if (call.cancelled || call.destroyed) return resolve();
            const msg = create(m.output, res as never);
            if (call.write(msg)) resolve();
            else call.once("drain", () => resolve());
          });
        inSpan(spanName, svc.typeName, m.name, call, () => handler(call.request, ctx, send)).then(
          () => {
            observed(ctx);
            call.end();
          },
          (e) => {
            const f = failed(ctx, e);
            call.destroy(Object.assign(new Error(f.details), f));
          },
        );
      };
    }
  }
  return { definition: definition as ServiceDefinition, implementation };
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

function callSignal(call: { cancelled: boolean; on(ev: "cancelled", f: () => void): unknown; getDeadline(): Date | number }): AbortSignal {
  const ac = new AbortController();
  if (call.cancelled) ac.abort(new DOMException("the client cancelled the call", "AbortError"));
  call.on("cancelled", () => ac.abort(new DOMException("the client cancelled the call", "AbortError")));
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  if (Number.isFinite(ms) && ms > 0) {
    const left = ms - Date.now();
    const t = setTimeout(() => ac.abort(new DOMException("the call's deadline passed", "TimeoutError")), Math.max(0, left));
    t.unref?.();
  }
  return ac.signal;
}
