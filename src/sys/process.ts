/**
 * Processes and the kernel as /proc and kill(2) show them: is a pid alive, what runs under it,
 * which kernel this is. No node: module (the monitor role loads it; see libc.ts).
 */
import { daemonLibc, listDir, readText } from "./libc.ts";

/** Whether process `pid` exists (kill(pid, 0); EPERM: it exists, owned by another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

/** Process `pid`'s command line as /proc shows it (arguments NUL-separated); undefined when it is gone. */
export function procCmdline(pid: number): string | undefined {
  return readText(`/proc/${pid}/cmdline`);
}

/** procCmdline, read on the thread pool (for callers that ask for many pids in a loop). */
export async function procCmdlineAsync(pid: number): Promise<string | undefined> {
  try {
    return await Bun.file(`/proc/${pid}/cmdline`).text();
  } catch {
    return undefined;
  }
}

/** Every process whose command line contains `text` (a container id: the runtime's create naming it), this one excluded. */
export function pidsNaming(text: string): number[] {
  const out: number[] = [];
  for (const name of listDir("/proc") ?? []) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    if (procCmdline(pid)?.includes(text)) out.push(pid);
  }
  return out;
}

/** This process's children (the thread-group leader's: orphans re-parented to a subreaper land there). */
export function ownChildren(): number[] {
  const text = readText(`/proc/self/task/${process.pid}/children`) ?? "";
  return text.split(" ").filter(Boolean).map(Number);
}

/**
 * Sets the nice value of every thread of `pid` (Linux keeps one per thread: setpriority(2) on
 * each thread id); best effort: a thread that ended, or no CAP_SYS_NICE to raise it again.
 */
export function reniceThreads(pid: number, nice: number): void {
  let tids: string[] | undefined;
  try {
    tids = listDir(`/proc/${pid}/task`);
  } catch {
    return;
  }
  for (const tid of tids ?? []) daemonLibc().setpriority(0 /* PRIO_PROCESS */, Number(tid), nice);
}

/** The running kernel's release ("6.1.0-18-amd64"), as uname(2) says it. */
export function kernelRelease(): string {
  return (kernel ??= (readText("/proc/sys/kernel/osrelease") ?? "").trim());
}

/** Whether the kernel release (this kernel's by default) is at least major.minor. */
export function kernelAtLeast(major: number, minor: number, release = kernelRelease()): boolean {
  const [a = 0, b = 0] = release.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  return a > major || (a === major && b >= minor);
}

let kernel: string | undefined;
