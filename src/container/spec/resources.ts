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
    const cpu: NonNullable<Resources["cpu"]> = {};
    if (c.cpuShares > 0n) cpu.shares = Number(c.cpuShares);
    if (c.cpuQuota !== 0n) cpu.quota = Number(c.cpuQuota);
    if (c.cpuPeriod > 0n) cpu.period = Number(c.cpuPeriod);
    if (c.cpusetCpus) cpu.cpus = c.cpusetCpus;
    if (c.cpusetMems) cpu.mems = c.cpusetMems;
    if (Object.keys(cpu).length > 0) res.cpu = cpu;

    const limit = Number(c.memoryLimitInBytes);
    if (limit !== 0) {
      if (limit > 0 && limit < r.minMemory)
        throw invalid(`set memory limit ${limit} too low; should be at least ${r.minMemory} bytes`);
      res.memory = { limit };
      let swap = limit;
      const criSwap = Number(c.memorySwapLimitInBytes);
      if (criSwap !== 0) {
        if (criSwap > 0 && criSwap < limit)
          throw invalid(`memory swap limit (${criSwap}) cannot be lower than memory limit (${limit})`);
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
