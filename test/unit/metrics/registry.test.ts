import { expect, test } from "bun:test";
import { Counter, FuncMetric, Gauge, Histogram, Registry, Summary } from "../../../src/metrics/index.ts";

test("counters and gauges render HELP, TYPE and one line per label set, escaped", () => {
  const r = new Registry();
  const c = r.register(new Counter("x_total", "Things.\nCounted \\ here", ["op"]));
  const g = r.register(new Gauge("y", "A gauge", ["a", "b"]));
  const plain = r.register(new Counter("z_total", "Unlabelled"));
  c.inc({ op: "Run" });
  c.inc({ op: "Run" }, 2);
  c.inc({ op: 'we"ird\\\n' });
  g.set({ a: "1", b: "2" }, 0.25);
  expect(plain.get()).toBe(0);
  expect(r.render()).toBe(
    [
      "# HELP x_total Things.\\nCounted \\\\ here",
      "# TYPE x_total counter",
      'x_total{op="Run"} 3',
      'x_total{op="we\\"ird\\\\\\n"} 1',
      "# HELP y A gauge",
      "# TYPE y gauge",
      'y{a="1",b="2"} 0.25',
      "# HELP z_total Unlabelled",
      "# TYPE z_total counter",
      "z_total 0",
      "",
    ].join("\n"),
  );
});

test("an empty labelled family renders nothing; a missing label and a negative add are errors", () => {
  const r = new Registry();
  const c = r.register(new Counter("e_total", "Empty", ["name"]));
  expect(r.render()).toBe("");
  expect(() => c.inc({})).toThrow(/label "name" is missing/);
  expect(() => c.inc({ name: "a" }, -1)).toThrow(/cannot add -1/);
  expect(() => r.register(new Counter("e_total", "again"))).toThrow(/registered twice/);
  expect(() => new Counter("bad-name", "x")).toThrow(/invalid metric name/);
});

test("a removed series disappears", () => {
  const r = new Registry();
  const c = r.register(new Counter("oom_total", "OOM", ["name"]));
  c.inc({ name: "a" });
  c.inc({ name: "b" });
  c.remove({ name: "a" });
  expect(r.render()).toContain('oom_total{name="b"} 1');
  expect(r.render()).not.toContain('name="a"');
});

test("a summary reports exact quantiles of its window, and all-time sum and count", () => {
  let now = 1_000_000;
  const r = new Registry();
  const s = r.register(new Summary("lat_seconds", "Latency", ["op"], [0.5, 0.9, 0.99], 60_000, 1024, () => now));
  for (let i = 1; i <= 100; i++) s.observe({ op: "A" }, i / 100);
  const text = r.render();
  expect(text).toContain("# TYPE lat_seconds summary");
  expect(text).toContain('lat_seconds{op="A",quantile="0.5"} 0.5');
  expect(text).toContain('lat_seconds{op="A",quantile="0.9"} 0.9');
  expect(text).toContain('lat_seconds{op="A",quantile="0.99"} 0.99');
  expect(text).toContain('lat_seconds_count{op="A"} 100');
  expect(Number(/lat_seconds_sum\{op="A"\} (\S+)/.exec(text)![1])).toBeCloseTo(50.5, 6);
  now += 61_000; // the window has passed: quantiles are NaN, the totals stay
  const later = r.render();
  expect(later).toContain('lat_seconds{op="A",quantile="0.5"} NaN');
  expect(later).toContain('lat_seconds_count{op="A"} 100');
});

test("a summary keeps at most maxSamples observations in its window", () => {
  const s = new Summary("w", "w", [], [0.5], 60_000, 10);
  for (let i = 0; i < 100; i++) s.observe({}, i);
  const out: string[] = [];
  s.collect(out);
  expect(out).toContain('w{quantile="0.5"} 94'); // the last 10 are 90..99
  expect(out).toContain("w_count 100");
});

test("a histogram renders cumulative buckets, +Inf, sum and count", () => {
  const r = new Registry();
  const h = r.register(new Histogram("size_bytes", "Sizes", [10, 100]));
  for (const v of [5, 10, 50, 500]) h.observe({}, v);
  expect(r.render()).toBe(
    [
      "# HELP size_bytes Sizes",
      "# TYPE size_bytes histogram",
      'size_bytes_bucket{le="10"} 2',
      'size_bytes_bucket{le="100"} 3',
      'size_bytes_bucket{le="+Inf"} 4',
      "size_bytes_sum 565",
      "size_bytes_count 4",
      "",
    ].join("\n"),
  );
});

test("a FuncMetric is read at scrape time and omitted when it has no value", () => {
  let v: number | undefined = 3;
  const r = new Registry();
  r.register(new FuncMetric("f", "F", "gauge", () => v));
  expect(r.render()).toContain("\nf 3\n");
  v = Infinity;
  expect(r.render()).toContain("\nf +Inf\n");
  v = undefined;
  expect(r.render()).toBe("");
});
