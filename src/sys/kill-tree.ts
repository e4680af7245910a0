import { listDir, readText } from "./libc.ts";

/**
 * Kills a process and every descendant it has, then waits until they are gone, so that a
 * timed-out ExecSync leaves nothing behind (critest looks with pgrep right after). The tree is
 * frozen with SIGSTOP first, so nothing forks between finding a process and killing it.
 * Descendants orphaned inside a container's pid namespace go to its init, not to us: for them
 * "gone" means no longer in /proc or a zombie (dead, waiting for that init).
 */
export async function killTree(pid: number, timeoutMs = 5000, proc = "/proc"): Promise<void> {
  const seen = new Set<number>();
  for (let round = 0; round < 10; round++) {
    const found = [pid, ...descendants(pid, proc)].filter((p) => !seen.has(p));
    if (found.length === 0) break;
    for (const p of found) {
      seen.add(p);
      signal(p, "SIGSTOP");
    }
  }
  for (const p of seen) signal(p, "SIGKILL");
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; [...seen].some((p) => running(p, proc)) && Date.now() < deadline; delay = Math.min(delay * 2, 50)) await Bun.sleep(delay);
}

/** Every descendant of `pid` (children of all its threads, recursively). */
export function descendants(pid: number, proc = "/proc"): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    for (const tid of listDir(`${proc}/${p}/task`) ?? []) {
      for (const c of (readText(`${proc}/${p}/task/${tid}/children`) ?? "").split(" ")) {
        const child = Number(c);
        if (child > 0 && !out.includes(child)) out.push(child), queue.push(child);
      }
    }
  }
  return out;
}

// --- internal ---

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** True while `pid` exists and is not a zombie. */
function running(pid: number, proc: string): boolean {
  const stat = readText(`${proc}/${pid}/stat`);
  if (!stat) return false;
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state !== "Z" && state !== "X";
}
