/**
 * A small Prometheus registry: counters, gauges, summaries and histograms with label vectors,
 * rendered in the text exposition format 0.0.4. Written here rather than taken from prom-client,
 * which would bring a dependency tree (and Node's cluster/perf_hooks collectors) into a runtime
 * that needs a dozen series; the format is simple and the tests pin it down.
 */
import { Family } from "./family.ts";
import { escapeHelp, labelText, num } from "./format.ts";

export { num, escapeLabel } from "./format.ts";

/** Label values by label name. */
export type Labels = Record<string, string>;

/** Anything the registry can render. */
export interface Collector {
  readonly name: string;
  /** Appends the family (HELP, TYPE, samples) to `out`; nothing when it has no samples. */
  collect(out: string[]): void;
}

/** The Content-Type of the text exposition format. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A set of collectors rendered together, in registration order. */
export class Registry {
  readonly #collectors: Collector[] = [];

  /** Adds a collector; a second one with the same name is a programming error. */
  register<C extends Collector>(c: C): C {
    if (this.#collectors.some((x) => x.name === c.name)) throw new Error(`metric ${c.name} is registered twice`);
    this.#collectors.push(c);
    return c;
  }

  /** The whole exposition text. */
  render(): string {
    const out: string[] = [];
    for (const c of this.#collectors) c.collect(out);
    return out.length ? out.join("\n") + "\n" : "";
  }
}

/** A monotonically increasing value per label set. */
export class Counter extends Family<{ v: number }> {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, "counter", labelNames, () => ({ v: 0 }));
    if (labelNames.length === 0) this.child({});
  }
  /** Adds `n` (≥ 0) to the series of `labels`. */
  inc(labels: Labels = {}, n = 1): void {
    if (!(n >= 0)) throw new Error(`counter ${this.name}: cannot add ${n}`);
    this.child(labels).v += n;
  }
  /** The current value (0 for an unseen label set). */
  get(labels: Labels = {}): number {
    return this.peek(labels)?.v ?? 0;
  }
  protected samples(s: { v: number }, labels: string, out: string[]): void {
    out.push(`${this.name}${labels} ${num(s.v)}`);
  }
}

/** A value that goes up and down per label set. */
export class Gauge extends Family<{ v: number }> {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, "gauge", labelNames, () => ({ v: 0 }));
    if (labelNames.length === 0) this.child({});
  }
  /** Sets the series of `labels` to `v`. */
  set(labels: Labels, v: number): void {
    this.child(labels).v = v;
  }
  /** The current value, or undefined for an unseen label set. */
  get(labels: Labels = {}): number | undefined {
    return this.peek(labels)?.v;
  }
  protected samples(s: { v: number }, labels: string, out: string[]): void {
    out.push(`${this.name}${labels} ${num(s.v)}`);
  }
}

/** An unlabelled gauge or counter whose value is read at scrape time. */
export class FuncMetric implements Collector {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "gauge" | "counter",
    readonly read: () => number | undefined,
  ) {}
  collect(out: string[]): void {
    const v = this.read();
    if (v === undefined) return;
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`, `${this.name} ${num(v)}`);
  }
}

/**
 * Quantiles over a sliding window (client_golang's Summary keeps 10 minutes): here the exact
 * quantiles of the observations of the last `maxAgeMs`, at most `maxSamples` of them per series,
 * plus the all-time _sum and _count.
 */
export class Summary extends Family<{ sum: number; count: number; window: Array<{ at: number; v: number }> }> {
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly quantiles: readonly number[] = [0.5, 0.9, 0.99],
    readonly maxAgeMs = 10 * 60_000,
    readonly maxSamples = 1024,
    readonly now: () => number = Date.now,
  ) {
    super(name, help, "summary", labelNames, () => ({ sum: 0, count: 0, window: [] }));
  }
  /** Records one observation for `labels`. */
  observe(labels: Labels, v: number): void {
    const s = this.child(labels);
    s.sum += v;
    s.count++;
    s.window.push({ at: this.now(), v });
    if (s.window.length > this.maxSamples) s.window.shift();
  }
  protected samples(s: { sum: number; count: number; window: Array<{ at: number; v: number }> }, labels: string, out: string[], pairs: string[]): void {
    const since = this.now() - this.maxAgeMs;
    while (s.window.length && s.window[0]!.at < since) s.window.shift();
    const sorted = s.window.map((x) => x.v).sort((a, b) => a - b);
    for (const q of this.quantiles) {
      const v = sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]! : NaN;
      out.push(`${this.name}${labelText([...pairs, `quantile="${num(q)}"`])} ${num(v)}`);
    }
    out.push(`${this.name}_sum${labels} ${num(s.sum)}`, `${this.name}_count${labels} ${num(s.count)}`);
  }
}

/** Cumulative buckets (upper bounds, ascending) plus _sum and _count per label set. */
export class Histogram extends Family<{ counts: number[]; sum: number; count: number }> {
  constructor(
    name: string,
    help: string,
    readonly buckets: readonly number[],
    labelNames: readonly string[] = [],
  ) {
    super(name, help, "histogram", labelNames, () => ({ counts: buckets.map(() => 0), sum: 0, count: 0 }));
    if (labelNames.length === 0) this.child({});
  }
  /** Records one observation. */
  observe(labels: Labels, v: number): void {
    const s = this.child(labels);
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) s.counts[i]!++;
    s.sum += v;
    s.count++;
  }
  protected samples(s: { counts: number[]; sum: number; count: number }, labels: string, out: string[], pairs: string[]): void {
    this.buckets.forEach((b, i) => {
      out.push(`${this.name}_bucket${labelText([...pairs, `le="${num(b)}"`])} ${num(s.counts[i]!)}`);
    });
    out.push(`${this.name}_bucket${labelText([...pairs, `le="+Inf"`])} ${num(s.count)}`);
    out.push(`${this.name}_sum${labels} ${num(s.sum)}`, `${this.name}_count${labels} ${num(s.count)}`);
  }
}
