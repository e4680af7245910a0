/**
 * Tracing seam: domain code wraps its main steps in `traced()`; with tracing off (the default)
 * that is one call to the step itself — no OpenTelemetry code is loaded or evaluated. The daemon
 * installs a Tracer (daemon/tracing.ts, imported lazily only when enable_tracing = true).
 */

/** Span attributes. */
export type SpanAttrs = Record<string, string | number | boolean>;

/** Options of a span. */
export interface SpanOptions {
  attrs?: SpanAttrs;
  /** "server" for an incoming CRI call, "client" for a call out (CNI plugin, registry); default internal. */
  kind?: "server" | "client" | "internal";
  /** A W3C traceparent header from the caller: the span continues its trace instead of the current one. */
  traceparent?: string;
}

/** What the daemon installs when tracing is on. */
export interface Tracer {
  /** Runs `fn` in a span that is the child of the current one; the span records a thrown error and ends when `fn` settles. */
  span<T>(name: string, fn: () => Promise<T>, o?: SpanOptions): Promise<T>;
  /** Adds attributes to the current span (none: a no-op). */
  annotate(attrs: SpanAttrs): void;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

let tracer: Tracer | undefined;

/** Installs (or, with undefined, removes) the process's tracer. */
export function setTracer(t: Tracer | undefined): void {
  tracer = t;
}

/** The installed tracer, if any. */
export function currentTracer(): Tracer | undefined {
  return tracer;
}

/** Runs `fn` in a span named `name` when tracing is on; otherwise just runs it. */
export function traced<T>(name: string, fn: () => Promise<T>, o?: SpanOptions): Promise<T> {
  return tracer ? tracer.span(name, fn, o) : fn();
}

/** Adds attributes to the current span, when tracing is on. */
export function traceAttrs(attrs: SpanAttrs): void {
  tracer?.annotate(attrs);
}
