import { readdirSync } from "node:fs";
import { readOnce } from "../sys/kept-files.ts";
import type { CgroupDirs } from "./cgroup-dirs.ts";
import type { CgroupSample, Psi, PsiLine } from "./types.ts";

/** Reads a cgroup file's whole text by path; undefined when it is absent or unreadable. */
export type FileReader = (path: string) => string | undefined;

/** What readSample reads beyond the CRI basics (CPU usage, memory usage/stat/limit, pressure). */
export interface SampleOptions {
  /** Metrics: throttling, limits and shares, kernel memory, peak, failcnt, OOM kills, pids.max. */
  detail?: boolean;
  hugetlb?: boolean;
  /** Swap usage and limit (ContainerStats reports them; PodSandboxStats has no swap). Default true. */
  swap?: boolean;
  /** pids.current (a pod's process count, or a container summed into one). Default true. */
  pids?: boolean;
  now?: () => number;
  /** How files are read (default: open, read, close). */
  read?: FileReader;
}

/**
 * Reads a cgroup's CPU, memory, pids, hugetlb and pressure statistics, cgroup v1 or v2, the way
 * runc's libcontainer and cAdvisor interpret them (working set = usage − inactive file pages).
 * Each file is read once. Without `detail` only what CRI stats report is read (about half the
 * files); metrics need the rest (throttling, limits and shares, kernel memory, peak, failcnt,
 * OOM kills); `swap: false` and `pids: false` leave out what the caller does not report.
 * Reads are synchronous: cgroupfs files are generated in memory and never block on a disk.
 * Undefined when the cgroup does not exist (the container is gone).
 */
export function readSample(dirs: CgroupDirs, o: SampleOptions = {}): CgroupSample | undefined {
  const at = (o.now ?? preciseNow)();
  const w: Want = { detail: !!o.detail, hugetlb: !!o.hugetlb, swap: o.swap ?? true, pids: (o.pids ?? true) || !!o.detail, read: o.read ?? readOnce };
  const s = dirs.mode === "v2" ? readV2(dirs, at, w) : readV1(dirs, at, w);
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
  for (let i = 0; i < text.length; ) {
    let end = text.indexOf("\n", i);
    if (end < 0) end = text.length;
    const kind = text.startsWith("some ", i) ? "some" : text.startsWith("full ", i) ? "full" : undefined;
    if (kind) {
      const l: PsiLine = {
        avg10: psiField(text, i, end, " avg10="),
        avg60: psiField(text, i, end, " avg60="),
        avg300: psiField(text, i, end, " avg300="),
        totalUs: psiField(text, i, end, " total="),
      };
      if (kind === "some") some = l;
      else full = l;
    }
    i = end + 1;
  }
  return some ? { some, ...(full ? { full } : {}) } : undefined;
}

/** Parses "key value" lines (memory.stat, cpu.stat, memory.events) into numbers; only the keys of `only` when given. */
export function parseKeyValues(text: string | undefined, only?: ReadonlySet<string>): Map<string, number> {
  const out = new Map<string, number>();
  if (!text) return out;
  for (let i = 0; i < text.length; ) {
    let end = text.indexOf("\n", i);
    if (end < 0) end = text.length;
    const sp = text.indexOf(" ", i);
    if (sp > i && sp < end) {
      const key = text.slice(i, sp);
      if (!only || only.has(key)) out.set(key, Number(text.slice(sp + 1, end)));
    }
    i = end + 1;
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

interface Want {
  detail: boolean;
  hugetlb: boolean;
  swap: boolean;
  pids: boolean;
  read: FileReader;
}

/** The memory.stat keys CRI stats use (v1: hierarchical total_* first, then the cgroup's own). */
const V1_MEM_KEYS = new Set(["inactive_file", "rss", "cache", "mapped_file", "pgfault", "pgmajfault"].flatMap((k) => [k, `total_${k}`]));
const V2_MEM_KEYS = new Set(["inactive_file", "anon", "file", "file_mapped", "kernel", "kernel_stack", "slab", "sock", "percpu", "pgfault", "pgmajfault"]);

/** A cgroup file's text; undefined when the directory is unknown or the file cannot be read. */
function read(w: Want, dir: string | undefined, file: string): string | undefined {
  return dir ? w.read(`${dir}/${file}`) : undefined;
}

function num(w: Want, dir: string | undefined, file: string): number | undefined {
  const t = read(w, dir, file)?.trim();
  if (t === undefined || t === "") return undefined;
  if (t === "max") return Infinity;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

const limited = (n: number | undefined, cap: number) => (n === undefined || !Number.isFinite(n) || n >= cap ? undefined : n);

function readV1(d: CgroupDirs, at: number, w: Want): CgroupSample {
  const { detail } = w;
  const s: CgroupSample = { at, hugetlb: [] };
  const usageNs = num(w, d.cpuacct, "cpuacct.usage");
  if (usageNs !== undefined) {
    let userNs = detail ? num(w, d.cpuacct, "cpuacct.usage_user") : undefined;
    let systemNs = detail ? num(w, d.cpuacct, "cpuacct.usage_sys") : undefined;
    if (detail && (userNs === undefined || systemNs === undefined)) {
      // cpuacct.stat is in USER_HZ (100 per second on every Linux architecture).
      const st = parseKeyValues(read(w, d.cpuacct, "cpuacct.stat"));
      userNs = (st.get("user") ?? 0) * 10_000_000;
      systemNs = (st.get("system") ?? 0) * 10_000_000;
    }
    const st = parseKeyValues(detail ? read(w, d.cpu, "cpu.stat") : undefined);
    s.cpu = {
      usageNs,
      userNs,
      systemNs,
      periods: st.get("nr_periods") ?? 0,
      throttledPeriods: st.get("nr_throttled") ?? 0,
      throttledNs: st.get("throttled_time") ?? 0,
      psi: parsePsi(read(w, d.unified, "cpu.pressure")),
    };
    if (detail) {
      const quota = num(w, d.cpu, "cpu.cfs_quota_us");
      s.cpuSpec = {
        shares: num(w, d.cpu, "cpu.shares"),
        periodUs: num(w, d.cpu, "cpu.cfs_period_us"),
        quotaUs: quota !== undefined && quota >= 0 ? quota : undefined,
      };
    }
  }
  const usage = num(w, d.memory, "memory.usage_in_bytes");
  if (usage !== undefined) {
    const st = parseKeyValues(read(w, d.memory, "memory.stat"), detail ? undefined : V1_MEM_KEYS);
    // With use_hierarchy (always on since 5.x) the total_* keys include child cgroups.
    const k = (name: string) => st.get(`total_${name}`) ?? st.get(name) ?? 0;
    const inactiveFile = k("inactive_file");
    const limit = limited(num(w, d.memory, "memory.limit_in_bytes"), V1_UNLIMITED);
    const memsw = w.swap ? num(w, d.memory, "memory.memsw.usage_in_bytes") : undefined;
    const memswLimit = w.swap ? limited(num(w, d.memory, "memory.memsw.limit_in_bytes"), V1_UNLIMITED) : undefined;
    s.memory = {
      usage,
      workingSet: Math.max(0, usage - inactiveFile),
      rss: k("rss"),
      cache: k("cache"),
      mappedFile: k("mapped_file"),
      kernel: (detail ? num(w, d.memory, "memory.kmem.usage_in_bytes") : undefined) ?? 0,
      pageFaults: k("pgfault"),
      majorPageFaults: k("pgmajfault"),
      maxUsage: detail ? num(w, d.memory, "memory.max_usage_in_bytes") : undefined,
      failcnt: (detail ? num(w, d.memory, "memory.failcnt") : undefined) ?? 0,
      limit,
      reservation: detail ? limited(num(w, d.memory, "memory.soft_limit_in_bytes"), V1_UNLIMITED) : undefined,
      swapUsage: memsw !== undefined ? Math.max(0, memsw - usage) : undefined,
      swapLimit: memswLimit !== undefined && limit !== undefined ? Math.max(0, memswLimit - limit) : undefined,
      oomKills: detail ? parseKeyValues(read(w, d.memory, "memory.oom_control")).get("oom_kill") : undefined,
      psi: parsePsi(read(w, d.unified, "memory.pressure")),
    };
  }
  const pids = w.pids ? num(w, d.pids, "pids.current") : undefined;
  if (pids !== undefined) s.pids = { current: pids, limit: detail ? limited(num(w, d.pids, "pids.max"), Infinity) : undefined };
  const ioPsi = parsePsi(read(w, d.unified, "io.pressure"));
  if (ioPsi) s.io = { psi: ioPsi };
  if (w.hugetlb)
    s.hugetlb = d.hugetlb ? readHugetlb(w, d.hugetlb, "usage_in_bytes", "max_usage_in_bytes") : d.unified ? readHugetlb(w, d.unified, "current") : [];
  return s;
}

function readV2(d: CgroupDirs, at: number, w: Want): CgroupSample {
  const { detail } = w;
  const s: CgroupSample = { at, hugetlb: [] };
  const dir = d.unified;
  const cpu = parseKeyValues(read(w, dir, "cpu.stat"));
  const usageUs = cpu.get("usage_usec");
  if (usageUs !== undefined) {
    s.cpu = {
      usageNs: usageUs * 1000,
      userNs: (cpu.get("user_usec") ?? 0) * 1000,
      systemNs: (cpu.get("system_usec") ?? 0) * 1000,
      periods: cpu.get("nr_periods") ?? 0,
      throttledPeriods: cpu.get("nr_throttled") ?? 0,
      throttledNs: (cpu.get("throttled_usec") ?? 0) * 1000,
      psi: parsePsi(read(w, dir, "cpu.pressure")),
    };
    if (detail) {
      const [quota, period] = (read(w, dir, "cpu.max")?.trim() ?? "").split(/\s+/);
      const weight = num(w, dir, "cpu.weight");
      s.cpuSpec = {
        // cpu.weight 1..10000 ↔ cpu.shares 2..262144 (the conversion runc and cAdvisor use).
        shares: weight !== undefined ? Math.round(2 + ((weight - 1) * 262142) / 9999) : undefined,
        periodUs: period ? Number(period) : undefined,
        quotaUs: quota && quota !== "max" ? Number(quota) : undefined,
      };
    }
  }
  const usage = num(w, dir, "memory.current");
  if (usage !== undefined) {
    const st = parseKeyValues(read(w, dir, "memory.stat"), detail ? undefined : V2_MEM_KEYS);
    const ev = parseKeyValues(detail ? read(w, dir, "memory.events") : undefined);
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
      maxUsage: detail ? num(w, dir, "memory.peak") : undefined,
      failcnt: ev.get("max") ?? 0,
      limit: limited(num(w, dir, "memory.max"), Infinity),
      reservation: detail ? limited(num(w, dir, "memory.low"), Infinity) || undefined : undefined,
      swapUsage: w.swap ? num(w, dir, "memory.swap.current") : undefined,
      swapLimit: w.swap ? limited(num(w, dir, "memory.swap.max"), Infinity) : undefined,
      oomKills: ev.get("oom_kill"),
      psi: parsePsi(read(w, dir, "memory.pressure")),
    };
  }
  const pids = w.pids ? num(w, dir, "pids.current") : undefined;
  if (pids !== undefined) s.pids = { current: pids, limit: detail ? limited(num(w, dir, "pids.max"), Infinity) : undefined };
  const ioPsi = parsePsi(read(w, dir, "io.pressure"));
  if (ioPsi) s.io = { psi: ioPsi };
  if (w.hugetlb && dir) s.hugetlb = readHugetlb(w, dir, "current");
  return s;
}

function readHugetlb(w: Want, dir: string, usageFile: string, maxFile?: string): CgroupSample["hugetlb"] {
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
    const usage = num(w, dir, n);
    if (usage === undefined) continue;
    out.push({ pageSize, usage, maxUsage: maxFile ? num(w, dir, `hugetlb.${pageSize}.${maxFile}`) : undefined });
  }
  return out.sort((a, b) => a.pageSize.localeCompare(b.pageSize));
}

/** A number in a PSI line between `from` and `to` after `key` (0 when missing). */
function psiField(text: string, from: number, to: number, key: string): number {
  const k = text.indexOf(key, from);
  if (k < 0 || k >= to) return 0;
  let end = text.indexOf(" ", k + key.length);
  if (end < 0 || end > to) end = to;
  return Number(text.slice(k + key.length, end));
}
