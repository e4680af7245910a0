/**
 * Reads what `critest -benchmark` (cri-tools v1.26.1) leaves in a result folder of the shared
 * conformance harness ($ANCHORS/results/NAME: data/*.json, report.json, load.txt, specs.tsv) and
 * turns the runtimes' figures into the markdown table of the "critest-benchmark" section.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fmt, median, quantile } from "./lib.ts";

/** The lifecycle data files critest writes (LifecycleBenchmarksResultsSet JSON) and their row labels. */
export const DATA_FILES: { file: string; title: string }[] = [
  { file: "pod_benchmark_data.json", title: "pod lifecycle" },
  { file: "container_benchmark_data.json", title: "container lifecycle" },
  { file: "image_lifecycle_benchmark_data.json", title: "image lifecycle" },
  { file: "image_listing_benchmark_data.json", title: "image listing" },
];

/** One operation's samples in ms, keyed "title/Operation" (e.g. "pod lifecycle/CreatePod"). */
export type Samples = Map<string, number[]>;

/** What one critest benchmark run left behind. */
export interface BenchRun {
  name: string;
  samples: Samples;
  /** The benchmark specs' states from report.json ("passed", "failed", …), by spec text. */
  specs: { text: string; state: string; seconds: number; failure: string }[];
  /** load.txt of run-critest.sh: busy % and load averages before and during the run. */
  load: string[];
}

interface DataSet {
  operationsNames: string[];
  datapoints: { operationsDurationsNs: number[] }[] | null;
}

interface SpecReport {
  LeafNodeType: string;
  LeafNodeText: string;
  ContainerHierarchyTexts: string[] | null;
  State: string;
  RunTime: number;
  Failure?: { Message?: string };
  ReportEntries?: { Name: string; Value?: { AsJSON?: string } }[];
}

/** Reads the result folder `dir` of one benchmark run; missing files give no samples. */
export function readBenchRun(dir: string, name: string): BenchRun {
  const samples: Samples = new Map();
  for (const { file, title } of DATA_FILES) {
    const p = join(dir, "data", file);
    if (!existsSync(p)) continue;
    const d = JSON.parse(readFileSync(p, "utf8")) as DataSet;
    d.operationsNames.forEach((op, k) => {
      const xs = (d.datapoints ?? []).map((x) => x.operationsDurationsNs[k]).filter((x): x is number => typeof x === "number");
      samples.set(
        `${title}/${op}`,
        xs.map((ns) => ns / 1e6),
      );
    });
  }
  const specs: BenchRun["specs"] = [];
  const rp = join(dir, "report.json");
  if (existsSync(rp)) {
    const reports = (JSON.parse(readFileSync(rp, "utf8")) as { SpecReports: SpecReport[] }[])[0]?.SpecReports ?? [];
    for (const r of reports) {
      if (r.LeafNodeType !== "It" || !/benchmark/i.test(r.LeafNodeText)) continue;
      if (r.State === "skipped") continue;
      specs.push({ text: r.LeafNodeText, state: r.State, seconds: r.RunTime / 1e9, failure: (r.Failure?.Message ?? "").split("\n")[0]!.slice(0, 200) });
      // "start a container from scratch": a gmeasure experiment in the report entries, not a data file
      for (const e of r.ReportEntries ?? []) {
        const exp = e.Value?.AsJSON ? (JSON.parse(e.Value.AsJSON) as { Measurements?: { Name: string; Durations?: number[] | null }[] }) : undefined;
        for (const m of exp?.Measurements ?? [])
          if (m.Durations?.length)
            samples.set(
              `pod + container from scratch/${m.Name}`,
              m.Durations.map((ns) => ns / 1e6),
            );
      }
    }
  }
  const lp = join(dir, "load.txt");
  const load = existsSync(lp) ? readFileSync(lp, "utf8").trim().split("\n") : [];
  return { name, samples, specs, load };
}

/** The data files a complete run has written (all four lifecycle files). */
export function runComplete(dir: string): boolean {
  return DATA_FILES.every(({ file }) => existsSync(join(dir, "data", file))) && existsSync(join(dir, "report.json"));
}

/** Pools the samples of several runs of one runtime. */
export function pool(runs: BenchRun[]): Samples {
  const out: Samples = new Map();
  for (const r of runs) for (const [k, xs] of r.samples) out.set(k, [...(out.get(k) ?? []), ...xs]);
  return out;
}

/** Milliseconds with two significant-ish decimals. */
const ms = (x: number) => fmt(x, x < 10 ? 2 : 1);

/**
 * The side-by-side table: per operation n, median, p90 and max for each runtime (ours first), and
 * ours / each peer of the medians and p90s.
 */
export function sideBySide(cols: { label: string; short: string; samples: Samples }[]): string {
  const keys = [...new Set(cols.flatMap((c) => [...c.samples.keys()]))];
  const [ours, ...peers] = cols;
  const head = [
    "benchmark",
    "operation",
    `n (${cols.map((c) => c.short).join(" / ")})`,
    ...cols.flatMap((c) => [`${c.label} median`, `${c.short} p90`, `${c.short} max`]),
    ...peers.flatMap((c) => [`ours / ${c.short} median`, `ours / ${c.short} p90`]),
  ];
  const rows = [
    `| ${head.join(" | ")} |`,
    `|---|---|---|${head
      .slice(3)
      .map(() => "--:")
      .join("|")}|`,
  ];
  const st = (xs: number[]) => (xs.length ? [median(xs), quantile(xs, 0.9), Math.max(...xs)] : [NaN, NaN, NaN]) as [number, number, number];
  for (const k of keys) {
    const [bench, op] = k.split("/") as [string, string];
    const xs = cols.map((c) => c.samples.get(k) ?? []);
    const s = xs.map(st);
    const cells = [
      bench,
      op,
      xs.map((x) => x.length).join(" / "),
      ...s.flatMap((x) => x.map(ms)),
      ...(ours ? s.slice(1).flatMap((p) => [fmt(s[0]![0] / p[0], 2), fmt(s[0]![1] / p[1], 2)]) : []),
    ];
    rows.push(`| ${cells.join(" | ")} |`);
  }
  return rows.join("\n");
}

/** The benchmark specs' outcomes of each run, one line per run. */
export function specLines(runs: BenchRun[]): string {
  return runs
    .map((r) => {
      const s = r.specs.map((x) => `${x.text.replace(/^benchmark about /, "")}: ${x.state} in ${fmt(x.seconds, 1)} s${x.failure ? ` (${x.failure})` : ""}`);
      return `- \`${r.name}\`: ${s.join("; ") || "no report"}`;
    })
    .join("\n");
}

/** Counts of a validation run's specs.tsv by state, and its failed specs with their first failure line. */
export function validationSummary(dir: string): { counts: Record<string, number>; failed: string[] } {
  const p = join(dir, "specs.tsv");
  const counts: Record<string, number> = {};
  const failed: string[] = [];
  if (!existsSync(p)) return { counts, failed };
  for (const line of readFileSync(p, "utf8").split("\n").filter(Boolean)) {
    const [state, , spec, first] = line.split("\t");
    counts[state!] = (counts[state!] ?? 0) + 1;
    if (state !== "passed" && state !== "skipped") failed.push(`${spec} — ${state}: ${(first ?? "").slice(0, 200)}`);
  }
  return { counts, failed };
}
