import { posix } from "node:path";
import type { LinuxContainerResources } from "../../gen/runtime/v1/api_pb.ts";
import { invalid } from "../../errors.ts";
import type { Resources } from "../../oci/spec-types.ts";

/** CRI-O's container_min_memory default: 12 MiB. */
export const DEFAULT_MIN_MEMORY = 12 * 1024 * 1024;

/** Options of containerResources. */
export interface ResourceInput {
  resources?: LinuxContainerResources;
  minMemory: number;
  /** Lowest oom_score_adj the daemon may set; lower requests are raised to it with a warning. */
  minOomScoreAdj: number;
  cgroup: { v2: boolean; swap: boolean; hugetlb: boolean; pids: boolean };
  pidsLimit?: number;
}

/**
 * CRI-O's SpecSetLinuxContainerResources: cpu shares, quota, period and cpuset; a memory limit
 * (invalid-argument below container_min_memory) and swap (= the limit when none is given, so no
 * swap; invalid when lower than the limit; only where swap is accounted); hugepages where hugetlb
 * exists; the unified map on cgroup v2 only; pids; oom_score_adj clamped to what the daemon may set.
 */
export function containerResources(r: ResourceInput): { resources: Resources; oomScoreAdj?: number; warnings: string[] } {
  const warnings: string[] = [];
  const res: Resources = {};
  const c = r.resources;
  if (c) {
    checkRanges(c);
    const cpu: NonNullable<Resources["cpu"]> = {};
    if (c.cpuShares > 0n) cpu.shares = Number(c.cpuShares);
    if (c.cpuQuota !== 0n) cpu.quota = Number(c.cpuQuota);
    if (c.cpuPeriod > 0n) cpu.period = Number(c.cpuPeriod);
    if (c.cpusetCpus) cpu.cpus = c.cpusetCpus;
    if (c.cpusetMems) cpu.mems = c.cpusetMems;
    if (Object.keys(cpu).length > 0) res.cpu = cpu;

    const limit = Number(c.memoryLimitInBytes);
    if (limit !== 0) {
      if (limit > 0 && limit < r.minMemory) throw invalid(`set memory limit ${limit} too low; should be at least ${r.minMemory} bytes`);
      res.memory = { limit };
      let swap = limit;
      const criSwap = Number(c.memorySwapLimitInBytes);
      if (criSwap !== 0) {
        if (criSwap > 0 && criSwap < limit) throw invalid(`memory swap limit (${criSwap}) cannot be lower than memory limit (${limit})`);
        swap = criSwap;
      }
      if (r.cgroup.swap) res.memory.swap = swap;
    }
    if (c.hugepageLimits.length > 0) {
      if (r.cgroup.hugetlb) res.hugepageLimits = c.hugepageLimits.map((h) => ({ pageSize: h.pageSize, limit: Number(h.limit) }));
      else warnings.push("hugepage limits ignored: the hugetlb cgroup controller is not available");
    }
    const unified = Object.entries(c.unified);
    if (unified.length > 0) {
      if (r.cgroup.v2) res.unified = Object.fromEntries(unified);
      else warnings.push("unified cgroup resources ignored: the node does not run cgroup v2");
    }
  }
  if (r.pidsLimit && r.pidsLimit > 0 && r.cgroup.pids) res.pids = { limit: r.pidsLimit };
  let oomScoreAdj: number | undefined;
  if (c) {
    const want = Number(c.oomScoreAdj);
    oomScoreAdj = clampOom(want, r.minOomScoreAdj, warnings);
  }
  return { resources: res, oomScoreAdj, warnings };
}

/**
 * Values no kernel takes are the request's fault (INVALID_ARGUMENT), not the runtime's: found by
 * the CRI fuzzer, where runc's refusal came back INTERNAL. cfs period and quota as the kernel
 * bounds them (1 ms – 1 s; quota -1 is "no limit"), shares ≤ 262144 (cgroup v1's maximum),
 * byte counts within what a JSON number carries exactly (2^53).
 */
function checkRanges(c: NonNullable<ResourceInput["resources"]>): void {
  const MAX = 2n ** 53n;
  const bad = (what: string, v: bigint, expected: string) => invalid(`invalid ${what} ${v}: ${expected}`);
  if (c.cpuShares < 0n || c.cpuShares > 262_144n) throw bad("cpu_shares", c.cpuShares, "expected 0 (unset) to 262144");
  if (c.cpuPeriod !== 0n && (c.cpuPeriod < 1_000n || c.cpuPeriod > 1_000_000n))
    throw bad("cpu_period", c.cpuPeriod, "expected 0 (unset) or 1000 to 1000000 µs");
  if (c.cpuQuota !== 0n && c.cpuQuota !== -1n && (c.cpuQuota < 1_000n || c.cpuQuota > MAX))
    throw bad("cpu_quota", c.cpuQuota, "expected 0 (unset), -1 (no limit) or at least 1000 µs");
  if (c.memoryLimitInBytes < 0n || c.memoryLimitInBytes > MAX)
    throw bad("memory_limit_in_bytes", c.memoryLimitInBytes, "expected 0 (unset) or a positive byte count");
  if (c.memorySwapLimitInBytes < -1n || c.memorySwapLimitInBytes > MAX)
    throw bad("memory_swap_limit_in_bytes", c.memorySwapLimitInBytes, "expected -1 (no limit), 0 (unset) or a byte count");
  for (const h of c.hugepageLimits) if (h.limit > MAX) throw bad(`hugepage limit (${h.pageSize})`, h.limit, "expected a byte count");
}

/** Keeps oom_score_adj within [min, 1000], with a warning when it had to move. */
export function clampOom(want: number, min: number, warnings: string[]): number {
  const lo = Math.max(-1000, min);
  const v = Math.min(1000, Math.max(lo, want));
  if (v !== want) warnings.push(`oom_score_adj ${want} is not allowed for this runtime; using ${v}`);
  return v;
}

/**
 * The cgroupsPath of a container or pod: cgroupfs "/<parent>/crio-<id>" (parent "/crio" by default),
 * systemd "<slice>:crio:<id>" (slice "system.slice" by default).
 */
export function cgroupsPath(manager: "cgroupfs" | "systemd", parent: string, id: string): string {
  if (manager === "systemd") {
    const slice = parent || "system.slice";
    if (!slice.endsWith(".slice")) throw invalid(`cgroup parent "${parent}" is not a systemd slice`);
    return `${posix.basename(slice)}:crio:${id}`;
  }
  return posix.join("/", parent || "/crio", `crio-${id}`);
}
