import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { LinuxContainerResourcesSchema } from "../../../../src/gen/runtime/v1/api_pb.ts";
import { cgroupsPath, containerResources, DEFAULT_MIN_MEMORY, type ResourceInput } from "../../../../src/container/spec/resources.ts";
import { containerConfig, expectGolden } from "./fixtures.ts";

const v1 = { v2: false, swap: true, hugetlb: false, pids: true };
const input = (r: object | undefined, o: Partial<ResourceInput> = {}): ResourceInput => ({
  resources: r ? create(LinuxContainerResourcesSchema, r) : undefined,
  minMemory: DEFAULT_MIN_MEMORY,
  minOomScoreAdj: 0,
  cgroup: v1,
  ...o,
});

describe("containerResources", () => {
  test("the fixture container (golden): cpu, memory with swap = limit, oom clamped to the daemon's own", () => {
    const r = containerResources(input(undefined, { resources: containerConfig().linux?.resources, pidsLimit: 1024 }));
    expectGolden("spec-resources", r);
    expect(r.oomScoreAdj).toBe(0);
    expect(r.warnings).toEqual(["oom_score_adj -997 is not allowed for this runtime; using 0"]);
  });

  test("memory below container_min_memory is invalid-argument", () => {
    expect(() => containerResources(input({ memoryLimitInBytes: 4n * 1024n * 1024n }))).toThrow(
      expect.objectContaining({ kind: "invalid-argument", message: "set memory limit 4194304 too low; should be at least 12582912 bytes" }),
    );
  });

  test("swap: explicit, unlimited (-1), below the limit, and not accounted", () => {
    const lim = 64n * 1024n * 1024n;
    expect(containerResources(input({ memoryLimitInBytes: lim, memorySwapLimitInBytes: 2n * lim })).resources.memory).toEqual({
      limit: Number(lim),
      swap: Number(2n * lim),
    });
    expect(containerResources(input({ memoryLimitInBytes: lim, memorySwapLimitInBytes: -1n })).resources.memory).toEqual({ limit: Number(lim), swap: -1 });
    expect(() => containerResources(input({ memoryLimitInBytes: lim, memorySwapLimitInBytes: lim / 2n }))).toThrow(/cannot be lower than memory limit/);
    expect(containerResources(input({ memoryLimitInBytes: lim }, { cgroup: { ...v1, swap: false } })).resources.memory).toEqual({ limit: Number(lim) });
  });

  test("hugepages and unified only where the node has them", () => {
    const r = { hugepageLimits: [{ pageSize: "2MB", limit: 4194304n }], unified: { "memory.high": "100M" } };
    const off = containerResources(input(r));
    expect(off.resources).toEqual({});
    expect(off.warnings).toHaveLength(2);
    const on = containerResources(input(r, { cgroup: { v2: true, swap: true, hugetlb: true, pids: true } }));
    expect(on.resources).toEqual({ hugepageLimits: [{ pageSize: "2MB", limit: 4194304 }], unified: { "memory.high": "100M" } });
  });

  test("oom_score_adj within [min, 1000]; a privileged daemon may go down to -1000", () => {
    expect(containerResources(input({ oomScoreAdj: 1000n })).oomScoreAdj).toBe(1000);
    expect(containerResources(input({ oomScoreAdj: -999n }, { minOomScoreAdj: -1000 })).oomScoreAdj).toBe(-999);
    expect(containerResources(input({ oomScoreAdj: 5000n })).oomScoreAdj).toBe(1000);
  });
});

test("cgroupsPath for both managers", () => {
  expect(cgroupsPath("cgroupfs", "/kubepods/pod1", "abc")).toBe("/kubepods/pod1/crio-abc");
  expect(cgroupsPath("cgroupfs", "", "abc")).toBe("/crio/crio-abc");
  expect(cgroupsPath("systemd", "kubepods-burstable-pod1.slice", "abc")).toBe("kubepods-burstable-pod1.slice:crio:abc");
  expect(cgroupsPath("systemd", "", "abc")).toBe("system.slice:crio:abc");
  expect(() => cgroupsPath("systemd", "/kubepods", "abc")).toThrow(expect.objectContaining({ kind: "invalid-argument" }));
});
