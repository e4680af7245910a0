import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expandSlice, parseProcCgroup, type CgroupLayout, type ProcCgroup } from "../sys/cgroup.ts";

/**
 * Where one cgroup's statistics live on this node's layout. On v2 every file is under `unified`;
 * on v1 (and hybrid) each controller has its own directory, and `unified` (hybrid's controller-less
 * cgroup2, when the process has a directory there) still carries PSI and, on some kernels, hugetlb.
 */
export interface CgroupDirs {
  mode: "v1" | "v2";
  unified?: string;
  cpu?: string;
  cpuacct?: string;
  memory?: string;
  pids?: string;
  hugetlb?: string;
}

/** The controllers stats read. */
export const STAT_CONTROLLERS = ["cpu", "cpuacct", "memory", "pids", "hugetlb"] as const;

/** The cgroup directories of a process from its /proc/<pid>/cgroup lines. */
export function dirsFromProc(layout: CgroupLayout, lines: ProcCgroup[]): CgroupDirs {
  const out: CgroupDirs = { mode: layout.kind === "v2" ? "v2" : "v1" };
  for (const e of lines) {
    if (e.hierarchy === 0 && e.controllers.length === 0) {
      if (layout.unified) out.unified = under(layout.unified, e.path);
      continue;
    }
    if (out.mode === "v2") continue;
    for (const c of e.controllers) {
      const m = layout.v1[c];
      if (m && (STAT_CONTROLLERS as readonly string[]).includes(c)) out[c as (typeof STAT_CONTROLLERS)[number]] = under(m, e.path);
    }
  }
  return out;
}

/** The cgroup directories of a live process; undefined when it is gone. */
export function dirsForPid(layout: CgroupLayout, pid: number, procRoot = "/proc"): CgroupDirs | undefined {
  let text: string;
  try {
    text = readFileSync(join(procRoot, String(pid), "cgroup"), "utf8");
  } catch {
    return undefined;
  }
  return dirsFromProc(layout, parseProcCgroup(text));
}

/**
 * The directories of a cgroup named as a CRI cgroup parent or OCI cgroupsPath: a cgroupfs path
 * ("/kubepods/burstable/pod123"), a systemd slice ("kubepods-burstable-pod123.slice") or a
 * systemd "slice:prefix:name" triple.
 */
export function dirsForPath(layout: CgroupLayout, path: string): CgroupDirs {
  const rel = relativeOf(path);
  const out: CgroupDirs = { mode: layout.kind === "v2" ? "v2" : "v1" };
  if (layout.unified) out.unified = join(layout.unified.mountPoint, rel);
  if (out.mode === "v1") {
    for (const c of STAT_CONTROLLERS) {
      const m = layout.v1[c];
      if (m) out[c] = join(m.mountPoint, rel);
    }
  }
  return out;
}

/** The path of a cgroup parent or cgroupsPath relative to a hierarchy's root. */
export function relativeOf(path: string): string {
  if (path.includes(":")) {
    const [slice = "", prefix = "", name = ""] = path.split(":");
    return join(expandSlice(slice), `${prefix}-${name}.scope`);
  }
  if (path.endsWith(".slice") && !path.includes("/")) return expandSlice(path);
  return join("/", path);
}

// --- internal ---

function under(m: { mountPoint: string; root: string }, path: string): string {
  // A mount whose root is not "/" shows only the subtree below it.
  let rel = path;
  if (m.root !== "/" && (path === m.root || path.startsWith(`${m.root}/`))) rel = path.slice(m.root.length);
  return join(m.mountPoint, rel);
}
