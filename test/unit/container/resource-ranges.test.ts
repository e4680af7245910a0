import { expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { LinuxContainerResourcesSchema } from "../../../src/gen/runtime/v1/api_pb.ts";
import { containerResources } from "../../../src/container/spec/resources.ts";

// Values no kernel takes are INVALID_ARGUMENT (the CRI fuzzer saw runc's refusals come back INTERNAL).
const input = (r: object) => ({
  resources: create(LinuxContainerResourcesSchema, r as never),
  minMemory: 12 << 20,
  cgroup: { v2: false, swap: true, hugetlb: true, pids: true },
  minOomScoreAdj: -1000,
});

test.each([
  [{ cpuShares: -1n }, "cpu_shares"],
  [{ cpuShares: 300_000n }, "cpu_shares"],
  [{ cpuPeriod: 999n }, "cpu_period"],
  [{ cpuPeriod: -5n }, "cpu_period"],
  [{ cpuPeriod: 2_000_000n }, "cpu_period"],
  [{ cpuQuota: -2n }, "cpu_quota"],
  [{ cpuQuota: 10n }, "cpu_quota"],
  [{ memoryLimitInBytes: -9223372036854775808n }, "memory_limit_in_bytes"],
  [{ memoryLimitInBytes: 2n ** 60n }, "memory_limit_in_bytes"],
  [{ memoryLimitInBytes: 64n << 20n, memorySwapLimitInBytes: -7n }, "memory_swap_limit_in_bytes"],
])("%p is refused as invalid (%s)", (r, what) => {
  let err: unknown;
  try {
    containerResources(input(r) as never);
  } catch (e) {
    err = e;
  }
  expect({ kind: (err as { kind?: string })?.kind, names: String((err as Error)?.message).includes(what) }).toEqual({ kind: "invalid-argument", names: true });
});

test("values within the kernel's bounds pass: quota -1 (no limit), period 1 ms to 1 s, swap -1", () => {
  const r = containerResources(input({ cpuShares: 2n, cpuQuota: -1n, cpuPeriod: 1000n, memoryLimitInBytes: 64n << 20n, memorySwapLimitInBytes: -1n }) as never);
  expect(r.resources.cpu).toEqual({ shares: 2, quota: -1, period: 1000 });
  expect(containerResources(input({ cpuPeriod: 1_000_000n, cpuQuota: 1000n }) as never).resources.cpu).toEqual({ quota: 1000, period: 1_000_000 });
});
