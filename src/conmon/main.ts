import { messageOf } from "../errors.ts";
import { close, dup2, setCmdline, mkdirp, O, open, pollIn, read, releaseCleanFilePages, rmdir, setWinsize, unlink, write } from "../sys/libc.ts";
import { AttachServer } from "./attach.ts";
import { CriLog } from "./cri-log.ts";
import { CtlServer, type FrameSink, type SessionConn } from "./ctl.ts";
import { diag, setDiagFields } from "./diag.ts";
import { writeAtomic, writeExitRecord } from "./exit-file.ts";
import { Pump, Writer } from "./io.ts";
import { killTree } from "./kill-tree.ts";
import { launch, LaunchError, type Launched } from "./launch.ts";
import { OomWatch } from "./oom.ts";
import { applyExecRequest, decodeResize, encodeSync, Frame, monitorFiles, parseArgs, PROTOCOL, SYNC_FD, type CtlExecRequest, type CtlExecSyncRequest, type MonitorArgs, type SyncMessage } from "./protocol.ts";
import { Reaper, type ProcessExit } from "./reaper.ts";

/**
 * The monitor role, `crio conmon ARGS…` (DESIGN.md §4, contract in protocol.ts). Returns the
 * process exit code; the caller exits with it. 0: the process ran and its exit was recorded
 * (whatever its own exit code); 1: the runtime failed (reported on fd 3); 2: bad arguments.
 */
export async function runConmon(args: string[]): Promise<number> {
  if (args[0] === "--version" || args[0] === "version") {
    write(1, new TextEncoder().encode(`crio conmon protocol ${PROTOCOL}\n`));
    return 0;
  }
  let a: MonitorArgs;
  try {
    a = parseArgs(args);
  } catch (e) {
    report({ error: `invalid monitor arguments: ${messageOf(e)}` }, true);
    return 2;
  }
  const reaper = new Reaper();
  try {
    reaper.start(); // before a standby's wait: its request then finds the subreaper set up
    if (a.standby) {
      // it may wait long: give back what start-up left mapped and garbage first (as settle() does;
      // the code it runs when woken maps back in from the page cache). Waiting: ~20 → ~5 MB PSS.
      dropStartup();
      const line = awaitRequest();
      if (line === undefined) return 0; // the daemon closed the pipe (shut down or died): not needed
      try {
        a = applyExecRequest(a, line);
      } catch (e) {
        report({ error: `invalid ${a.mode} request: ${messageOf(e)}` }, true);
        return 2;
      }
      // a cold exec or create monitor's fd 2 is <dir>/monitor.log from the start (the daemon made the dir)
      if (a.mode === "exec" || a.mode === "create") tryIt(() => divertDiag(monitorFiles(a.dir).diag));
      // a container's monitor lives as long as it: let ps and tools find it by the container's id
      if (a.mode === "create") tryIt(() => retitle(a));
    }
    setDiagFields({ id: a.id });
    return a.mode === "exec-sync" ? await execSync(a, reaper) : await supervise(a, reaper);
  } catch (e) {
    if (!(e instanceof LaunchError)) diag("error", "monitor failed", { error: e });
    // an exec's dir goes before the report: once the daemon reads it, nothing of ours is left
    if (a.mode !== "create" && a.dir) removeDir(a.dir); // a standby without its request has no dir
    report({ error: messageOf(e) }, true);
    return 1;
  } finally {
    reaper.stop();
  }
}

// --- internal ---

/**
 * Sends each log record to the journal with conmon's fields: MESSAGE, CONTAINER_ID_FULL,
 * CONTAINER_ID (12 characters), CONTAINER_NAME (the runtime's name, from the bundle's
 * annotations), SYSLOG_IDENTIFIER (the container's own name), PRIORITY 6 (stdout) or 3 (stderr),
 * CONTAINER_PARTIAL_MESSAGE=true for a piece of a long line.
 */
async function journalSink(a: MonitorArgs, socket: string): Promise<(stream: "stdout" | "stderr", partial: boolean, payload: Uint8Array) => void> {
  const { JournalSocket } = await import("../sys/journal.ts");
  let ann: Record<string, string> = {};
  try {
    ann = (JSON.parse(await Bun.file(`${a.bundle}/config.json`).text()) as { annotations?: Record<string, string> }).annotations ?? {};
  } catch {}
  const j = new JournalSocket(socket);
  const fixed: Array<[string, string]> = [
    ["CONTAINER_ID_FULL", a.id],
    ["CONTAINER_ID", a.id.slice(0, 12)],
    ["CONTAINER_NAME", ann["io.kubernetes.cri-o.Name"] ?? a.id],
    ["SYSLOG_IDENTIFIER", ann["io.kubernetes.cri.container-name"] || a.id.slice(0, 12)],
  ];
  return (stream, partial, payload) => {
    const fields: Array<readonly [string, string | Uint8Array]> = [["MESSAGE", payload], ...fixed, ["PRIORITY", stream === "stderr" ? "3" : "6"]];
    if (partial) fields.push(["CONTAINER_PARTIAL_MESSAGE", "true"]);
    j.send(fields);
  };
}

/** How long output may keep flowing after the process exited (orphans holding the pipes). */
const DRAIN_MS = 2000;

/** How long a container's monitor waits, once its container is gone, for its execs to report. */
const EXEC_END_MS = 2000;

/** The execs running in this container's monitor (ctl exec-sync and exec). */
const execs = new Set<Promise<void>>();

function inFlight(p: Promise<void>): Promise<void> {
  execs.add(p);
  const done = () => void execs.delete(p);
  p.then(done, done); // a rejection is the caller's to handle; this only forgets the exec
  return p;
}

/** create and exec: hold stdio, log, serve attach and ctl, record the exit. */
async function supervise(a: MonitorArgs, reaper: Reaper): Promise<number> {
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
      execSync: a.mode === "create" ? (r, out) => inFlight(execInContainer(a, reaper, r, out)) : undefined,
      exec: a.mode === "create" ? (r, conn) => inFlight(execSessionInContainer(a, reaper, r, conn)) : undefined,
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
  if (a.mode === "create") setTimeout(settle, SETTLE_MS).unref();

  if (a.mode === "exec" && !(await attach.firstClient(a.attachTimeoutMs))) {
    diag("warning", "no client attached to the exec session in time; killing it", { pid: proc.pid, timeoutMs: a.attachTimeoutMs });
    await killTree(proc.pid);
  }
  trace("serving", { clients: attach.clients });
  const pumps = startPumps(a, proc, log, attach);
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
  if (execs.size > 0) await Promise.race([Promise.allSettled([...execs]), Bun.sleep(EXEC_END_MS)]);
  closeAll(proc);
  if (a.mode === "exec") removeDir(a.dir);
  return 0;
}

/**
 * A container's monitor lives as long as the container and mostly waits; its start-up (module
 * loading, the runtime's create, the sockets) is over once the pid is reported. Then give back
 * what only start-up needed: JSC's compiled code and the garbage (Bun.shrink, then a full GC,
 * with mimalloc purging freed pages at once: MIMALLOC_PURGE_DELAY=0 from the daemon), and the
 * page mappings of the start-up code (releaseCleanFilePages: they stay in the page cache, shared
 * with the daemon; what the monitor runs later maps back in). Measured with 20 containers: PSS
 * per monitor 4.3 → 2.9 MB, of which ~2.5 MB is Bun's own anonymous floor.
 */
function settle(): void {
  Bun.shrink(); // JSC drops its compiled code and shrinks the heap the next time it is idle
  setTimeout(dropStartup, SETTLE_GC_DELAY_MS).unref();
}

/** A full GC (mimalloc purges at once) and the start-up code's page mappings released. */
function dropStartup(): void {
  Bun.gc(true);
  tryIt(() => releaseCleanFilePages());
}

const SETTLE_MS = 1000;
const SETTLE_GC_DELAY_MS = 300;

/** Reads the process's output into the log and to attached clients. */
function startPumps(a: MonitorArgs, proc: Launched, log: CriLog | undefined, attach: AttachServer): Pump[] {
  const sink = (stream: "stdout" | "stderr", type: typeof Frame.STDOUT | typeof Frame.STDERR) => (chunk: Uint8Array) => {
    if (log) tryIt(() => log.write(stream, chunk));
    attach.send(type, chunk);
    // an exec session has one reader that matters: slow the process down rather than drop output
    if (a.mode === "exec") return attach.drained();
  };
  const streams: Array<[number | undefined, "stdout" | "stderr", typeof Frame.STDOUT | typeof Frame.STDERR]> = [
    [proc.master, "stdout", Frame.STDOUT],
    [proc.stdout, "stdout", Frame.STDOUT],
    [proc.stderr, "stderr", Frame.STDERR],
  ];
  const pumps: Pump[] = [];
  for (const [fd, stream, type] of streams) {
    if (fd === undefined) continue;
    const p = new Pump(fd, sink(stream, type));
    // an unterminated last line is logged when its stream ends
    void p.done.then(() => tryIt(() => log?.flush(stream)));
    pumps.push(p);
  }
  return pumps;
}

/**
 * ctl `exec-sync` (protocol.ts §6) in a container's monitor: `runtime exec -d` under this
 * monitor (its subreaper collects the process), output as frames on the ctl connection, the
 * timeout enforced on the process tree, then EXIT. Nothing it does can end the monitor: every
 * failure becomes an EXIT frame with the error.
 */
async function execInContainer(a: MonitorArgs, reaper: Reaper, r: CtlExecSyncRequest, out: FrameSink): Promise<void> {
  const ea: MonitorArgs = {
    ...a, mode: "exec", standby: false, id: r.id, dir: r.dir, terminal: false, stdin: false, stdinOnce: false,
    logPath: undefined, exitDir: undefined, timeoutMs: r.timeoutMs, attachTimeoutMs: 0,
  };
  let result: Record<string, unknown>;
  try {
    const proc = await launch(ea, reaper);
    const pumps = ([[proc.stdout, Frame.STDOUT], [proc.stderr, Frame.STDERR]] as const)
      .filter(([fd]) => fd !== undefined)
      .map(([fd, type]) => new Pump(fd!, (chunk) => out.send(type, chunk)));
    let timedOut = false;
    if (r.timeoutMs > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const expired = new Promise<true>((res) => (timer = setTimeout(() => res(true), r.timeoutMs)));
      timedOut = (await Promise.race([proc.exited, expired])) === true;
      clearTimeout(timer);
      if (timedOut) await killTree(proc.pid);
    }
    const exit = await proc.exited;
    await drain(pumps);
    closeAll(proc);
    result = { exitCode: exit.exitCode, timedOut };
  } catch (e) {
    if (!(e instanceof LaunchError)) diag("warning", "exec-sync failed", { error: e, exec: r.id });
    result = { error: messageOf(e) };
  }
  await endExec(ea.dir, out, result);
}

/**
 * ctl `exec` (protocol.ts §6) in a container's monitor: a streaming exec session on the ctl
 * connection — `runtime exec -d` under this monitor (with a terminal: the pty it hands over),
 * STARTED with the pid, the client's STDIN / RESIZE / CLOSE_STDIN to the process, its output
 * back, EXIT last. The client leaving kills the process tree. Failures become EXIT frames.
 */
async function execSessionInContainer(a: MonitorArgs, reaper: Reaper, r: CtlExecRequest, conn: SessionConn): Promise<void> {
  const ea: MonitorArgs = {
    ...a, mode: "exec", standby: false, id: r.id, dir: r.dir, terminal: r.terminal, stdin: r.stdin, stdinOnce: true,
    logPath: undefined, exitDir: undefined, timeoutMs: 0, attachTimeoutMs: 0,
  };
  // the client's frames may come before the process exists: keep them until it does
  const early: Array<[number, Uint8Array]> = [];
  let handle: ((type: number, p: Uint8Array) => void) | undefined;
  let gone = false;
  let kill: (() => void) | undefined;
  conn.onFrame((type, p) => (handle ? handle(type, p) : early.push([type, p])));
  conn.onGone(() => {
    gone = true;
    kill?.();
  });
  let result: Record<string, unknown>;
  try {
    const proc = await launch(ea, reaper);
    const input = r.stdin ? (proc.stdin ?? proc.master) : undefined;
    const writer = input !== undefined ? new Writer(input, input !== proc.master) : undefined;
    handle = (type, p) => {
      if (type === Frame.STDIN) writer?.write(p);
      else if (type === Frame.RESIZE) {
        const size = decodeResize(p);
        if (size && proc.master !== undefined) tryIt(() => setWinsize(proc.master!, size.rows, size.cols));
      } else if (type === Frame.CLOSE_STDIN && proc.master === undefined) void writer?.close();
    };
    let killed = false;
    kill = () => {
      if (killed) return;
      killed = true;
      void killTree(proc.pid);
    };
    await conn.send(Frame.STARTED, new TextEncoder().encode(JSON.stringify({ pid: proc.pid })));
    for (const [type, p] of early.splice(0)) handle(type, p);
    if (gone) kill();
    const streams = [[proc.master, Frame.STDOUT], [proc.stdout, Frame.STDOUT], [proc.stderr, Frame.STDERR]] as const;
    const pumps = streams.filter(([fd]) => fd !== undefined).map(([fd, type]) => new Pump(fd!, (chunk) => conn.send(type, chunk)));
    const exit = await proc.exited;
    await drain(pumps);
    await writer?.close(0);
    closeAll(proc);
    result = { exitCode: exit.exitCode };
  } catch (e) {
    if (!(e instanceof LaunchError)) diag("warning", "exec session failed", { error: e, exec: r.id });
    result = { error: messageOf(e) };
  }
  await endExec(ea.dir, conn, result);
}

/** The end of an exec in a container's monitor: its dir goes, then EXIT, then the connection. */
async function endExec(dir: string, out: FrameSink, result: Record<string, unknown>): Promise<void> {
  removeDir(dir); // before EXIT: once the client has it, nothing of this exec is left
  await out.send(Frame.EXIT, new TextEncoder().encode(JSON.stringify(result)));
  out.end();
  settleLater();
}

/** Lets the output still in the pipes reach its readers (≤ DRAIN_MS after the exit), then stops reading. */
async function drain(pumps: Pump[]): Promise<void> {
  await Promise.race([Promise.all(pumps.map((p) => p.done)), Bun.sleep(DRAIN_MS)]);
  for (const p of pumps) p.cancel();
}

/**
 * Settles again once execs have stopped for SETTLE_AFTER_EXEC_MS: what the exec path mapped and
 * compiled is given back. Not sooner: an exec probe (every 10 s by default) would fault it all
 * back in each time — measured, settling 1 s after each exec doubled the monitor's CPU per exec
 * (≈5 → ≈10 ms) for ≈0.8 MB less PSS, of which only ≈0.1 MB was private memory.
 */
function settleLater(): void {
  clearTimeout(settleTimer);
  settleTimer = setTimeout(settle, SETTLE_AFTER_EXEC_MS);
  settleTimer.unref();
}

let settleTimer: ReturnType<typeof setTimeout> | undefined;
const SETTLE_AFTER_EXEC_MS = 30_000;

/** exec-sync: output goes straight to the daemon's pipes; enforce the timeout; report the exit. */
async function execSync(a: MonitorArgs, reaper: Reaper): Promise<number> {
  const proc = await launch(a, reaper);
  const exited = proc.exited;
  report({ pid: proc.pid }, false);
  let timedOut = false;
  if (a.timeoutMs > 0) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<true>((r) => (timer = setTimeout(() => r(true), a.timeoutMs)));
    timedOut = (await Promise.race([exited, expired])) === true;
    clearTimeout(timer);
    if (timedOut) await killTree(proc.pid);
  }
  const exit = await exited;
  removeDir(a.dir); // before the report: the daemon's answer then leaves nothing behind
  report({ exitCode: exit.exitCode, timedOut }, true);
  return 0;
}

/**
 * A standby monitor's wait: blocks in poll(2) on fd 0 — no timer, no wakeup, nothing else to do
 * — until the daemon's request line arrives. Undefined at end of file before a full line (the
 * daemon closed its end, or died: the kernel closes it then) or on a line beyond REQUEST_MAX.
 */
function awaitRequest(): string | undefined {
  const buf = new Uint8Array(REQUEST_MAX);
  const dec = new TextDecoder();
  let text = "";
  try {
    for (;;) {
      pollIn(0, -1);
      const n = read(0, buf);
      if (n === 0) return undefined;
      if (n < 0) continue;
      text += dec.decode(buf.subarray(0, n), { stream: true });
      const nl = text.indexOf("\n");
      if (nl >= 0) return text.slice(0, nl);
      if (text.length > REQUEST_MAX) return undefined;
    }
  } catch (e) {
    diag("warning", "cannot read the standby request", { error: e });
    return undefined;
  }
}

/**
 * Shows a container monitor that started in standby (its argv names no container) as a cold one
 * would be seen: `<exe> conmon --mode create --id <id> …`, as long as the original argv has room.
 */
function retitle(a: MonitorArgs): void {
  const exe = process.execPath;
  const tries = [
    [exe, "conmon", "--mode", "create", "--id", a.id, "--container", a.container, "--runtime-command", JSON.stringify(a.runtime)],
    [exe, "conmon", "--mode", "create", "--id", a.id],
    ["crio", "conmon", "--id", a.id],
  ];
  for (const t of tries) if (setCmdline(t)) return;
  diag("warning", "no room to show the container id in the command line", { id: a.id });
}

/** Points fd 2 (diagnostics) at `path`, appending. */
function divertDiag(path: string): void {
  const fd = open(path, O.WRONLY | O.APPEND | O.CREAT, 0o600);
  try {
    dup2(fd, 2);
  } finally {
    close(fd);
  }
}

/** A request is one short JSON line (ids and a socket-length dir); anything longer is refused. */
const REQUEST_MAX = 8192;

/** Sends one message on the sync pipe; a daemon that went away is not an error. */
function report(m: SyncMessage, last: boolean): void {
  try {
    write(SYNC_FD, new TextEncoder().encode(encodeSync(m)));
  } catch (e) {
    diag("warning", "cannot report to the daemon", { error: e });
  }
  if (last) close(SYNC_FD);
}

function closeAll(proc: Launched): void {
  for (const fd of [proc.stdout, proc.stderr, proc.master]) if (fd !== undefined) close(fd);
}

/**
 * Removes an exec session's monitor dir (its files are all ours or the runtime's). With
 * CRIO_MONITOR_DEBUG set the diagnostics log (`monitor.log`) and so the dir are kept.
 */
function removeDir(dir: string): void {
  const f = monitorFiles(dir);
  for (const p of [f.attach, f.ctl, f.pid, f.monitorPid, f.console, f.runtimeLog, f.process]) tryIt(() => unlink(p));
  if (!DEBUG) tryIt(() => unlink(f.diag));
  try {
    rmdir(dir); // with CRIO_MONITOR_DEBUG a dir holding its monitor.log stays (ENOTEMPTY)
  } catch (e) {
    if (!DEBUG) diag("warning", "ignored failure", { error: e });
  }
}

/**
 * CRIO_MONITOR_DEBUG (inherited from the daemon's environment): trace the session's steps in
 * the diagnostics log and keep an exec session's log when it ends, for post-mortems.
 */
const DEBUG = !!process.env.CRIO_MONITOR_DEBUG;

function trace(msg: string, fields: Record<string, unknown>): void {
  if (DEBUG) diag("debug", msg, fields);
}

function tryIt<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    diag("warning", "ignored failure", { error: e });
    return undefined;
  }
}
