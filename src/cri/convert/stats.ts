import type { MessageInitShape } from "@bufbuild/protobuf";
import { ContainerEventType, MetricType } from "../../gen/runtime/v1/api_codec.ts";
import type {
  ContainerEventResponseSchema,
  ContainerStatsSchema,
  MetricDescriptorSchema,
  PodSandboxMetricsSchema,
  PodSandboxStatsSchema,
  PsiStatsSchema,
} from "../../gen/runtime/v1/api_pb.ts";
import type { ContainerEvent, ContainerStatsFilter, PodStatsFilter } from "../../stats/index.ts";
import type { ContainerStatsView, InterfaceCounters, MetricDescriptorView, PodMetricsView, PodStatsView, Psi, CgroupSample } from "../../stats/types.ts";
import { toContainerStatus } from "./container.ts";
import { toPodSandboxStatus } from "./sandbox.ts";
import { toNanos } from "./time.ts";

/** Items per message of the Stream*Stats / StreamPodSandboxMetrics RPCs. */
export const STATS_CHUNK = 100;

/** Items per message of the Stream* list RPCs (StreamPodSandboxes, StreamContainers, StreamImages). */
export const LIST_CHUNK = 500;

/** Sends `items` in chunks of `size` (one empty message when there are none): every Stream* RPC. */
export async function inChunks<T>(items: T[], send: (chunk: T[]) => Promise<void>, size = STATS_CHUNK): Promise<void> {
  for (let i = 0; i < items.length || i === 0; i += size) await send(items.slice(i, i + size));
}

/** ContainerStatsFilter → the domain filter. */
export function containerStatsFilter(
  f: { id: string; podSandboxId: string; labelSelector: Record<string, string> } | undefined,
): ContainerStatsFilter | undefined {
  if (!f) return undefined;
  return { id: f.id || undefined, podSandboxId: f.podSandboxId || undefined, labelSelector: Object.keys(f.labelSelector).length ? f.labelSelector : undefined };
}

/** PodSandboxStatsFilter → the domain filter. */
export function podStatsFilter(f: { id: string; labelSelector: Record<string, string> } | undefined): PodStatsFilter | undefined {
  if (!f) return undefined;
  return { id: f.id || undefined, labelSelector: Object.keys(f.labelSelector).length ? f.labelSelector : undefined };
}

/** ContainerStats message. */
export function toContainerStats(v: ContainerStatsView): MessageInitShape<typeof ContainerStatsSchema> {
  const c = v.container.meta;
  const s = v.sample;
  return {
    attributes: { id: c.id, metadata: c.metadata, labels: c.labels, annotations: c.annotations },
    cpu: cpuOf(s, v.nanoCores),
    memory: memoryOf(s),
    swap: s?.memory
      ? {
          timestamp: toNanos(s.at),
          swapUsageBytes: u64(s.memory.swapUsage ?? 0),
          ...(s.memory.swapLimit !== undefined ? { swapAvailableBytes: u64(s.memory.swapLimit - (s.memory.swapUsage ?? 0)) } : {}),
        }
      : undefined,
    io: s?.io?.psi ? { timestamp: toNanos(s.at), psi: psiOf(s.io.psi) } : undefined,
    writableLayer: v.layer
      ? { timestamp: toNanos(v.layer.at), fsId: { mountpoint: v.layer.mountpoint }, usedBytes: u64(v.layer.bytes), inodesUsed: u64(v.layer.inodes) }
      : undefined,
  };
}

/** PodSandboxStats message (Linux). */
export function toPodSandboxStats(v: PodStatsView): MessageInitShape<typeof PodSandboxStatsSchema> {
  const sb = v.sandbox.meta;
  return {
    attributes: { id: sb.id, metadata: sb.metadata, labels: sb.labels, annotations: sb.annotations },
    linux: {
      cpu: cpuOf(v.sample, v.nanoCores),
      memory: memoryOf(v.sample),
      network: v.network ? networkOf(v.network.at, v.network.interfaces) : undefined,
      process: v.processCount ? { timestamp: toNanos(v.processCount.at), processCount: u64(v.processCount.value) } : undefined,
      containers: v.containers.map(toContainerStats),
      io: v.sample?.io?.psi ? { timestamp: toNanos(v.sample.at), psi: psiOf(v.sample.io.psi) } : undefined,
    },
  };
}

/** MetricDescriptor message. */
export function toMetricDescriptor(d: MetricDescriptorView): MessageInitShape<typeof MetricDescriptorSchema> {
  return { name: d.name, help: d.help, labelKeys: d.labelKeys };
}

/** PodSandboxMetrics message. */
export function toPodSandboxMetrics(m: PodMetricsView): MessageInitShape<typeof PodSandboxMetricsSchema> {
  const metric = (x: PodMetricsView["metrics"][number]) => ({
    name: x.name,
    timestamp: toNanos(x.at),
    metricType: x.type === "counter" ? MetricType.COUNTER : MetricType.GAUGE,
    labelValues: x.labels,
    value: u64(x.value),
  });
  return {
    podSandboxId: m.podSandboxId,
    metrics: m.metrics.map(metric),
    containerMetrics: m.containers.map((c) => ({ containerId: c.containerId, metrics: c.metrics.map(metric) })),
  };
}

/** ContainerEventResponse message, with the pod's status and its containers' statuses at the time. */
export function toContainerEvent(e: ContainerEvent): MessageInitShape<typeof ContainerEventResponseSchema> {
  return {
    containerId: e.containerId,
    containerEventType: EVENT_TYPE[e.kind],
    createdAt: toNanos(e.at),
    podSandboxStatus: e.sandbox ? toPodSandboxStatus(e.sandbox, false).status : undefined,
    containersStatuses: e.containers.map((c) => toContainerStatus(c, false).status!),
  };
}

// --- internal ---

const EVENT_TYPE = {
  created: ContainerEventType.CONTAINER_CREATED_EVENT,
  started: ContainerEventType.CONTAINER_STARTED_EVENT,
  stopped: ContainerEventType.CONTAINER_STOPPED_EVENT,
  deleted: ContainerEventType.CONTAINER_DELETED_EVENT,
} as const;

const u64 = (n: number) => ({ value: BigInt(Math.max(0, Math.trunc(n))) });

function cpuOf(s: CgroupSample | undefined, nanoCores: number | undefined) {
  if (!s?.cpu) return undefined;
  return {
    timestamp: toNanos(s.at),
    usageCoreNanoSeconds: u64(s.cpu.usageNs),
    ...(nanoCores !== undefined ? { usageNanoCores: u64(nanoCores) } : {}),
    ...(s.cpu.psi ? { psi: psiOf(s.cpu.psi) } : {}),
  };
}

function memoryOf(s: CgroupSample | undefined) {
  const m = s?.memory;
  if (!s || !m) return undefined;
  return {
    timestamp: toNanos(s.at),
    workingSetBytes: u64(m.workingSet),
    // Only a limited cgroup has "available" memory (the kubelet's eviction signal).
    ...(m.limit !== undefined ? { availableBytes: u64(m.limit - m.workingSet) } : {}),
    usageBytes: u64(m.usage),
    rssBytes: u64(m.rss),
    pageFaults: u64(m.pageFaults),
    majorPageFaults: u64(m.majorPageFaults),
    ...(m.psi ? { psi: psiOf(m.psi) } : {}),
  };
}

function psiOf(p: Psi): MessageInitShape<typeof PsiStatsSchema> {
  const line = (l: Psi["some"]) => ({ Total: BigInt(Math.trunc(l.totalUs)) * 1000n, Avg10: l.avg10, Avg60: l.avg60, Avg300: l.avg300 });
  return { Some: line(p.some), ...(p.full ? { Full: line(p.full) } : {}) };
}

function networkOf(at: number, ifs: InterfaceCounters[]) {
  const one = (i: InterfaceCounters) => ({
    name: i.name,
    rxBytes: u64(i.rxBytes),
    rxErrors: u64(i.rxErrors),
    txBytes: u64(i.txBytes),
    txErrors: u64(i.txErrors),
  });
  // The kubelet's default interface is eth0; the rest are listed apart.
  const def = ifs.find((i) => i.name === "eth0") ?? ifs[0];
  return { timestamp: toNanos(at), defaultInterface: def ? one(def) : undefined, interfaces: ifs.filter((i) => i !== def).map(one) };
}
