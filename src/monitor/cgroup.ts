import { readFileSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import { RuntimeError } from "../errors.ts";
import { cgroupDirsForPath, readCgroupValue, removeCgroupDirs, type CgroupLayout } from "../sys/cgroup.ts";
import { run } from "../sys/exec.ts";

/**
 * Where a container's monitor lives: the handler's `monitor_cgroup` (CRI-O's conmon_cgroup).
 * - cgroupfs: "" or "pod" — a cgroup of its own under the pod's cgroup parent,
 *   `<parent>/crio-conmon-<id>`, in every hierarchy (its memory and CPU billed to the pod, as
 *   CRI-O does). The daemon records the dirs in the monitor dir and removes them with it.
 * - systemd: a transient scope `crio-conmon-<id>.scope` in the pod's slice ("pod"), or in the
 *   slice named ("…slice"; "" is system.slice), made through systemd's D-Bus API (busctl);
 *   systemd removes the scope when the monitor exits.
 * A monitor that cannot be placed keeps running where it started (the daemon's cgroup), with a
 * warning, as CRI-O does: the container works either way.
 */

/** What placing one monitor needs. */
export interface MonitorCgroupRequest {
  manager: "cgroupfs" | "systemd";
  /** monitor_cgroup of the container's handler. */
  setting: string;
  /** The pod's cgroup parent (CRI LinuxPodSandboxConfig.cgroup_parent); "" when none. */
  parent: string;
  /** Container id. */
  id: string;
}

/** The cgroupfs path (relative to each hierarchy's root) of a monitor's own cgroup. */
export function monitorCgroupPath(parent: string, id: string): string {
  if (parent.split("/").includes("..")) throw new RuntimeError("invalid-argument", `cgroup parent "${parent}" leaves the cgroup tree`);
  return posix.join("/", parent || "/crio", `crio-conmon-${id}`);
}

/** The busctl argv that makes a transient scope holding `pid` in `slice` (systemd manager). */
export function scopeCommand(unit: string, slice: string, pid: number): string[] {
  return [
    "busctl",
    "call",
    "--system",
    "org.freedesktop.systemd1",
    "/org/freedesktop/systemd1",
    "org.freedesktop.systemd1.Manager",
    "StartTransientUnit",
    "ssa(sv)a(sa(sv))",
    unit,
    "fail",
    "4",
    "Slice",
    "s",
    slice,
    "PIDs",
    "au",
    "1",
    String(pid),
    "Delegate",
    "b",
    "true",
    "DefaultDependencies",
    "b",
    "false",
    "0",
  ];
}

/**
 * Moves monitor `pid` into its cgroup (see above). cgroupfs: the dirs are written to
 * `<monitorDir>/cgroup.json` before they are made, so removeMonitorCgroup finds even a partial
 * placement. Throws with the reason when it could not (the caller warns and goes on).
 */
export async function placeMonitor(r: MonitorCgroupRequest, pid: number, monitorDir: string, layout: CgroupLayout): Promise<string> {
  if (r.manager === "systemd") {
    const slice = r.setting === "pod" ? r.parent || DEFAULT_SYSTEMD_SLICE : r.setting || DEFAULT_SYSTEMD_SLICE;
    const unit = `crio-conmon-${r.id}.scope`;
    await run(scopeCommand(unit, slice, pid), { timeoutMs: 10_000 });
    return `${slice}/${unit}`;
  }
  const path = monitorCgroupPath(r.parent, r.id);
  const dirs = cgroupDirsForPath(layout, path);
  await writeFile(join(monitorDir, RECORD), JSON.stringify({ path, dirs }), { mode: 0o600 });
  const cpuset = layout.v1.cpuset?.mountPoint;
  // On the thread pool and every hierarchy at once: a v1 cgroup attach waits for an RCU grace
  // period (ms), a dozen of them per container, and the event loop must not wait with them.
  await Promise.all(
    dirs.map(async (dir) => {
      // mkdir returns the first dir it made: undefined when the cgroup was there already
      const made = await mkdir(dir, { recursive: true });
      // a new v1 cpuset cgroup has no cpus or mems, and takes no process until it has
      if (made !== undefined && cpuset && dir.startsWith(`${cpuset}/`)) await inheritCpuset(dir, cpuset);
      await writeFile(join(dir, "cgroup.procs"), String(pid));
    }),
  );
  return path;
}

/**
 * Removes the cgroup dirs recorded in `monitorDir`, once the container is gone (its runtime
 * state deleted). Its monitor has exited or is exiting: EBUSY is retried for `timeoutMs`; what is
 * still in the cgroup then (a stuck monitor, its runtime children) is SIGKILLed and the removal
 * tried once more. Nothing recorded: nothing to do.
 */
export async function removeMonitorCgroup(monitorDir: string, timeoutMs = 5_000): Promise<void> {
  const dirs = recordedDirs(monitorDir);
  if (!dirs) return;
  try {
    // an exiting monitor leaves its cgroup within a few ms of its container's exit file: poll finely
    await removeCgroupDirs(dirs, { timeoutMs, firstDelayMs: 1, leaf: true });
  } catch (e) {
    if (!(e instanceof RuntimeError && e.kind === "deadline-exceeded")) throw e;
    for (const pid of new Set(dirs.flatMap((d) => (readCgroupValue(d, "cgroup.procs") ?? "").split("\n").filter(Boolean).map(Number)))) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    await removeCgroupDirs(dirs, { timeoutMs: 2_000, firstDelayMs: 1, leaf: true });
  }
}

/** The dirs placeMonitor recorded in `monitorDir`; undefined when none (or not its own). */
function recordedDirs(monitorDir: string): string[] | undefined {
  let dirs: unknown;
  try {
    dirs = (JSON.parse(readFileSync(join(monitorDir, RECORD), "utf8")) as { dirs: unknown }).dirs;
  } catch {
    return undefined;
  }
  // only what placeMonitor made: never a dir some edited record points elsewhere
  if (!Array.isArray(dirs) || dirs.some((d) => typeof d !== "string" || !posix.basename(d).startsWith("crio-conmon-"))) return undefined;
  return dirs as string[];
}

// --- internal ---

const DEFAULT_SYSTEMD_SLICE = "system.slice";
const RECORD = "cgroup.json";

/** Copies cpuset.cpus and cpuset.mems down from the nearest ancestor that has them. */
async function inheritCpuset(dir: string, root: string): Promise<void> {
  const chain: string[] = [];
  for (let d = dir; d.startsWith(`${root}/`); d = dirname(d)) chain.unshift(d);
  const value = (d: string, f: string) =>
    readFile(join(d, f), "utf8").then(
      (t) => t.trim(),
      () => undefined,
    );
  for (const d of chain) {
    for (const f of ["cpuset.cpus", "cpuset.mems"]) {
      if (!(await value(d, f))) await writeFile(join(d, f), (await value(dirname(d), f)) ?? "");
    }
  }
}
