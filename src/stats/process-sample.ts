import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import type { CgroupDirs } from "./cgroup-dirs.ts";
import type { ProcessSample } from "./types.ts";

/**
 * Counts a cgroup's processes, threads, open file descriptors and sockets (cAdvisor's process
 * metrics) from cgroup.procs and /proc/<pid>/fd. Undefined when the cgroup is gone.
 */
export function readProcesses(dirs: CgroupDirs, procRoot = "/proc"): ProcessSample | undefined {
  const dir = dirs.mode === "v2" ? dirs.unified : (dirs.pids ?? dirs.memory ?? dirs.cpu);
  if (!dir) return undefined;
  const pids = ids(readOr(join(dir, "cgroup.procs")));
  if (pids === undefined) return undefined;
  const threads = ids(readOr(join(dir, dirs.mode === "v2" ? "cgroup.threads" : "tasks")))?.length ?? pids.length;
  const max = readOr(join(dir, "pids.max"))?.trim();
  let fileDescriptors = 0;
  let sockets = 0;
  for (const pid of pids) {
    const fdDir = join(procRoot, String(pid), "fd");
    let fds: string[];
    try {
      fds = readdirSync(fdDir);
    } catch {
      continue; // exited meanwhile, or a kernel thread
    }
    fileDescriptors += fds.length;
    for (const fd of fds) {
      try {
        if (readlinkSync(join(fdDir, fd)).startsWith("socket:")) sockets++;
      } catch {
        // closed meanwhile
      }
    }
  }
  return { processes: pids.length, threads, threadsMax: max && max !== "max" ? Number(max) : undefined, fileDescriptors, sockets };
}

// --- internal ---

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function ids(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map(Number);
}
