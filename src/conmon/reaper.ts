import { exitCodeOf, setChildSubreaper, waitpidNoHang } from "../sys/libc.ts";
import { ownChildren, pidAlive } from "../sys/process.ts";

/** How one process ended. */
export interface ProcessExit {
  pid: number;
  /** Exit code, or 128 + signal when killed. */
  exitCode: number;
  /** Milliseconds since the epoch when the exit was collected. */
  at: number;
}

/**
 * The monitor as child subreaper: the container's init (orphaned when `runtime create` exits)
 * becomes our child, and so does anything else orphaned below us. Exits are collected with
 * waitpid on specific pids only — never -1, which would steal the children Bun itself waits for
 * (the runtime process) — on every SIGCHLD. A process that turns out not to be our child (no
 * SIGCHLD will come for it) is polled on a slow timer until it is gone; otherwise nothing wakes
 * the monitor: an idle monitor stays idle (and keeps its memory small, see settle.ts).
 * Other zombie children are reaped too, except while a hold() is in force: between the runtime's
 * exit and wait(pid) the process it started is already our child (and may already be a zombie,
 * a quick exec), and reaping it then would lose its exit status.
 */
export class Reaper {
  #waiters = new Map<number, Array<(e: ProcessExit) => void>>();
  #own = new Set<number>();
  #holds = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #onSignal = () => this.check();

  /** Becomes child subreaper and starts listening for SIGCHLD (before anything is spawned). */
  start(): void {
    setChildSubreaper();
    process.on("SIGCHLD", this.#onSignal);
  }

  /** Marks a pid that Bun.spawn owns (Bun reaps it); the reaper never waits for it. */
  own(pid: number): void {
    this.#own.add(pid);
  }

  /** Forgets a pid marked with own() once Bun has reaped it. */
  disown(pid: number): void {
    this.#own.delete(pid);
  }

  /** Leaves zombie children that nobody waits for alone until the returned release is called. */
  hold(): () => void {
    this.#holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holds--;
      this.check();
    };
  }

  /** Resolves when child `pid` exits; the pid must be our child (directly or re-parented). */
  wait(pid: number): Promise<ProcessExit> {
    const p = new Promise<ProcessExit>((resolve) => {
      const list = this.#waiters.get(pid) ?? [];
      list.push(resolve);
      this.#waiters.set(pid, list);
    });
    this.check();
    return p;
  }

  /** Collects exited children now: the awaited pids, then (unless held) any other zombie child not Bun's. */
  check(): void {
    let polled = false; // a waiter no SIGCHLD will wake
    for (const [pid, list] of this.#waiters) {
      let status: number | undefined;
      try {
        status = waitpidNoHang(pid);
      } catch {
        // ECHILD: not our child (we were not its subreaper); all we can learn is when it is gone
        status = pidAlive(pid) ? undefined : UNKNOWN_STATUS;
        if (status === undefined) polled = true;
      }
      if (status === undefined) continue;
      this.#waiters.delete(pid);
      const e = { pid, exitCode: exitCodeOf(status), at: Date.now() };
      for (const resolve of list) resolve(e);
    }
    for (const pid of this.#holds > 0 ? [] : this.children()) {
      if (this.#own.has(pid) || this.#waiters.has(pid)) continue;
      try {
        waitpidNoHang(pid);
      } catch {
        // raced with another collector: nothing to do
      }
    }
    if (polled) this.#timer ??= setInterval(() => this.check(), NOT_OURS_POLL_MS);
    else if (this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Our current children (orphans are re-parented to the thread-group leader). */
  children(): number[] {
    return ownChildren();
  }

  /** Stops listening; pending waits stay pending. */
  stop(): void {
    process.off("SIGCHLD", this.#onSignal);
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

// --- internal ---

/** How often a waited-for process that is not our child is checked for. */
const NOT_OURS_POLL_MS = 1000;
/** Reported (as exit code 255) for a process that is gone but was not ours to wait for. */
const UNKNOWN_STATUS = 255 << 8;
