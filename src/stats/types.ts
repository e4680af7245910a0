import type { ContainerView } from "../container/record.ts";
import type { SandboxView } from "../sandbox/record.ts";

/** Pressure stall information of one resource: totals in microseconds, averages in percent. */
export interface Psi {
  some: PsiLine;
  full?: PsiLine;
}

/** One line of a *.pressure file. */
export interface PsiLine {
  avg10: number;
  avg60: number;
  avg300: number;
  totalUs: number;
}

/** What one read of a cgroup yields; absent parts were not readable (controller missing). */
export interface CgroupSample {
  /** When it was read (ms since the epoch, sub-ms precision). */
  at: number;
  cpu?: {
    usageNs: number;
    userNs?: number;
    systemNs?: number;
    periods: number;
    throttledPeriods: number;
    throttledNs: number;
    psi?: Psi;
  };
  memory?: {
    usage: number;
    workingSet: number;
    rss: number;
    cache: number;
    mappedFile: number;
    kernel: number;
    pageFaults: number;
    majorPageFaults: number;
    maxUsage?: number;
    /** Times usage hit the limit (v1 failcnt, v2 memory.events max). */
    failcnt: number;
    /** Undefined when unlimited. */
    limit?: number;
    reservation?: number;
    swapUsage?: number;
    /** Undefined when unlimited. */
    swapLimit?: number;
    oomKills?: number;
    psi?: Psi;
  };
  pids?: { current: number; limit?: number };
  hugetlb: Array<{ pageSize: string; usage: number; maxUsage?: number }>;
  io?: { psi?: Psi };
  cpuSpec?: { shares?: number; periodUs?: number; quotaUs?: number };
}

/** Process facts of a cgroup (metrics only): counted from cgroup.procs and /proc. */
export interface ProcessSample {
  processes: number;
  threads: number;
  threadsMax?: number;
  fileDescriptors: number;
  sockets: number;
}

/** Usage of a writable layer. */
export interface LayerUsage {
  at: number;
  mountpoint: string;
  bytes: number;
  inodes: number;
}

/** Counters of one network interface (/proc/net/dev). */
export interface InterfaceCounters {
  name: string;
  rxBytes: number;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
}

/** ContainerStats in domain terms: the container and what was read for it. */
export interface ContainerStatsView {
  container: ContainerView;
  /** Absent when the container has no cgroup (not running). */
  sample?: CgroupSample;
  /** CPU rate (nanocores) from the previous sample, when there is one. */
  nanoCores?: number;
  layer?: LayerUsage;
}

/** PodSandboxStats in domain terms. */
export interface PodStatsView {
  sandbox: SandboxView;
  sample?: CgroupSample;
  nanoCores?: number;
  network?: { at: number; interfaces: InterfaceCounters[] };
  processCount?: { at: number; value: number };
  containers: ContainerStatsView[];
}

/** A metric descriptor (ListMetricDescriptors). */
export interface MetricDescriptorView {
  name: string;
  help: string;
  labelKeys: string[];
}

/** One metric value. */
export interface MetricValue {
  name: string;
  at: number;
  type: "counter" | "gauge";
  labels: string[];
  value: number;
}

/** Metrics of one pod (ListPodSandboxMetrics). */
export interface PodMetricsView {
  podSandboxId: string;
  metrics: MetricValue[];
  containers: Array<{ containerId: string; metrics: MetricValue[] }>;
}
