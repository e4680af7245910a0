import { defunctProcesses, selfStats } from "../sys/proc-self.ts";
import { Counter, FuncMetric, Gauge, Histogram, Registry, Summary, type Collector } from "./registry.ts";

/**
 * CRI-O's metrics, under CRI-O's names: the collectors of server/metrics (subsystem
 * "container_runtime", so `container_runtime_crio_operations_total`), plus Prometheus' standard
 * process_* series. `metrics_collectors` selects collectors by key, with or without the
 * "container_runtime_" and "crio_" prefixes, as CRI-O accepts them.
 */

/** The collector keys this runtime serves (CRI-O's keys, prefixes stripped), and "process". */
export const COLLECTORS = [
  "operations_total",
  "operations_latency_seconds",
  "operations_latency_seconds_total",
  "operations_errors_total",
  "image_pulls_bytes_total",
  "image_pulls_skipped_bytes_total",
  "image_pulls_failure_total",
  "image_pulls_success_total",
  "image_pulls_layer_size",
  "image_layer_reuse_total",
  "containers_oom_total",
  "containers_oom_count_total",
  "containers_events_dropped_total",
  "processes_defunct",
  "process",
] as const;

/** One collector key. */
export type CollectorKey = (typeof COLLECTORS)[number];

/** The prefix CRI-O's client_golang registration puts before every collector key. */
export const METRIC_PREFIX = "container_runtime_crio_";

/** Splits configured collector names into the known keys and the unknown names (to warn about). */
export function selectCollectors(names: readonly string[]): { keys: Set<CollectorKey>; unknown: string[] } {
  if (names.length === 0) return { keys: new Set(COLLECTORS), unknown: [] };
  const keys = new Set<CollectorKey>();
  const unknown: string[] = [];
  for (const n of names) {
    const k = n.replace(/^container_runtime_/, "").replace(/^crio_/, "");
    if ((COLLECTORS as readonly string[]).includes(k)) keys.add(k as CollectorKey);
    else unknown.push(n);
  }
  return { keys, unknown };
}

/** The size bucket label CRI-O gives a byte count (">1 MiB", ">0 B", …). */
export function sizeBucket(bytes: number): string {
  for (const [limit, name] of SIZE_BUCKETS) if (bytes > limit) return name;
  return ">0 B";
}

/** The runtime's metrics: call the recording methods; render() is the scrape. */
export class CrioMetrics {
  readonly registry = new Registry();
  readonly operations = new Counter(`${METRIC_PREFIX}operations_total`, "Cumulative number of CRI-O operations by operation type.", ["operation"]);
  readonly latency = new Gauge(
    `${METRIC_PREFIX}operations_latency_seconds`,
    "Latency in seconds of individual CRI calls for CRI-O operations. Broken down by operation type.",
    ["operation"],
  );
  readonly latencyTotal = new Summary(
    `${METRIC_PREFIX}operations_latency_seconds_total`,
    "Latency in seconds of CRI-O operations. Broken down by operation type.",
    ["operation"],
  );
  readonly errors = new Counter(`${METRIC_PREFIX}operations_errors_total`, "Cumulative number of CRI-O operation errors by operation type.", ["operation"]);
  readonly pullBytes = new Counter(`${METRIC_PREFIX}image_pulls_bytes_total`, "Bytes transferred by CRI-O image pulls", ["mediatype", "size"]);
  readonly pullSkippedBytes = new Counter(`${METRIC_PREFIX}image_pulls_skipped_bytes_total`, "Bytes skipped by CRI-O image pulls", ["size"]);
  readonly pullFailures = new Counter(`${METRIC_PREFIX}image_pulls_failure_total`, "Cumulative number of CRI-O image pull failures by error.", ["error"]);
  readonly pullSuccesses = new Counter(`${METRIC_PREFIX}image_pulls_success_total`, "Cumulative number of CRI-O image pull successes.");
  readonly layerSize = new Histogram(`${METRIC_PREFIX}image_pulls_layer_size`, "Bytes transferred by CRI-O image pulls per layer", LAYER_SIZE_BUCKETS);
  readonly layerReuse = new Counter(`${METRIC_PREFIX}image_layer_reuse_total`, "Reused (not pulled) local image layer count by name", ["name"]);
  readonly oomTotal = new Counter(`${METRIC_PREFIX}containers_oom_total`, "Amount of containers killed because they ran out of memory (OOM)");
  readonly oomCount = new Counter(
    `${METRIC_PREFIX}containers_oom_count_total`,
    "Amount of containers killed because they ran out of memory (OOM) by their name",
    ["name"],
  );

  /** Registers the selected collectors (all when `collectors` is empty); `eventsDropped` reads GetContainerEvents' drop count. */
  constructor(o: { collectors?: readonly string[]; eventsDropped?: () => number } = {}) {
    const { keys } = selectCollectors(o.collectors ?? []);
    const byKey: Record<Exclude<CollectorKey, "process">, Collector> = {
      operations_total: this.operations,
      operations_latency_seconds: this.latency,
      operations_latency_seconds_total: this.latencyTotal,
      operations_errors_total: this.errors,
      image_pulls_bytes_total: this.pullBytes,
      image_pulls_skipped_bytes_total: this.pullSkippedBytes,
      image_pulls_failure_total: this.pullFailures,
      image_pulls_success_total: this.pullSuccesses,
      image_pulls_layer_size: this.layerSize,
      image_layer_reuse_total: this.layerReuse,
      containers_oom_total: this.oomTotal,
      containers_oom_count_total: this.oomCount,
      containers_events_dropped_total: new FuncMetric(
        `${METRIC_PREFIX}containers_events_dropped_total`,
        "Amount of container events dropped because a GetContainerEvents subscriber fell behind",
        "counter",
        () => o.eventsDropped?.() ?? 0,
      ),
      processes_defunct: new FuncMetric(`${METRIC_PREFIX}processes_defunct`, "Total number of defunct processes in the node", "gauge", () =>
        defunctProcesses(),
      ),
    };
    for (const [k, c] of Object.entries(byKey)) if (keys.has(k as CollectorKey)) this.registry.register(c);
    if (keys.has("process")) for (const c of processCollectors()) this.registry.register(c);
  }

  /** One finished CRI call (`operation` is the RPC name, e.g. "RunPodSandbox"). */
  operation(operation: string, seconds: number, failed: boolean): void {
    this.operations.inc({ operation });
    this.latency.set({ operation }, seconds);
    this.latencyTotal.observe({ operation }, seconds);
    if (failed) this.errors.inc({ operation });
  }

  /** A container ended because the kernel's OOM killer killed it; `name` is its k8s_… name. */
  containerOom(name: string): void {
    this.oomTotal.inc();
    this.oomCount.inc({ name });
  }

  /** Drops a removed container's per-name OOM series, as CRI-O does. */
  containerRemoved(name: string): void {
    this.oomCount.remove({ name });
  }

  /** The exposition text. */
  render(): string {
    return this.registry.render();
  }
}

// --- internal ---

const SIZE_BUCKETS: Array<[number, string]> = [
  [10e9, ">10 GiB"],
  [1e9, ">1 GiB"],
  [500e6, ">500 MiB"],
  [400e6, ">400 MiB"],
  [300e6, ">300 MiB"],
  [200e6, ">200 MiB"],
  [100e6, ">100 MiB"],
  [50e6, ">50 MiB"],
  [10e6, ">10 MiB"],
  [1e6, ">1 MiB"],
  [1e3, ">1 KiB"],
];

const LAYER_SIZE_BUCKETS = [1e3, 1e6, 10e6, 50e6, 100e6, 200e6, 300e6, 400e6, 500e6, 1e9, 10e9];

/** Prometheus' standard process collector, from /proc (read once per scrape per series). */
function processCollectors(): Collector[] {
  let cached: { at: number; s: ReturnType<typeof selfStats> } | undefined;
  const stats = () => {
    if (!cached || Date.now() - cached.at > 100) cached = { at: Date.now(), s: selfStats() };
    return cached.s;
  };
  return [
    new FuncMetric("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", () => stats()?.cpuSeconds),
    new FuncMetric("process_open_fds", "Number of open file descriptors.", "gauge", () => stats()?.openFds),
    new FuncMetric("process_max_fds", "Maximum number of open file descriptors.", "gauge", () => stats()?.maxFds),
    new FuncMetric("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", () => stats()?.virtualBytes),
    new FuncMetric("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", () => stats()?.residentBytes),
    new FuncMetric("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge", () => stats()?.startTimeSeconds),
  ];
}
