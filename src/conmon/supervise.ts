import { killTree } from "../sys/kill-tree.ts";
import { mkdirp, setWinsize } from "../sys/libc.ts";
import { OomWatch } from "../sys/oom.ts";
import { AttachServer } from "./attach.ts";
import { CriLog } from "./cri-log.ts";
import { CtlServer } from "./ctl.ts";
import { diag, trace, tryIt } from "./diag.ts";
import { execInContainer, execsEnded, execSessionInContainer } from "./exec-in-container.ts";
import { writeAtomic, writeExitRecord } from "./exit-file.ts";
import { Writer } from "./io.ts";
import { journalSink } from "./journal-sink.ts";
import { launch } from "./launch.ts";
import { removeDir } from "./monitor-dir.ts";
import { closeAll, drain, pumpOutput } from "./process-io.ts";
import { Frame, monitorFiles, type MonitorArgs } from "./protocol.ts";
import type { ProcessExit, Reaper } from "./reaper.ts";
import { report } from "./report.ts";
import { settleSoon } from "./settle.ts";

/**
 * The create and exec monitors: run the runtime, then hold the process's stdio, log it, serve
 * the attach and ctl sockets (a container's monitor also runs its execs), record the exit.
 * Returns the exit code of the monitor (0); a failure before the pid is reported throws.
 */
export async function supervise(a: MonitorArgs, reaper: Reaper): Promise<number> {
  const f = monitorFiles(a.dir);
  mkdirp(a.dir);
  writeAtomic(f.monitorPid, String(process.pid), undefined, false); // the monitor dir is runroot state
  trace("launching", { mode: a.mode, terminal: a.terminal, stdin: a.stdin, attachTimeoutMs: a.attachTimeoutMs });
  const proc = await launch(a, reaper);
  const exited = proc.exited;
  trace("launched", { pid: proc.pid });
  let log: CriLog | undefined;
  let attach: AttachServer | undefined;
  let ctl: CtlServer | undefined;
  let oom: OomWatch | undefined;
  const stdin = proc.stdin ?? proc.master;
  const input = stdin !== undefined ? new Writer(stdin, stdin !== proc.master) : undefined;
  try {
    if (a.logPath) log = new CriLog(a.logPath, a.logSizeMax, undefined, undefined, !!a.noSyncLog);
    // log_to_journald: the daemon names the journal socket in the monitor's environment
    if (log && a.mode === "create" && process.env.CRIO_MONITOR_JOURNAL) log.onRecord = await journalSink(a, process.env.CRIO_MONITOR_JOURNAL);
    const resize = (rows: number, cols: number) => {
      if (proc.master === undefined) throw new Error("the process has no terminal");
      setWinsize(proc.master, rows, cols);
    };
    attach = new AttachServer(
      f.attach,
      {
        stdin: (d) => input?.write(d),
        // a terminal has no separate stdin to close: stdin-once then only stops forwarding input
        closeStdin: () => void (proc.master === undefined && input?.close()),
        resize: (r, c) => tryIt(() => resize(r, c)),
      },
      { stdin: a.stdin, stdinOnce: a.stdinOnce },
    );
    ctl = new CtlServer(f.ctl, {
      resize,
      reopenLog: () => {
        if (!log) throw new Error("the process has no log file");
        log.reopen();
      },
      execSync: a.mode === "create" ? (r, out) => execInContainer(a, reaper, r, out) : undefined,
      exec: a.mode === "create" ? (r, conn) => execSessionInContainer(a, reaper, r, conn) : undefined,
    });
    if (a.mode === "create") oom = tryIt(() => OomWatch.forPid(proc.pid));
  } catch (e) {
    // the process exists but cannot be served: kill it, then report the failure
    attach?.close();
    ctl?.close();
    await killTree(proc.pid);
    await exited;
    closeAll(proc);
    throw e;
  }
  // the attach and ctl sockets listen already: the daemon may connect as soon as it reads this
  report({ pid: proc.pid }, true);
  if (a.mode === "create") settleSoon();

  if (a.mode === "exec" && !(await attach.firstClient(a.attachTimeoutMs))) {
    diag("warning", "no client attached to the exec session in time; killing it", { pid: proc.pid, timeoutMs: a.attachTimeoutMs });
    await killTree(proc.pid);
  }
  trace("serving", { clients: attach.clients });
  const pumps = pumpOutput(
    proc,
    (type, chunk) => {
      if (log) tryIt(() => log.write(streamOf(type), chunk));
      attach.send(type, chunk);
      // an exec session has one reader that matters: slow the process down rather than drop output
      if (a.mode === "exec") return attach.drained();
    },
    // an unterminated last line is logged when its stream ends
    (type) => tryIt(() => log?.flush(streamOf(type))),
  );
  const exit: ProcessExit = await exited;
  trace("exited", { exitCode: exit.exitCode });
  await drain(pumps);
  tryIt(() => log?.close());
  const oomKilled = tryIt(() => oom?.killed()) ?? false;
  if (a.exitDir) {
    try {
      writeExitRecord(a.exitDir, a.id, exit.exitCode, exit.at, oomKilled);
    } catch (e) {
      // the daemon will fall back to the runtime's state; attached clients still get the exit
      diag("error", "cannot write the exit file", { error: e, exitCode: exit.exitCode });
    }
  }
  await input?.close(0);
  await attach.finish(exit.exitCode);
  trace("finished", { exitCode: exit.exitCode });
  ctl.close();
  // execs die with the container's pid namespace: let them send their exit before this process goes
  await execsEnded(EXEC_END_MS);
  closeAll(proc);
  if (a.mode === "exec") removeDir(a.dir);
  return 0;
}

// --- internal ---

/** How long a container's monitor waits, once its container is gone, for its execs to report. */
const EXEC_END_MS = 2000;

function streamOf(type: number): "stdout" | "stderr" {
  return type === Frame.STDERR ? "stderr" : "stdout";
}
