import { existsSync, readFileSync, readdirSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { RuntimeError } from "../errors.ts";
import { sleep } from "../util/wait.ts";
import { parseMountinfo, type MountInfo } from "./mount.ts";

/**
 * cgroup layout detection (v1, hybrid, v2 unified), a process's cgroup directories, values, and
 * removal of a container's cgroups. Everything takes the mount table as data, so tests run over
 * fixture trees in a temp dir.
 */

/** The node's cgroup layout: mount points of each v1 controller and of the v2 hierarchy. */
export interface CgroupLayout {
  /** "v2": unified only; "hybrid": v1 controllers plus a v2 hierarchy (no controllers); "v1": legacy only. */
  kind: "v1" | "hybrid" | "v2";
  /** v1 controller (or "name=systemd") → mount point and mount root. */
  v1: Record<string, { mountPoint: string; root: string }>;
  /** The cgroup2 mount, when there is one. */
  unified?: { mountPoint: string; root: string };
}

/** Detects the layout from a mount table (default: this process's). */
export function detectCgroupLayout(table: MountInfo[] = parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8"))): CgroupLayout {
  const v1: CgroupLayout["v1"] = {};
  let unified: CgroupLayout["unified"];
  for (const m of table) {
    if (m.fsType === "cgroup2") {
      // The shallowest cgroup2 mount wins (a container may see a nested one too).
      if (!unified || m.mountPoint.length < unified.mountPoint.length) unified = { mountPoint: m.mountPoint, root: m.root };
    } else if (m.fsType === "cgroup") {
      for (const opt of m.superOptions.split(",")) {
        if (V1_CONTROLLERS.has(opt) || opt.startsWith("name=")) v1[opt] ??= { mountPoint: m.mountPoint, root: m.root };
      }
    }
  }
  const hasV1 = Object.keys(v1).some((k) => !k.startsWith("name="));
  const kind = hasV1 ? (unified ? "hybrid" : "v1") : unified ? "v2" : "v1";
  return { kind, v1, unified };
}

/** One line of /proc/<pid>/cgroup. */
export interface ProcCgroup {
  hierarchy: number;
  /** Controllers ("cpu,cpuacct", "name=systemd"; empty for the v2 line). */
  controllers: string[];
  path: string;
}

/** Parses /proc/<pid>/cgroup text. */
export function parseProcCgroup(text: string): ProcCgroup[] {
  const out: ProcCgroup[] = [];
  for (const line of text.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    out.push({ hierarchy: Number(m[1]), controllers: m[2] ? (m[2] as string).split(",") : [], path: m[3] as string });
  }
  return out;
}

/**
 * The directories of a process's cgroups on this layout: one per mounted v1 hierarchy and the v2
 * one (v2 first), deduplicated (co-mounted controllers share a directory).
 */
export function cgroupDirsOf(layout: CgroupLayout, proc: ProcCgroup[]): string[] {
  const dirs: string[] = [];
  const add = (d: string | undefined) => {
    if (d && !dirs.includes(d)) dirs.push(d);
  };
  for (const e of proc) {
    if (e.hierarchy === 0 && e.controllers.length === 0) {
      if (layout.unified) add(under(layout.unified, e.path));
      continue;
    }
    const mnt = e.controllers.map((c) => layout.v1[c]).find(Boolean);
    if (mnt) add(under(mnt, e.path));
  }
  return dirs.sort((a, b) => (isUnified(layout, b) ? 1 : 0) - (isUnified(layout, a) ? 1 : 0));
}

/** The cgroup directories of a live process (reads /proc/<pid>/cgroup); not-found when it is gone. */
export function cgroupDirsForPid(pid: number, layout: CgroupLayout = detectCgroupLayout(), procRoot = "/proc"): string[] {
  let text: string;
  try {
    text = readFileSync(join(procRoot, String(pid), "cgroup"), "utf8");
  } catch {
    throw new RuntimeError("not-found", `process ${pid} not found`);
  }
  return cgroupDirsOf(layout, parseProcCgroup(text));
}

/**
 * The directories a cgroupsPath (as written in the OCI spec) maps to on this layout: cgroupfs
 * "/parent/crio-<id>" directly; systemd "<slice>:<prefix>:<name>" as the expanded slice path
 * plus "<prefix>-<name>.scope".
 */
export function cgroupDirsForPath(layout: CgroupLayout, cgroupsPath: string): string[] {
  const rel = cgroupsPath.includes(":") ? systemdPath(cgroupsPath) : cgroupsPath;
  const dirs: string[] = [];
  if (layout.unified && layout.kind !== "v1") dirs.push(join(layout.unified.mountPoint, rel));
  for (const m of new Set(Object.values(layout.v1).map((x) => x.mountPoint))) dirs.push(join(m, rel));
  return dirs;
}

/** Reads a cgroup file ("memory.max", "cpu.weight", …) trimmed; undefined when it does not exist. */
export function readCgroupValue(dir: string, file: string): string | undefined {
  try {
    return readFileSync(join(dir, file), "utf8").trim();
  } catch {
    return undefined;
  }
}

/**
 * Removes cgroup directories, children first (rmdir only: cgroupfs dirs cannot be emptied by
 * unlinking). EBUSY (processes still exiting) is retried until `timeoutMs`, first after
 * `firstDelayMs` (10), then backing off; a missing dir is fine. `leaf`: the dirs have no
 * children of their own (not read; a child found later is removed then).
 */
export async function removeCgroupDirs(dirs: string[], o: { timeoutMs?: number; firstDelayMs?: number; leaf?: boolean } = {}): Promise<void> {
  const end = Date.now() + (o.timeoutMs ?? 5_000);
  let all = o.leaf ? [...dirs] : dirs.flatMap((d) => subtree(d)).sort((a, b) => b.length - a.length);
  for (let delay = o.firstDelayMs ?? 10; ; delay = Math.min(delay * 2, 200)) {
    let busy: string | undefined;
    for (const d of all) {
      try {
        rmdirSync(d);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "ENOENT") continue;
        if (code !== "EBUSY" && code !== "ENOTEMPTY") throw new RuntimeError("internal", `remove cgroup "${d}": ${code}`);
        if (code === "ENOTEMPTY" && o.leaf) all = dirs.flatMap((x) => subtree(x)).sort((a, b) => b.length - a.length);
        busy ??= d;
      }
    }
    if (!busy) return;
    if (Date.now() > end) throw new RuntimeError("deadline-exceeded", `cgroup "${busy}" is still busy`);
    await sleep(delay);
  }
}

/** What the spec builder needs to know about the node's cgroups. */
export function cgroupFacts(layout: CgroupLayout, ownDirs: string[] = []): { v2: boolean; swap: boolean; hugetlb: boolean; pids: boolean } {
  if (layout.kind === "v2" && layout.unified) {
    const root = layout.unified.mountPoint;
    const controllers = (readCgroupValue(root, "cgroup.controllers") ?? "").split(/\s+/);
    const swap = controllers.includes("memory") && (ownDirs.some((d) => existsSync(join(d, "memory.swap.max"))) || hasSwapFile(root));
    return { v2: true, swap, hugetlb: controllers.includes("hugetlb"), pids: controllers.includes("pids") };
  }
  const mem = layout.v1.memory?.mountPoint;
  return {
    v2: false,
    swap: mem !== undefined && existsSync(join(mem, "memory.memsw.limit_in_bytes")),
    hugetlb: layout.v1.hugetlb !== undefined,
    pids: layout.v1.pids !== undefined,
  };
}

// --- internal ---

const V1_CONTROLLERS = new Set([
  "cpu",
  "cpuacct",
  "cpuset",
  "memory",
  "devices",
  "freezer",
  "net_cls",
  "net_prio",
  "blkio",
  "perf_event",
  "hugetlb",
  "pids",
  "rdma",
  "misc",
]);

function under(m: { mountPoint: string; root: string }, path: string): string {
  // A mount whose root is not "/" shows only the subtree below it.
  let rel = path;
  if (m.root !== "/" && (path === m.root || path.startsWith(`${m.root}/`))) rel = path.slice(m.root.length);
  return join(m.mountPoint, rel);
}

function isUnified(layout: CgroupLayout, dir: string): boolean {
  return !!layout.unified && dir.startsWith(layout.unified.mountPoint);
}

function subtree(dir: string): string[] {
  const out = [dir];
  let names: string[] = [];
  try {
    names = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return out;
  }
  for (const n of names) out.push(...subtree(join(dir, n)));
  return out;
}

function systemdPath(cgroupsPath: string): string {
  const [slice = "", prefix = "", name = ""] = cgroupsPath.split(":");
  return join(expandSlice(slice), `${prefix}-${name}.scope`);
}

/** "a-b-c.slice" → "/a.slice/a-b.slice/a-b-c.slice" (systemd's slice nesting). */
export function expandSlice(slice: string): string {
  if (slice === "" || slice === "-.slice") return "/";
  if (!slice.endsWith(".slice")) throw new RuntimeError("invalid-argument", `invalid systemd slice "${slice}"`);
  const parts = slice.slice(0, -".slice".length).split("-");
  let path = "";
  let prefix = "";
  for (const p of parts) {
    if (p === "") throw new RuntimeError("invalid-argument", `invalid systemd slice "${slice}"`);
    prefix = prefix ? `${prefix}-${p}` : p;
    path += `/${prefix}.slice`;
  }
  return path;
}

function hasSwapFile(root: string): boolean {
  // memory.swap.max exists in every non-root cgroup when swap accounting is on; look one level down.
  try {
    return readdirSync(root, { withFileTypes: true }).some((e) => e.isDirectory() && existsSync(join(root, e.name, "memory.swap.max")));
  } catch {
    return false;
  }
}
