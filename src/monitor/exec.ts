import { rmSync } from "node:fs";
import { monitorFiles, type MonitorArgs } from "../conmon/protocol.ts";
import { newId } from "../util/id.ts";
import { monitorDir, pidOf, startMonitor, writeProcessSpec, type MonitorBase } from "./spawn.ts";

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
 * The monitor removes the session dir when it ends.
 */
export async function spawnExec(o: SpawnExecOptions): Promise<{ execId: string; pid: number; monitorPid: number; attachPath: string }> {
  const execId = o.execId ?? newId();
  const dir = monitorDir(o.socketDir, execId);
  try {
    writeProcessSpec(dir, o.process, !!o.terminal);
    const args: MonitorArgs = {
      mode: "exec", id: execId, container: o.containerId, runtime: o.runtimePath, runtimeRoot: o.runtimeRoot, dir,
      exitDir: o.exitDir, terminal: !!o.terminal, stdin: !!o.stdin, stdinOnce: true, logSizeMax: 0, timeoutMs: 0,
      attachTimeoutMs: o.attachTimeoutMs ?? 60_000,
    };
    // its diagnostics go to <dir>/monitor.log, removed with the dir (kept with CRIO_MONITOR_DEBUG)
    const m = startMonitor(o, args, monitorFiles(dir).diag);
    try {
      const what = `exec in container "${o.containerId}"`;
      const [first] = await m.messages(1, 60_000, what);
      return { execId, pid: pidOf(first, m, what), monitorPid: m.pid, attachPath: monitorFiles(dir).attach };
    } finally {
      m.closeSync();
    }
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
