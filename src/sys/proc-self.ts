import { readdirSync, readFileSync } from "node:fs";

/**
 * What /proc says about this process (the numbers of Prometheus' standard process collector)
 * and about the node's defunct processes (CRI-O's crio_processes_defunct).
 */

/** A snapshot of this process' resource use. */
export interface SelfStats {
  /** User + system CPU time, in seconds. */
  cpuSeconds: number;
  residentBytes: number;
  virtualBytes: number;
  /** Seconds since the epoch when the process started. */
  startTimeSeconds: number;
  openFds: number;
  /** The soft RLIMIT_NOFILE. */
  maxFds: number;
}

/** Reads /proc/self/{stat,status,fd,limits} and /proc/stat; undefined when /proc is not readable. */
export function selfStats(proc = "/proc"): SelfStats | undefined {
  try {
    const f = statFields(readFileSync(`${proc}/self/stat`, "utf8"));
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync(`${proc}/stat`, "utf8"))?.[1] ?? 0);
    const limits = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`${proc}/self/limits`, "utf8"))?.[1];
    return {
      cpuSeconds: (Number(f[13]) + Number(f[14])) / CLK_TCK,
      startTimeSeconds: btime + Number(f[21]) / CLK_TCK,
      virtualBytes: Number(f[22]),
      residentBytes: Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`${proc}/self/status`, "utf8"))?.[1] ?? 0) * 1024,
      openFds: readdirSync(`${proc}/self/fd`).length,
      maxFds: limits === undefined || limits === "unlimited" ? Infinity : Number(limits),
    };
  } catch {
    return undefined;
  }
}

/** The number of zombie (state Z) processes on the node. */
export function defunctProcesses(proc = "/proc"): number {
  let n = 0;
  for (const pid of readdirSync(proc)) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (statFields(readFileSync(`${proc}/${pid}/stat`, "utf8"))[2] === "Z") n++;
    } catch {} // the process ended while we looked
  }
  return n;
}

/** The summary lines of /proc/self/smaps_rollup, in KiB ({} when /proc is unavailable). */
export function smapsRollup(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    const text = readFileSync("/proc/self/smaps_rollup", "utf8");
    for (const m of text.matchAll(/^(Rss|Pss|Pss_Anon|Pss_File|Anonymous|Shared_Clean|Private_Dirty|Swap):\s+(\d+) kB/gm)) out[m[1]!] = Number(m[2]);
  } catch {
    // not Linux, or /proc unavailable
  }
  return out;
}

// --- internal ---

/** sysconf(_SC_CLK_TCK): 100 on every Linux x86_64/aarch64 kernel (USER_HZ). */
const CLK_TCK = 100;

/** proc(5) stat fields, 0-based as in the man page minus one: the comm field may hold spaces and parentheses. */
function statFields(stat: string): string[] {
  const close = stat.lastIndexOf(")");
  const head = stat.slice(0, stat.indexOf("(")).trim();
  const comm = stat.slice(stat.indexOf("(") + 1, close);
  return [
    head,
    comm,
    ...stat
      .slice(close + 2)
      .trim()
      .split(" "),
  ];
}
