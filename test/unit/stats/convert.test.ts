import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { ContainerEventType, ContainerStatsSchema, MetricType, PodSandboxStatsSchema } from "../../../src/gen/runtime/v1/api_pb.ts";
import type { ContainerView } from "../../../src/container/record.ts";
import type { SandboxView } from "../../../src/sandbox/record.ts";
import {
  LIST_CHUNK,
  containerStatsFilter,
  inChunks,
  toContainerEvent,
  toContainerStats,
  toPodSandboxMetrics,
  toPodSandboxStats,
} from "../../../src/cri/convert/stats.ts";
import type { CgroupSample } from "../../../src/stats/types.ts";

const at = 1_700_000_000_123.456; // ms with µs
const ctr = {
  meta: {
    id: "c1",
    metadata: { name: "web", attempt: 1 },
    labels: { a: "b" },
    annotations: {},
    image: { userRequested: "busybox", id: "sha" },
    mounts: [],
    user: { uid: 0, gid: 0, additionalGids: [] },
  },
  status: { state: "running" },
} as unknown as ContainerView;
const sample = (limit?: number): CgroupSample => ({
  at,
  hugetlb: [],
  cpu: { usageNs: 5e9, periods: 0, throttledPeriods: 0, throttledNs: 0, psi: { some: { avg10: 1, avg60: 2, avg300: 3, totalUs: 7 } } },
  memory: {
    usage: 100,
    workingSet: 60,
    rss: 40,
    cache: 0,
    mappedFile: 0,
    kernel: 0,
    pageFaults: 9,
    majorPageFaults: 1,
    failcnt: 0,
    limit,
    swapUsage: 5,
    swapLimit: limit ? 50 : undefined,
  },
});

describe("stats conversions", () => {
  test("ContainerStats: ns timestamps, rate when known, available bytes only when limited", () => {
    const s = create(
      ContainerStatsSchema,
      toContainerStats({ container: ctr, sample: sample(1000), nanoCores: 123.9, layer: { at, mountpoint: "/m", bytes: 10, inodes: 2 } }),
    );
    expect(s.attributes).toMatchObject({ id: "c1", metadata: { name: "web", attempt: 1 }, labels: { a: "b" } });
    expect(s.cpu!.timestamp).toBe(1_700_000_000_123_456_000n);
    expect([s.cpu!.usageCoreNanoSeconds!.value, s.cpu!.usageNanoCores!.value]).toEqual([5_000_000_000n, 123n]);
    expect(s.cpu!.psi!.Some).toMatchObject({ Total: 7000n, Avg10: 1 });
    expect([s.memory!.workingSetBytes!.value, s.memory!.availableBytes!.value, s.memory!.rssBytes!.value]).toEqual([60n, 940n, 40n]);
    expect([s.swap!.swapUsageBytes!.value, s.swap!.swapAvailableBytes!.value]).toEqual([5n, 45n]);
    expect(s.writableLayer).toMatchObject({ usedBytes: { value: 10n }, inodesUsed: { value: 2n }, fsId: { mountpoint: "/m" } });
    const u = create(ContainerStatsSchema, toContainerStats({ container: ctr, sample: sample() }));
    expect([u.memory!.availableBytes, u.cpu!.usageNanoCores, u.swap!.swapAvailableBytes]).toEqual([undefined, undefined, undefined]);
    const none = create(ContainerStatsSchema, toContainerStats({ container: ctr }));
    expect([none.cpu, none.memory, none.writableLayer]).toEqual([undefined, undefined, undefined]);
  });

  test("PodSandboxStats: eth0 is the default interface, the rest are listed; process count", () => {
    const sb = {
      meta: { id: "p1", metadata: { name: "p", uid: "u", namespace: "ns", attempt: 0 }, labels: {}, annotations: {} },
      status: {},
    } as unknown as SandboxView;
    const ifc = (name: string, rx: number) => ({
      name,
      rxBytes: rx,
      rxPackets: 0,
      rxErrors: 0,
      rxDropped: 0,
      txBytes: 0,
      txPackets: 0,
      txErrors: 0,
      txDropped: 0,
    });
    const s = create(
      PodSandboxStatsSchema,
      toPodSandboxStats({
        sandbox: sb,
        sample: sample(),
        network: { at, interfaces: [ifc("net1", 1), ifc("eth0", 2)] },
        processCount: { at, value: 4 },
        containers: [{ container: ctr }],
      }),
    );
    expect(s.linux!.network!.defaultInterface).toMatchObject({ name: "eth0", rxBytes: { value: 2n } });
    expect(s.linux!.network!.interfaces.map((i) => i.name)).toEqual(["net1"]);
    expect(s.linux!.process!.processCount!.value).toBe(4n);
    expect(s.linux!.containers.map((c) => c.attributes!.id)).toEqual(["c1"]);
  });

  test("metrics, events, filters and chunks", async () => {
    const m = toPodSandboxMetrics({
      podSandboxId: "p1",
      metrics: [{ name: "n", at, type: "counter", labels: ["a"], value: 3 }],
      containers: [{ containerId: "c1", metrics: [{ name: "g", at, type: "gauge", labels: [], value: 1 }] }],
    });
    expect(m.metrics![0]).toMatchObject({ metricType: MetricType.COUNTER, value: { value: 3n }, labelValues: ["a"] });
    expect(m.containerMetrics![0]!.metrics![0]!.metricType).toBe(MetricType.GAUGE);
    const e = toContainerEvent({ containerId: "c1", kind: "stopped", at, containers: [ctr] });
    expect([e.containerEventType, e.podSandboxStatus, e.containersStatuses?.length]).toEqual([ContainerEventType.CONTAINER_STOPPED_EVENT, undefined, 1]);
    expect(containerStatsFilter({ id: "", podSandboxId: "p", labelSelector: {} })).toEqual({ id: undefined, podSandboxId: "p", labelSelector: undefined });
    const sent: number[][] = [];
    await inChunks(
      Array.from({ length: 250 }, (_, i) => i),
      async (c) => void sent.push(c),
    );
    expect(sent.map((c) => c.length)).toEqual([100, 100, 50]);
    sent.length = 0;
    await inChunks([], async (c) => void sent.push(c));
    expect(sent).toEqual([[]]);
    sent.length = 0;
    // the list RPCs' size (StreamPodSandboxes, StreamContainers, StreamImages)
    await inChunks(
      Array.from({ length: 1001 }, (_, i) => i),
      async (c) => void sent.push(c),
      LIST_CHUNK,
    );
    expect(sent.map((c) => c.length)).toEqual([500, 500, 1]);
  });
});
