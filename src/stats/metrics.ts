import type { CgroupSample, InterfaceCounters, LayerUsage, MetricDescriptorView, MetricValue, ProcessSample, Psi } from "./types.ts";

/**
 * cAdvisor-compatible `container_*` metrics for ListMetricDescriptors / ListPodSandboxMetrics,
 * grouped as CRI-O's `included_pod_metrics` names them. Label values always match the
 * descriptor's label keys: id, name, image, then the metric's own keys. Network metrics are
 * pod-level (the pod owns the network namespace); every other group is per container.
 */

/** The metric groups `included_pod_metrics` can name. */
export const METRIC_GROUPS = ["cpu", "memory", "network", "process", "oom", "spec", "disk", "hugetlb", "pressure"] as const;
/** One metric group. */
export type MetricGroup = (typeof METRIC_GROUPS)[number];

/** The groups selected by `included_pod_metrics`: empty or "all" means every group; unknown names are returned apart. */
export function resolveGroups(included: readonly string[]): { groups: Set<MetricGroup>; unknown: string[] } {
  if (included.length === 0 || included.includes("all")) return { groups: new Set(METRIC_GROUPS), unknown: included.filter((n) => n !== "all") };
  const groups = new Set<MetricGroup>();
  const unknown: string[] = [];
  for (const n of included) {
    if ((METRIC_GROUPS as readonly string[]).includes(n)) groups.add(n as MetricGroup);
    else unknown.push(n);
  }
  return { groups, unknown };
}

/** The descriptors of the selected groups (container_last_seen always). */
export function descriptorsFor(groups: Set<MetricGroup>): MetricDescriptorView[] {
  const out = [...(DESCRIPTORS[""] ?? [])];
  for (const g of METRIC_GROUPS) if (groups.has(g)) out.push(...(DESCRIPTORS[g] ?? []));
  return out.map(([name, help, extra]) => ({ name, help, labelKeys: [...BASE_LABELS, ...extra] }));
}

/** What one container's metrics are computed from. */
export interface ContainerMetricInput {
  /** id, name, image. */
  labels: [string, string, string];
  at: number;
  sample?: CgroupSample;
  processes?: ProcessSample;
  layer?: LayerUsage;
  /** The filesystem holding the writable layer (statfs). */
  fs?: { bytes: number; inodes: number; inodesFree: number };
}

/** A container's metrics of the selected groups (network excluded: it is pod-level). */
export function containerMetrics(groups: Set<MetricGroup>, i: ContainerMetricInput): MetricValue[] {
  const out: MetricValue[] = [];
  const put = (name: string, type: MetricValue["type"], value: number | undefined, extra: string[] = []) => {
    if (value === undefined || !Number.isFinite(value)) return;
    out.push({ name, at: i.at, type, labels: [...i.labels, ...extra], value: Math.max(0, Math.trunc(value)) });
  };
  put("container_last_seen", "gauge", i.at / 1000);
  const s = i.sample;
  if (groups.has("cpu") && s?.cpu) {
    put("container_cpu_user_seconds_total", "counter", sec(s.cpu.userNs));
    put("container_cpu_system_seconds_total", "counter", sec(s.cpu.systemNs));
    put("container_cpu_usage_seconds_total", "counter", sec(s.cpu.usageNs), ["total"]);
    put("container_cpu_cfs_periods_total", "counter", s.cpu.periods);
    put("container_cpu_cfs_throttled_periods_total", "counter", s.cpu.throttledPeriods);
    put("container_cpu_cfs_throttled_seconds_total", "counter", sec(s.cpu.throttledNs));
  }
  if (groups.has("memory") && s?.memory) {
    const m = s.memory;
    put("container_memory_cache", "gauge", m.cache);
    put("container_memory_rss", "gauge", m.rss);
    put("container_memory_kernel_usage", "gauge", m.kernel);
    put("container_memory_mapped_file", "gauge", m.mappedFile);
    put("container_memory_swap", "gauge", m.swapUsage ?? 0);
    put("container_memory_failcnt", "counter", m.failcnt);
    put("container_memory_usage_bytes", "gauge", m.usage);
    put("container_memory_max_usage_bytes", "gauge", m.maxUsage ?? m.usage);
    put("container_memory_working_set_bytes", "gauge", m.workingSet);
    for (const scope of ["container", "hierarchy"]) {
      put("container_memory_failures_total", "counter", m.pageFaults, ["pgfault", scope]);
      put("container_memory_failures_total", "counter", m.majorPageFaults, ["pgmajfault", scope]);
    }
  }
  if (groups.has("oom") && s?.memory) put("container_oom_events_total", "counter", s.memory.oomKills ?? 0);
  if (groups.has("process") && i.processes) {
    const p = i.processes;
    put("container_processes", "gauge", p.processes);
    put("container_threads", "gauge", p.threads);
    put("container_threads_max", "gauge", p.threadsMax ?? 0);
    put("container_file_descriptors", "gauge", p.fileDescriptors);
    put("container_sockets", "gauge", p.sockets);
  }
  if (groups.has("spec") && s) {
    put("container_spec_cpu_period", "gauge", s.cpuSpec?.periodUs ?? 0);
    put("container_spec_cpu_shares", "gauge", s.cpuSpec?.shares ?? 0);
    put("container_spec_cpu_quota", "gauge", s.cpuSpec?.quotaUs ?? 0);
    // cAdvisor reports 0 for "unlimited".
    put("container_spec_memory_limit_bytes", "gauge", s.memory?.limit ?? 0);
    put("container_spec_memory_reservation_limit_bytes", "gauge", s.memory?.reservation ?? 0);
    put("container_spec_memory_swap_limit_bytes", "gauge", s.memory?.swapLimit ?? 0);
  }
  if (groups.has("disk") && i.layer) {
    put("container_fs_usage_bytes", "gauge", i.layer.bytes);
    if (i.fs) {
      put("container_fs_limit_bytes", "gauge", i.fs.bytes);
      put("container_fs_inodes_total", "gauge", i.fs.inodes);
      put("container_fs_inodes_free", "gauge", i.fs.inodesFree);
    }
  }
  if (groups.has("hugetlb") && s) {
    for (const h of s.hugetlb) {
      put("container_hugetlb_usage_bytes", "gauge", h.usage, [h.pageSize]);
      put("container_hugetlb_max_usage_bytes", "gauge", h.maxUsage ?? h.usage, [h.pageSize]);
    }
  }
  if (groups.has("pressure") && s) {
    pressure(put, "cpu", s.cpu?.psi);
    pressure(put, "memory", s.memory?.psi);
    pressure(put, "io", s.io?.psi);
  }
  return out;
}

/** A pod's network metrics, one series per interface (labels: pod id, "POD", "", interface). */
export function networkMetrics(podId: string, at: number, interfaces: InterfaceCounters[]): MetricValue[] {
  const out: MetricValue[] = [];
  for (const i of interfaces) {
    const put = (name: string, value: number) =>
      out.push({ name, at, type: "counter", labels: [podId, "POD", "", i.name], value: Math.max(0, Math.trunc(value)) });
    put("container_network_receive_bytes_total", i.rxBytes);
    put("container_network_receive_packets_total", i.rxPackets);
    put("container_network_receive_packets_dropped_total", i.rxDropped);
    put("container_network_receive_errors_total", i.rxErrors);
    put("container_network_transmit_bytes_total", i.txBytes);
    put("container_network_transmit_packets_total", i.txPackets);
    put("container_network_transmit_packets_dropped_total", i.txDropped);
    put("container_network_transmit_errors_total", i.txErrors);
  }
  return out;
}

// --- internal ---

const BASE_LABELS = ["id", "name", "image"];

const sec = (ns: number | undefined) => (ns === undefined ? undefined : ns / 1e9);

function pressure(put: (name: string, type: "counter", v: number | undefined) => void, what: string, psi: Psi | undefined): void {
  if (!psi) return;
  put(`container_pressure_${what}_waiting_seconds_total`, "counter", psi.some.totalUs / 1e6);
  if (psi.full) put(`container_pressure_${what}_stalled_seconds_total`, "counter", psi.full.totalUs / 1e6);
}

type D = [name: string, help: string, extraLabels: string[]];
const DESCRIPTORS: Record<MetricGroup | "", D[]> = {
  "": [["container_last_seen", "Last time a container was seen by the exporter", []]],
  cpu: [
    ["container_cpu_user_seconds_total", "Cumulative user CPU time consumed in seconds.", []],
    ["container_cpu_system_seconds_total", "Cumulative system CPU time consumed in seconds.", []],
    ["container_cpu_usage_seconds_total", "Cumulative CPU time consumed in seconds.", ["cpu"]],
    ["container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", []],
    ["container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", []],
    ["container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", []],
  ],
  memory: [
    ["container_memory_cache", "Number of bytes of page cache memory.", []],
    ["container_memory_rss", "Size of RSS in bytes.", []],
    ["container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", []],
    ["container_memory_mapped_file", "Size of memory mapped files in bytes.", []],
    ["container_memory_swap", "Container swap usage in bytes.", []],
    ["container_memory_failcnt", "Number of memory usage hits limits", []],
    ["container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed", []],
    ["container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes", []],
    ["container_memory_working_set_bytes", "Current working set in bytes.", []],
    ["container_memory_failures_total", "Cumulative count of memory allocation failures.", ["failure_type", "scope"]],
  ],
  network: [
    ["container_network_receive_bytes_total", "Cumulative count of bytes received", ["interface"]],
    ["container_network_receive_packets_total", "Cumulative count of packets received", ["interface"]],
    ["container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving", ["interface"]],
    ["container_network_receive_errors_total", "Cumulative count of errors encountered while receiving", ["interface"]],
    ["container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", ["interface"]],
    ["container_network_transmit_packets_total", "Cumulative count of packets transmitted", ["interface"]],
    ["container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting", ["interface"]],
    ["container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting", ["interface"]],
  ],
  process: [
    ["container_processes", "Number of processes running inside the container.", []],
    ["container_threads", "Number of threads running inside the container", []],
    ["container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero", []],
    ["container_file_descriptors", "Number of open file descriptors for the container.", []],
    ["container_sockets", "Number of open sockets for the container.", []],
  ],
  oom: [["container_oom_events_total", "Count of out of memory events observed for the container", []]],
  spec: [
    ["container_spec_cpu_period", "CPU period of the container.", []],
    ["container_spec_cpu_shares", "CPU share of the container.", []],
    ["container_spec_cpu_quota", "CPU quota of the container.", []],
    ["container_spec_memory_limit_bytes", "Memory limit for the container in bytes.", []],
    ["container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container.", []],
    ["container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", []],
  ],
  disk: [
    ["container_fs_usage_bytes", "Current filesystem usage in bytes.", []],
    ["container_fs_limit_bytes", "Filesystem limit in bytes.", []],
    ["container_fs_inodes_total", "Total number of inodes.", []],
    ["container_fs_inodes_free", "Number of free inodes.", []],
  ],
  hugetlb: [
    ["container_hugetlb_usage_bytes", "Current hugepage usage", ["pagesize"]],
    ["container_hugetlb_max_usage_bytes", "Maximum hugepage usages recorded", ["pagesize"]],
  ],
  pressure: (["cpu", "memory", "io"] as const).flatMap((r): D[] => [
    [`container_pressure_${r}_waiting_seconds_total`, `Total time duration tasks in the container have waited due to ${r} congestion.`, []],
    [`container_pressure_${r}_stalled_seconds_total`, `Total time duration no tasks in the container could make progress due to ${r} congestion.`, []],
  ]),
};
