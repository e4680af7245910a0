import { encodeExecRequest, type CreateRequest, type ExecSessionRequest, type ExecSyncRequest, type MonitorArgs } from "../conmon/protocol.ts";
import { close, pipe, write } from "../sys/libc.ts";
import { reniceThreads } from "../sys/process.ts";
import { startMonitor, type MonitorBase, type StartedMonitor } from "./spawn.ts";

/** A monitor started in standby (protocol.ts §1): it waits on its fd 0 for a request `R`. */
export interface WaitingMonitor<R> {
  monitor: StartedMonitor;
  /** True once the monitor process has exited. */
  readonly gone: boolean;
  /** Sends the request and closes the request pipe; false (nothing sent) when the monitor is gone. */
  hand(r: R): boolean;
  /** Closes every daemon-side fd (after use: the caller has stopped reading the pipes). */
  close(): void;
  /** SIGKILLs an unused monitor (it leads its own process group) and closes every fd. */
  kill(): void;
}

/** A standby exec-sync monitor; the daemon holds the read ends of its output pipes (its fds 4 and 5). */
export interface ExecSyncMonitor extends WaitingMonitor<ExecSyncRequest> {
  /** Read ends of the process's stdout and stderr pipes (non-blocking not required: streamed). */
  stdout: number;
  stderr: number;
}

/** A standby exec (session) monitor: it serves an attach socket once handed its request. */
export type ExecSessionMonitor = WaitingMonitor<ExecSessionRequest>;

/** A standby container monitor: once handed its CreateRequest it creates and serves the container. */
export interface CreateMonitor extends WaitingMonitor<CreateRequest> {
  /** Where it writes the container's exit file (fixed at its start). */
  exitDir: string;
}

/** The three kinds of standby monitor (protocol.ts §1) and the request each waits for. */
export interface StandbyKinds {
  create: { request: CreateRequest; monitor: CreateMonitor };
  exec: { request: ExecSessionRequest; monitor: ExecSessionMonitor };
  "exec-sync": { request: ExecSyncRequest; monitor: ExecSyncMonitor };
}

/** A kind of standby monitor: "create" (a container's), "exec" (a streaming session's), "exec-sync". */
export type StandbyKind = keyof StandbyKinds;

/**
 * Starts a monitor of `kind` in standby for `base`'s runtime (and, for "create", exits dir); it
 * waits on its fd 0 for its request and exits when that pipe closes unused. An exec-sync monitor
 * also gets the write ends of its output pipes as fds 4 and 5; the daemon keeps the read ends.
 * `background`: it starts at the lowest CPU priority (nice 19), so that its start-up yields to
 * the work in flight, and is put back to normal when handed its request.
 */
export function startStandby<K extends StandbyKind>(kind: K, base: MonitorBase & { exitDir?: string }, background = false): StandbyKinds[K]["monitor"] {
  if (kind === "create" && !base.exitDir) throw new Error("a standby container monitor needs the exits dir");
  const args: MonitorArgs = {
    mode: kind,
    standby: true,
    id: "",
    container: "",
    runtime: [...base.runtime],
    dir: "",
    terminal: false,
    stdin: false,
    stdinOnce: kind === "exec",
    logSizeMax: 0,
    timeoutMs: 0,
    attachTimeoutMs: 0,
    ...(kind === "create" ? { exitDir: base.exitDir } : {}),
  };
  const ours: number[] = []; // daemon-side fds: closed with the monitor
  const theirs: number[] = []; // the monitor's copies: closed here once it has started (or failed to)
  try {
    const [reqR, reqW] = pipe();
    theirs.push(reqR);
    ours.push(reqW);
    const out: number[] = [];
    if (kind === "exec-sync") {
      for (let i = 0; i < 2; i++) {
        const [r, w] = pipe();
        ours.push(r);
        theirs.push(w);
        out.push(r);
      }
    }
    const monitor = startMonitor(base, args, undefined, theirs.slice(1), reqR);
    const m = waiting<StandbyKinds[K]["request"]>(monitor, reqW, out, background);
    if (kind === "create") return Object.assign(m, { exitDir: base.exitDir as string }) as StandbyKinds[K]["monitor"];
    if (kind === "exec-sync") return Object.assign(m, { stdout: out[0] as number, stderr: out[1] as number }) as StandbyKinds[K]["monitor"];
    return m as StandbyKinds[K]["monitor"];
  } catch (e) {
    for (const fd of ours) close(fd);
    throw e;
  } finally {
    for (const fd of theirs) close(fd);
  }
}

/** How many warm monitors were used, how many callers started one cold, and the waiting pids. */
export interface StandbyStats {
  hits: number;
  misses: number;
  pids: number[];
}

/**
 * Up to `size` standby monitors kept waiting for one runtime (root): take() hands one out and
 * starts its replacement in the background (fill). The first is started lazily, by the first
 * use. After three standbys in a row died unused (a monitor binary that does not
 * know --standby, say) no more are started: callers then start their monitors as before.
 */
export class StandbyPool<M extends WaitingMonitor<never>> {
  #warm: M[] = [];
  #closed = false;
  #scheduled = false;
  #deadUnused = 0;
  #hits = 0;
  #misses = 0;

  constructor(
    readonly start: (background: boolean) => M,
    readonly size = 1,
  ) {}

  /**
   * A live waiting monitor, or undefined (the caller starts one; counts a miss). Its replacement
   * is started at once (fill), in the background: it has the whole of this exec to get ready,
   * so the next call finds it waiting. Started only after this exec (the previous way), it was
   * still loading when back-to-back execs came (measured: streaming exec 1.1–1.3× → ~1.0×
   * containerd's in bench/exec.ts). `refill: false` leaves that to the caller's fill(), for
   * work the replacement's start-up would slow down (a container's `runtime create`, which keeps
   * both cores of a small node busy).
   */
  take(refill = true): M | undefined {
    try {
      for (let m; (m = this.#warm.shift()); ) {
        if (m.gone) {
          m.close();
          continue;
        }
        this.#hits++;
        this.#deadUnused = 0;
        return m;
      }
      this.#misses++;
      return undefined;
    } finally {
      if (refill) this.fill();
    }
  }

  /** Tops the pool up to `size` on a later turn of the event loop (after the caller's reply). */
  fill(): void {
    if (this.#closed || this.#scheduled || this.size <= 0 || this.#deadUnused >= 3) return;
    this.#scheduled = true;
    setTimeout(() => {
      this.#scheduled = false;
      while (!this.#closed && this.#warm.length < this.size && this.#deadUnused < 3) {
        let m: M;
        try {
          m = this.start(true);
        } catch {
          this.#deadUnused++;
          continue;
        }
        this.#warm.push(m);
        void m.monitor.exited.then(() => {
          const i = this.#warm.indexOf(m);
          if (i < 0) return; // taken (its user closes it) or killed by close()
          this.#warm.splice(i, 1);
          m.close();
          this.#deadUnused++;
        });
      }
    }, 0);
  }

  /** Kills the waiting monitors and starts no more (daemon shutdown, or a changed runtime). */
  close(): void {
    this.#closed = true;
    for (const m of this.#warm.splice(0)) m.kill();
  }

  /** Counters and the pids of the monitors waiting now. */
  stats(): StandbyStats {
    return { hits: this.#hits, misses: this.#misses, pids: this.#warm.filter((m) => !m.gone).map((m) => m.monitor.pid) };
  }
}

/** The warm monitors of one kind for one runtime (and exits dir): startStandby's pool. */
export class Standby<K extends StandbyKind> extends StandbyPool<StandbyKinds[K]["monitor"]> {
  constructor(
    readonly kind: K,
    base: MonitorBase & { exitDir?: string },
    size = 1,
  ) {
    super((background) => startStandby(kind, base, background), size);
  }
}

// --- internal ---

/**
 * The waiting side of a started standby `monitor`: `reqW` is the write end of its request pipe,
 * `fds` more daemon-side fds closed with it. `background`: reniced to 19 until handed a request.
 */
function waiting<R extends ExecSyncRequest | ExecSessionRequest | CreateRequest>(
  monitor: StartedMonitor,
  reqW: number,
  fds: number[],
  background: boolean,
): WaitingMonitor<R> {
  if (background) reniceThreads(monitor.pid, BACKGROUND_NICE);
  let gone = false;
  let request = reqW;
  void monitor.exited.then(() => (gone = true));
  let closed = false;
  const closeAll = () => {
    if (closed) return; // each fd once: a number closed twice may be someone else's by then
    closed = true;
    monitor.closeSync();
    for (const fd of [request, ...fds]) close(fd);
    request = -1;
  };
  return {
    monitor,
    get gone() {
      return gone;
    },
    hand(r) {
      if (gone || request < 0) return false;
      if (background) reniceThreads(monitor.pid, 0);
      try {
        // one short line into an empty pipe: written whole (PIPE_BUF), never blocks
        write(request, new TextEncoder().encode(encodeExecRequest(r)));
        return true;
      } catch {
        return false; // EPIPE: the monitor is gone
      } finally {
        close(request);
        request = -1;
      }
    },
    close: closeAll,
    kill() {
      if (!gone) {
        try {
          process.kill(-monitor.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      closeAll();
    },
  };
}

const BACKGROUND_NICE = 19;
