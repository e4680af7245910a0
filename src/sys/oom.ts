import { readText } from "./libc.ts";
import { parseMountinfo } from "./mountinfo.ts";

/**
 * OOM detection from the container's memory cgroup: the kernel's `oom_kill` counter, in
 * `memory.events` (cgroup v2) or `memory.oom_control` (cgroup v1, kernel ≥ 4.13). The counter is
 * read when the container is created and again after it exits — before the runtime deletes the
 * cgroup — so kills that happened earlier in a reused cgroup are not counted (the false
 * "OOMKilled" of cumulative counters).
 */
export class OomWatch {
  private constructor(
    /** The counter file. */
    readonly file: string,
    /** oom_kill when the watch started. */
    readonly baseline: number,
  ) {}

  /** Finds the memory cgroup of `pid` and reads its counter; undefined when there is none. */
  static forPid(pid: number, proc = "/proc"): OomWatch | undefined {
    const file = counterFile(readText(`${proc}/${pid}/cgroup`) ?? "", readText(`${proc}/self/mountinfo`) ?? "");
    if (!file) return undefined;
    const n = oomKills(readText(file) ?? "");
    return n === undefined ? undefined : new OomWatch(file, n);
  }

  /** True when the OOM killer killed a process of the cgroup since the watch started. */
  killed(): boolean {
    const n = oomKills(readText(this.file) ?? "");
    return n !== undefined && n > this.baseline;
  }
}

/** The oom_kill counter file for a process, from /proc/<pid>/cgroup and /proc/self/mountinfo. */
export function counterFile(cgroupText: string, mountinfo: string): string | undefined {
  const mounts = parseMountinfo(mountinfo).map((m) => ({ root: m.root, point: m.mountPoint, fstype: m.fsType, opts: m.superOptions.split(",") }));
  let v2: string | undefined;
  for (const line of cgroupText.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, , controllers, path] = m as unknown as [string, string, string, string];
    if (controllers.split(",").includes("memory")) {
      const mnt = mounts.find((x) => x.fstype === "cgroup" && x.opts.includes("memory"));
      const p = mnt && within(mnt, path);
      if (p) return `${p}/memory.oom_control`;
    } else if (m[1] === "0" && controllers === "") v2 = path;
  }
  if (v2 !== undefined) {
    const mnt = mounts.find((x) => x.fstype === "cgroup2");
    const p = mnt && within(mnt, v2);
    if (p) return `${p}/memory.events`;
  }
  return undefined;
}

/** The `oom_kill N` value of memory.events or memory.oom_control. */
export function oomKills(text: string): number | undefined {
  const m = /^oom_kill (\d+)$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

// --- internal ---

function within(mnt: { root: string; point: string }, path: string): string | undefined {
  const root = mnt.root === "/" ? "" : mnt.root;
  if (root && path !== root && !path.startsWith(root + "/")) return undefined;
  const rest = path.slice(root.length);
  return (mnt.point + rest).replace(/\/+$/, "");
}
