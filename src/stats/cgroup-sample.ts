import { closeSync, openSync, readdirSync, readSync } from "node:fs";
import { join } from "node:path";
import type { CgroupDirs } from "./cgroup-dirs.ts";
import type { CgroupSample, Psi, PsiLine } from "./types.ts";

/**
 * Reads a cgroup's CPU, memory, pids, hugetlb and pressure statistics, cgroup v1 or v2, the way
 * runc's libcontainer and cAdvisor interpret them (working set = usage − inactive file pages).
 * Without `detail` only what CRI stats report is read (about half the files); metrics need the
 * rest (throttling, limits and shares, kernel memory, peak, failcnt, OOM kills).
 * Reads are synchronous: cgroupfs files are generated in memory and never block on a disk.
 * Undefined when the cgroup does not exist (the container is gone).
 */
export function readSample(dirs: CgroupDirs, o: { detail?: boolean; hugetlb?: boolean; now?: () => number } = {}): CgroupSample | undefined {
  const at = (o.now ?? preciseNow)();
  const s = dirs.mode === "v2" ? readV2(dirs, at, !!o.detail, !!o.hugetlb) : readV1(dirs, at, !!o.detail, !!o.hugetlb);
  if (!s.cpu && !s.memory && !s.pids) return undefined;
  return s;
}

/** Adds samples (a pod without a cgroup of its own: the sum of its containers). */
export function sumSamples(samples: CgroupSample[], at: number): CgroupSample | undefined {
  if (samples.length === 0) return undefined;
  const out: CgroupSample = { at, hugetlb: [] };
  const add = (a: number | undefined, b: number | undefined) => (a === undefined && b === undefined ? undefined : (a ?? 0) + (b ?? 0));
  for (const s of samples) {
    if (s.cpu) {
      const c = (out.cpu ??= { usageNs: 0, periods: 0, throttledPeriods: 0, throttledNs: 0 });
      c.usageNs += s.cpu.usageNs;
      c.userNs = add(c.userNs, s.cpu.userNs);
      c.systemNs = add(c.systemNs, s.cpu.systemNs);
      c.periods += s.cpu.periods;
      c.throttledPeriods += s.cpu.throttledPeriods;
      c.throttledNs += s.cpu.throttledNs;
    }
    if (s.memory) {
      const m = (out.memory ??= { usage: 0, workingSet: 0, rss: 0, cache: 0, mappedFile: 0, kernel: 0, pageFaults: 0, majorPageFaults: 0, failcnt: 0 });
      for (const k of ["usage", "workingSet", "rss", "cache", "mappedFile", "kernel", "pageFaults", "majorPageFaults", "failcnt"] as const) m[k] += s.memory[k];
      m.swapUsage = add(m.swapUsage, s.memory.swapUsage);
      m.oomKills = add(m.oomKills, s.memory.oomKills);
    }
    if (s.pids) {
      const p = (out.pids ??= { current: 0 });
      p.current += s.pids.current;
    }
  }
  return out;
}

/** Parses a *.pressure file ("some avg10=… avg60=… avg300=… total=…", then "full …"). */
export function parsePsi(text: string | undefined): Psi | undefined {
  if (!text) return undefined;
  let some: PsiLine | undefined;
  let full: PsiLine | undefined;
  for (const line of text.split("\n")) {
    const [kind, ...fields] = line.trim().split(/\s+/);
    if (kind !== "some" && kind !== "full") continue;
    const v: Record<string, number> = {};
    for (const f of fields) {
      const [k, n] = f.split("=");
      if (k && n !== undefined) v[k] = Number(n);
    }
    const l: PsiLine = { avg10: v.avg10 ?? 0, avg60: v.avg60 ?? 0, avg300: v.avg300 ?? 0, totalUs: v.total ?? 0 };
    if (kind === "some") some = l;
    else full = l;
  }
  return some ? { some, ...(full ? { full } : {}) } : undefined;
}

/** Parses "key value" lines (memory.stat, cpu.stat, memory.events) into numbers. */
export function parseKeyValues(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (!text) return out;
  for (const line of text.split("\n")) {
    const i = line.indexOf(" ");
    if (i > 0) out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** Wall-clock milliseconds with sub-millisecond precision. */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}

// --- internal ---

/** v1 limits at or above this are "unlimited" (the kernel reports PAGE_COUNTER_MAX rounded to pages). */
const V1_UNLIMITED = 2 ** 60;

/** One buffer for every read: cgroup files are small (memory.stat, the largest, ~1.5 kB). */
const buf = Buffer.allocUnsafe(16 * 1024);

/**
 * A cgroup file's text, undefined when it cannot be read. One read(2) takes the whole of a kernfs
 * file that fits the buffer: open, read, close (readFileSync also reads once more to see the end).
 */
function read(dir: string | undefined, file: string): string | undefined {
  if (!dir) return undefined;
  let fd: number;
  try {
    fd = openSync(join(dir, file), "r");
  } catch {
    return undefined;
  }
  try {
    let n = readSync(fd, buf, 0, buf.length, null);
    if (n < buf.length) return buf.toString("latin1", 0, n);
    const parts = [Buffer.from(buf.subarray(0, n))];
    while ((n = readSync(fd, buf, 0, buf.length, null)) > 0) parts.push(Buffer.from(buf.subarray(0, n)));
    return Buffer.concat(parts).toString("latin1");
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

function num(dir: string | undefined, file: string): number | undefined {
  const t = read(dir, file)?.trim();
  if (t === undefined || t === "") return undefined;
  if (t === "max") return Infinity;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

const limited = (n: number | undefined, cap: number) => (n === undefined || !Number.isFinite(n) || n >= cap ? undefined : n);

function readV1(d: CgroupDirs, at: number, detail: boolean, hugetlb: boolean): CgroupSample {
  const s: CgroupSample = { at, hugetlb: [] };
  const usageNs = num(d.cpuacct, "cpuacct.usage");
  if (usageNs !== undefined) {
    let userNs = detail ? num(d.cpuacct, "cpuacct.usage_user") : undefined;
    let systemNs = detail ? num(d.cpuacct, "cpuacct.usage_sys") : undefined;
    if (detail && (userNs === undefined || systemNs === undefined)) {
      // cpuacct.stat is in USER_HZ (100 per second on every Linux architecture).
      const st = parseKeyValues(read(d.cpuacct, "cpuacct.stat"));
      userNs = (st.get("user") ?? 0) * 10_000_000;
      systemNs = (st.get("system") ?? 0) * 10_000_000;
    }
    const st = parseKeyValues(detail ? read(d.cpu, "cpu.stat") : undefined);
    s.cpu = {
      usageNs,
      userNs,
      systemNs,
      periods: st.get("nr_periods") ?? 0,
      throttledPeriods: st.get("nr_throttled") ?? 0,
      throttledNs: st.get("throttled_time") ?? 0,
      psi: parsePsi(read(d.unified, "cpu.pressure")),
    };
    if (detail) {
      const quota = num(d.cpu, "cpu.cfs_quota_us");
      s.cpuSpec = {
        shares: num(d.cpu, "cpu.shares"),
        periodUs: num(d.cpu, "cpu.cfs_period_us"),
        quotaUs: quota !== undefined && quota >= 0 ? quota : undefined,
      };
    }
  }
  const usage = num(d.memory, "memory.usage_in_bytes");
  if (usage !== undefined) {
    const st = parseKeyValues(read(d.memory, "memory.stat"));
    // With use_hierarchy (always on since 5.x) the total_* keys include child cgroups.
    const k = (name: string) => st.get(`total_${name}`) ?? st.get(name) ?? 0;
    const inactiveFile = k("inactive_file");
    const limit = limited(num(d.memory, "memory.limit_in_bytes"), V1_UNLIMITED);
    const memsw = num(d.memory, "memory.memsw.usage_in_bytes");
    const memswLimit = limited(num(d.memory, "memory.memsw.limit_in_bytes"), V1_UNLIMITED);
    s.memory = {
      usage,
      workingSet: Math.max(0, usage - inactiveFile),
      rss: k("rss"),
      cache: k("cache"),
      mappedFile: k("mapped_file"),
      kernel: (detail ? num(d.memory, "memory.kmem.usage_in_bytes") : undefined) ?? 0,
      pageFaults: k("pgfault"),
      majorPageFaults: k("pgmajfault"),
      maxUsage: detail ? num(d.memory, "memory.max_usage_in_bytes") : undefined,
      failcnt: (detail ? num(d.memory, "memory.failcnt") : undefined) ?? 0,
      limit,
      reservation: detail ? limited(num(d.memory, "memory.soft_limit_in_bytes"), V1_UNLIMITED) : undefined,
      swapUsage: memsw !== undefined ? Math.max(0, memsw - usage) : undefined,
      swapLimit: memswLimit !== undefined && limit !== undefined ? Math.max(0, memswLimit - limit) : undefined,
      oomKills: detail ? parseKeyValues(read(d.memory, "memory.oom_control")).get("oom_kill") : undefined,
      psi: parsePsi(read(d.unified, "memory.pressure")),
    };
  }
  const pids = num(d.pids, "pids.current");
  if (pids !== undefined) s.pids = { current: pids, limit: detail ? limited(num(d.pids, "pids.max"), Infinity) : undefined };
  const ioPsi = parsePsi(read(d.unified, "io.pressure"));
  if (ioPsi) s.io = { psi: ioPsi };
  if (hugetlb) s.hugetlb = d.hugetlb ? readHugetlb(d.hugetlb, "usage_in_bytes", "max_usage_in_bytes") : d.unified ? readHugetlb(d.unified, "current") : [];
  return s;
}

function readV2(d: CgroupDirs, at: number, detail: boolean, hugetlb: boolean): CgroupSample {
  const s: CgroupSample = { at, hugetlb: [] };
  const dir = d.unified;
  const cpu = parseKeyValues(read(dir, "cpu.stat"));
  const usageUs = cpu.get("usage_usec");
  if (usageUs !== undefined) {
    s.cpu = {
      usageNs: usageUs * 1000,
      userNs: (cpu.get("user_usec") ?? 0) * 1000,
      systemNs: (cpu.get("system_usec") ?? 0) * 1000,
      periods: cpu.get("nr_periods") ?? 0,
      throttledPeriods: cpu.get("nr_throttled") ?? 0,
      throttledNs: (cpu.get("throttled_usec") ?? 0) * 1000,
      psi: parsePsi(read(dir, "cpu.pressure")),
    };
    if (detail) {
      const [quota, period] = (read(dir, "cpu.max")?.trim() ?? "").split(/\s+/);
      const weight = num(dir, "cpu.weight");
      s.cpuSpec = {
        // cpu.weight 1..10000 ↔ cpu.shares 2..262144 (the conversion runc and cAdvisor use).
        shares: weight !== undefined ? Math.round(2 + ((weight - 1) * 262142) / 9999) : undefined,
        periodUs: period ? Number(period) : undefined,
        quotaUs: quota && quota !== "max" ? Number(quota) : undefined,
      };
    }
  }
  const usage = num(dir, "memory.current");
  if (usage !== undefined) {
    const st = parseKeyValues(read(dir, "memory.stat"));
    const ev = parseKeyValues(detail ? read(dir, "memory.events") : undefined);
    const kernel = st.get("kernel") ?? (st.get("kernel_stack") ?? 0) + (st.get("slab") ?? 0) + (st.get("sock") ?? 0) + (st.get("percpu") ?? 0);
    s.memory = {
      usage,
      workingSet: Math.max(0, usage - (st.get("inactive_file") ?? 0)),
      rss: st.get("anon") ?? 0,
      cache: st.get("file") ?? 0,
      mappedFile: st.get("file_mapped") ?? 0,
      kernel,
      pageFaults: st.get("pgfault") ?? 0,
      majorPageFaults: st.get("pgmajfault") ?? 0,
      maxUsage: detail ? num(dir, "memory.peak") : undefined,
      failcnt: ev.get("max") ?? 0,
      limit: limited(num(dir, "memory.max"), Infinity),
      reservation: detail ? limited(num(dir, "memory.low"), Infinity) || undefined : undefined,
      swapUsage: num(dir, "memory.swap.current"),
      swapLimit: limited(num(dir, "memory.swap.max"), Infinity),
      oomKills: ev.get("oom_kill"),
      psi: parsePsi(read(dir, "memory.pressure")),
    };
  }
  const pids = num(dir, "pids.current");
  if (pids !== undefined) s.pids = { current: pids, limit: detail ? limited(num(dir, "pids.max"), Infinity) : undefined };
  const ioPsi = parsePsi(read(dir, "io.pressure"));
  if (ioPsi) s.io = { psi: ioPsi };
  if (hugetlb && dir) s.hugetlb = readHugetlb(dir, "current");
  return s;
}

function readHugetlb(dir: string, usageFile: string, maxFile?: string): CgroupSample["hugetlb"] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: CgroupSample["hugetlb"] = [];
  for (const n of names) {
    const m = /^hugetlb\.([^.]+)\.(.+)$/.exec(n);
    if (!m || m[2] !== usageFile) continue;
    const pageSize = m[1]!;
    const usage = num(dir, n);
    if (usage === undefined) continue;
    out.push({ pageSize, usage, maxUsage: maxFile ? num(dir, `hugetlb.${pageSize}.${maxFile}`) : undefined });
  }
  return out.sort((a, b) => a.pageSize.localeCompare(b.pageSize));
}
