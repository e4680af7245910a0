import { escapeHelp, escapeLabel, labelText } from "./format.ts";
import type { Collector, Labels } from "./registry.ts";

/** A metric family: one series of state S per label set; subclasses render the samples. */
export abstract class Family<S> implements Collector {
  readonly #series = new Map<string, { labels: string; pairs: string[]; state: S }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: string,
    readonly labelNames: readonly string[],
    readonly init: () => S,
  ) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`invalid metric name ${name}`);
  }
  /** The state of `labels`' series, created on first use; every label name must be given. */
  protected child(labels: Labels): S {
    const values = this.labelNames.map((n) => {
      const v = labels[n];
      if (v === undefined) throw new Error(`metric ${this.name}: label "${n}" is missing`);
      return v;
    });
    const key = JSON.stringify(values);
    let s = this.#series.get(key);
    if (!s) {
      const pairs = this.labelNames.map((n, i) => `${n}="${escapeLabel(values[i]!)}"`);
      s = { labels: labelText(pairs), pairs, state: this.init() };
      this.#series.set(key, s);
    }
    return s.state;
  }
  protected peek(labels: Labels): S | undefined {
    return this.#series.get(JSON.stringify(this.labelNames.map((n) => labels[n] ?? "")))?.state;
  }
  /** Forgets the series of `labels` (CRI-O drops a removed container's OOM series). */
  remove(labels: Labels): void {
    this.#series.delete(JSON.stringify(this.labelNames.map((n) => labels[n] ?? "")));
  }
  /** Appends HELP, TYPE and every series; nothing when there is no series. */
  collect(out: string[]): void {
    if (this.#series.size === 0) return;
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
    for (const s of this.#series.values()) this.samples(s.state, s.labels, out, s.pairs);
  }
  protected abstract samples(state: S, labels: string, out: string[], pairs: string[]): void;
}
