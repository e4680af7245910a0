import { accept, close, pipe, pollIn, readText, recvFd, setNonBlocking, unixListen, unlink } from "../sys/libc.ts";
import { RuntimeCommand } from "../oci/command.ts";
import { shortSocketPath } from "../sys/short-path.ts";
import { spawn } from "../sys/spawn.ts";
import { OutputPipe, TailReader } from "./io.ts";
import { EXEC_STDERR_FD, EXEC_STDOUT_FD, monitorFiles, type MonitorArgs } from "./protocol.ts";
import type { ProcessExit, Reaper } from "./reaper.ts";

/** The process the runtime created, and our ends of its stdio. */
export interface Launched {
  /** The container's init (create) or the exec'd process. */
  pid: number;
  /** Settles when `pid` has exited and been reaped (registered before any other reaping). */
  exited: Promise<ProcessExit>;
  /**
   * Its stdout and stderr pipes (no terminal; not exec-sync), read since the runtime started:
   * what the runtime and the process wrote so far waits there for attach().
   */
  stdout?: OutputPipe;
  stderr?: OutputPipe;
  /** Write end of its stdin pipe (stdin requested, no terminal). */
  stdin?: number;
  /** The pty master (terminal). */
  master?: number;
}

/** The runtime failed; the message is its own error text. */
export class LaunchError extends Error {
  override name = "LaunchError";
}

/**
 * Runs `<runtime> create` (create mode) or `<runtime> exec -d` (exec modes) for `a`, with the
 * process's stdio wired as the mode needs:
 * - pipes we hold (stdin only when asked), which the runtime passes through to the process;
 * - with a terminal, a console socket on which the runtime sends the pty master (SCM_RIGHTS);
 * - exec-sync: our fds 4 and 5, the daemon's pipes, so output bypasses the monitor.
 * The runtime logs JSON to `<dir>/runtime.log`; on failure its last error is the message, else
 * the tail of what it wrote to stderr. Its output pipes are read while it runs (it writes to them
 * too, and a full pipe would block it).
 * The process is re-parented to us (subreaper) when the runtime exits; a quick one may already
 * be a zombie by then, so the reaper is held until its exit is awaited (`exited`).
 */
export async function launch(a: MonitorArgs, reaper: Reaper): Promise<Launched> {
  const release = reaper.hold();
  try {
    return await launchHeld(a, reaper);
  } finally {
    release();
  }
}

// --- internal ---

async function launchHeld(a: MonitorArgs, reaper: Reaper): Promise<Launched> {
  const f = monitorFiles(a.dir);
  unlink(f.pid);
  unlink(f.runtimeLog);
  // the daemon's prefix (MonitorArgs.runtime) through the one builder: no flag of it is dropped here.
  // The console socket through a short alias of the monitor dir, for us and for the runtime
  // (which connects to it from its own process: /proc/<our pid>/fd/…), so any dir depth fits.
  const cmd = new RuntimeCommand(a.runtime);
  const con = a.terminal ? shortSocketPath(f.console) : undefined;
  const consoleSocket = con?.childPath(process.pid);
  const argv =
    a.mode === "create"
      ? // no_pivot: the daemon sets CRIO_MONITOR_NO_PIVOT in its monitors' environment (CRI-O passes --no-pivot)
        cmd.create(a.container, { bundle: a.bundle!, pidFile: f.pid, consoleSocket, log: f.runtimeLog, noPivot: !!process.env.CRIO_MONITOR_NO_PIVOT })
      : cmd.exec(a.container, { processPath: f.process, detach: true, pidFile: f.pid, consoleSocket, log: f.runtimeLog });

  const ours: number[] = []; // fds we keep on success
  const theirs: number[] = []; // fds only the runtime needs
  let consoleFd = -1;
  let runtimeStderr = -1; // with a terminal: a pipe for the runtime's own stderr
  let ownStderr: TailReader | undefined; // the runtime's stderr beside a terminal, read while it runs
  const reading: OutputPipe[] = []; // every pipe the runtime writes to, read while it runs
  try {
    let stdio: Array<number | "ignore">;
    const out: Partial<Launched> = {};
    const fds: { stdout?: number; stderr?: number } = {};
    if (a.mode === "exec-sync") stdio = ["ignore", EXEC_STDOUT_FD, EXEC_STDERR_FD];
    else if (a.terminal) {
      unlink(f.console);
      consoleFd = unixListen(con!.path, 1);
      // a real pipe read with read(2): Bun's "pipe" would start two pool threads for good
      const [r, w] = pipe();
      runtimeStderr = r;
      theirs.push(w);
      setNonBlocking(r);
      stdio = ["ignore", "ignore", w];
    } else {
      // the process gets one end of each pipe (through the runtime), we keep the other
      const pair = (weRead: boolean): [mine: number, theirs: number] => {
        const [r, w] = pipe();
        const mine = weRead ? r : w;
        ours.push(mine);
        theirs.push(weRead ? w : r);
        setNonBlocking(mine);
        return [mine, weRead ? w : r];
      };
      stdio = ["ignore", 0, 0];
      if (a.stdin) [out.stdin, stdio[0]] = pair(false);
      [fds.stdout, stdio[1]] = pair(true);
      [fds.stderr, stdio[2]] = pair(true);
    }

    const p = spawn(argv, { stdio: stdio as ["ignore", "ignore", "ignore"], env: process.env });
    reaper.own(p.pid);
    for (const fd of theirs.splice(0)) close(fd);
    if (a.mode === "exec-sync") for (const fd of [EXEC_STDOUT_FD, EXEC_STDERR_FD]) close(fd);
    if (fds.stdout !== undefined) reading.push((out.stdout = new OutputPipe(fds.stdout)));
    if (fds.stderr !== undefined) reading.push((out.stderr = new OutputPipe(fds.stderr)));
    if (runtimeStderr >= 0) ownStderr = new TailReader(runtimeStderr);
    let exited = false;
    const code = p.exited.then((c) => ((exited = true), c));

    if (consoleFd >= 0) {
      const master = await receiveMaster(
        consoleFd,
        () => exited,
        () => ownStderr?.readNow() ?? false,
      );
      if (master >= 0) ours.push((out.master = master));
    }
    await ownStderr?.readUntil(() => exited);
    const status = await code;
    reaper.disown(p.pid);
    if (status !== 0) throw new LaunchError(await runtimeError(f.runtimeLog, ownStderr ?? out.stderr, status));
    for (const r of reading) r.hold();
    if (a.terminal && out.master === undefined) throw new LaunchError("the runtime did not send a terminal on the console socket");
    const pid = Number((readText(f.pid) ?? "").trim());
    if (!(pid > 0)) throw new LaunchError(`the runtime wrote no pid to ${f.pid}`);
    if (out.master !== undefined) setNonBlocking(out.master);
    return { pid, exited: reaper.wait(pid), ...out };
  } catch (e) {
    for (const r of reading) r.cancel();
    for (const fd of [...ours, ...theirs]) close(fd);
    throw e;
  } finally {
    close(runtimeStderr);
    if (consoleFd >= 0) {
      close(consoleFd);
      unlink(f.console);
    }
    con?.release();
  }
}

/**
 * Waits for the runtime to connect to the console socket and send the pty master; `readStderr`
 * takes what the runtime wrote to its stderr meanwhile (true when there was some).
 */
async function receiveMaster(listener: number, runtimeExited: () => boolean, readStderr: () => boolean): Promise<number> {
  let busy = false;
  for (;;) {
    // block in poll(2) for short slices rather than spin: the runtime connects within ~30 ms,
    // and few iterations keep the JIT (and its threads) out of a process that lives for days
    const conn = pollIn(listener, busy ? 0 : 50) ? accept(listener) : -1;
    if (conn >= 0) {
      try {
        // the runtime sends right after connecting; a dead runtime gives EOF, not a hang
        if (!pollIn(conn, 10_000)) throw new LaunchError("the runtime connected to the console socket but sent nothing");
        return recvFd(conn).fd;
      } finally {
        close(conn);
      }
    }
    if (runtimeExited()) return -1;
    busy = readStderr(); // a runtime that has much to say: read on at once
    await Bun.sleep(0); // let the runtime's exit be noticed
  }
}

/**
 * The runtime's own words for a failure: its JSON log, else the tail of what it wrote to stderr
 * (all of it: the pipe is read to its end, or for FAILED_DRAIN_MS), else its status.
 */
async function runtimeError(logPath: string, stderr: OutputPipe | TailReader | undefined, status: number): Promise<string> {
  const log = readText(logPath) ?? "";
  let msg = "";
  for (const line of log.split("\n")) {
    try {
      const r = JSON.parse(line) as { level?: string; msg?: string };
      if ((r.level === "error" || r.level === "fatal") && r.msg) msg = r.msg;
    } catch {
      // not JSON (a Go panic, say): ignore here, stderr has it
    }
  }
  if (msg) return msg;
  // without a terminal the runtime's stderr is the process's stderr pipe
  await stderr?.ended(FAILED_DRAIN_MS);
  const text = (stderr?.tail(4 * ERROR_MAX) ?? "").trim();
  return text ? text.slice(-ERROR_MAX) : `runtime exited with status ${status}`;
}

/** How much of the runtime's stderr makes its error message (characters). */
const ERROR_MAX = 4096;
/** How long a failed runtime's stderr may stay open (a child of it holding the pipe) before it is read. */
const FAILED_DRAIN_MS = 1000;
