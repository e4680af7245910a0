/**
 * OpenTelemetry tracing (enable_tracing): the OpenTelemetry JavaScript SDK with a batch span
 * processor exporting OTLP over HTTP/protobuf to tracing_endpoint, sampled parent-based at
 * tracing_sampling_rate_per_million (CRI-O's sampler). This module is imported only by
 * startTracing's dynamic import when tracing is on: the SDK is never evaluated otherwise.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context } from "@opentelemetry/api";
import { parseTraceParent, setGlobalErrorHandler } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider } from "@opentelemetry/sdk-trace";
import { messageOf } from "../errors.ts";
import type { Logger } from "../log/index.ts";
import type { SpanAttrs, SpanOptions, Tracer } from "../log/trace.ts";
import { VERSION } from "../version.ts";

/** What the tracer is built from. */
export interface TracingOptions {
  /** The OTLP/HTTP traces URL (see tracingUrl in config/validate.ts). */
  url: string;
  samplingRatePerMillion: number;
  log: Logger;
  /** Export delay of the batch processor (ms); the SDK's default is 5 s. */
  exportDelayMs?: number;
}

/** Builds the OpenTelemetry tracer behind the log/trace.ts seam. */
export function createTracer(o: TracingOptions): Tracer {
  let lastError = "";
  setGlobalErrorHandler((e) => {
    const msg = messageOf(e);
    if (msg !== lastError) o.log.warn(`OpenTelemetry export to ${o.url} failed: ${msg}`);
    lastError = msg;
  });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": "crio", "service.version": VERSION }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(o.samplingRatePerMillion / 1_000_000) }),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: o.url }), scheduledDelayMillis: o.exportDelayMs ?? 1000 })],
  });
  const tracer = provider.getTracer("crio", VERSION);
  const current = new AsyncLocalStorage<Context>();
  const kinds = { server: SpanKind.SERVER, client: SpanKind.CLIENT, internal: SpanKind.INTERNAL };
  return {
    async span<T>(name: string, fn: () => Promise<T>, so: SpanOptions = {}): Promise<T> {
      let parent = current.getStore() ?? ROOT_CONTEXT;
      const remote = so.traceparent ? parseTraceParent(so.traceparent) : null;
      if (remote) parent = trace.setSpanContext(ROOT_CONTEXT, remote);
      const span = tracer.startSpan(name, { kind: kinds[so.kind ?? "internal"], attributes: so.attrs }, parent);
      try {
        return await current.run(trace.setSpan(parent, span), fn);
      } catch (e) {
        span.recordException(e instanceof Error ? e : String(e));
        span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(e) });
        throw e;
      } finally {
        span.end();
      }
    },
    annotate(attrs: SpanAttrs): void {
      const ctx = current.getStore();
      if (ctx) trace.getSpan(ctx)?.setAttributes(attrs);
    },
    async shutdown(): Promise<void> {
      await provider.shutdown().catch((e) => o.log.warn(`OpenTelemetry shutdown: ${messageOf(e)}`));
    },
  };
}
