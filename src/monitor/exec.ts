import { rmSync } from "node:fs";
import { encodeCtlExec, monitorFiles, type MonitorArgs } from "../conmon/protocol.ts";
import { openSession, type AttachConnection, type AttachOutput } from "./attach-client.ts";
import { newId } from "../util/id.ts";
import { monitorDir, pidOf, startMonitor, writeProcessSpec, type MonitorBase, type StartedMonitor } from "./spawn.ts";
import type { ExecSessionMonitor, Standby } from "./standby.ts";

/** A streaming exec session (CRI Exec, served by the streaming server). */
export interface SpawnExecOptions extends MonitorBase {
  containerId: string;
  /** The OCI process to run; `terminal` is set from the option below. */
  process: object;
  terminal?: boolean;
  stdin?: boolean;
  /** Kill the process when no client attached within this many ms; default 60 s. */
  attachTimeoutMs?: number;
  /** Also write `<exitDir>/<execId>` (most callers read the EXIT frame instead). */
  exitDir?: string;
  /** The exec session id (names `<socketDir>/<execId>/`); default a new id. */
  execId?: string;
}

/**
 * Starts a process in a container under an exec monitor and returns where to attach. The
 * process runs at once, but its output is held (in the pipe or pty) until the first client
 * attaches, so nothing is lost; the client gets STDOUT/STDERR frames and finally EXIT with the
 * exit code (protocol.ts §7). The client's CLOSE_STDIN (or leaving) closes the process's stdin.
 * The monitor removes the session dir when it ends. The monitor is a warm one from `standby`
 * when one waits (handed its request on fd 0, protocol.ts §1; not with `exitDir`), else one
 * started now; `standby` is topped up afterwards.
 */
export async function spawnExec(
  o: SpawnExecOptions,
  standby?: Standby<"exec">,
): Promise<{ execId: string; pid: number; monitorPid: number; attachPath: string }> {
  const execId = o.execId ?? newId();
  const dir = monitorDir(o.socketDir, execId);
  let warm: ExecSessionMonitor | undefined;
  let started: StartedMonitor | undefined;
  try {
    writeProcessSpec(dir, o.process, !!o.terminal);
    const request = { id: execId, container: o.containerId, dir, terminal: !!o.terminal, stdin: !!o.stdin, attachTimeoutMs: o.attachTimeoutMs ?? 60_000 };
    warm = o.exitDir === undefined ? standby?.take() : undefined;
    if (warm && !warm.hand(request)) {
      warm.kill(); // it died since it was started: start one now
      warm = undefined;
    }
    let m: StartedMonitor;
    if (warm) started = m = warm.monitor;
    else {
      const args: MonitorArgs = {
        mode: "exec",
        runtime: [...o.runtime],
        exitDir: o.exitDir,
        stdinOnce: true,
        logSizeMax: 0,
        timeoutMs: 0,
        ...request,
      };
      // its diagnostics go to <dir>/monitor.log, removed with the dir (kept with CRIO_MONITOR_DEBUG)
      started = m = startMonitor(o, args, monitorFiles(dir).diag);
    }
    try {
      const what = `exec in container "${o.containerId}"`;
      const [first] = await m.messages(1, 60_000, what);
      return { execId, pid: pidOf(first, m, what), monitorPid: m.pid, attachPath: monitorFiles(dir).attach };
    } finally {
      if (warm) warm.close();
      else m.closeSync();
    }
  } catch (e) {
    // a monitor that failed cleans its dir up as it exits: let it finish first, or the two
    // removals race and an emptied dir can outlive both
    if (started) await Promise.race([started.exited, Bun.sleep(EXIT_WAIT_MS)]);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  } finally {
    // take() started the replacement already; this only retries after a failed start
    standby?.fill();
  }
}

/** How long a failed start waits for its monitor to exit before removing the session dir. */
const EXIT_WAIT_MS = 2000;

/**
 * A streaming exec session in the container's own monitor (ctl `exec`, protocol.ts §6): no
 * monitor process is started. Undefined when that monitor cannot run one (it predates sessions,
 * or is gone): the caller then uses spawnExec. Rejects with the runtime's error (kind unknown)
 * when the process could not be started. Closing the connection kills the process.
 */
export async function execSessionInContainerMonitor(o: SpawnExecOptions, out: AttachOutput): Promise<{ conn: AttachConnection; pid: number } | undefined> {
  const execId = o.execId ?? newId();
  const dir = monitorDir(o.socketDir, execId);
  writeProcessSpec(dir, o.process, !!o.terminal);
  const ctl = monitorFiles(monitorDir(o.socketDir, o.containerId)).ctl;
  try {
    const s = await openSession(ctl, encodeCtlExec({ id: execId, dir, terminal: !!o.terminal, stdin: !!o.stdin }), out);
    if (!s) rmSync(dir, { recursive: true, force: true });
    return s; // on success the monitor removes the dir when the session ends
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
