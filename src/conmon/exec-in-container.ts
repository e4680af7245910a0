import { messageOf } from "../errors.ts";
import { killTree } from "../sys/kill-tree.ts";
import { setWinsize } from "../sys/libc.ts";
import type { FrameSink, SessionConn } from "./ctl.ts";
import { diag, tryIt } from "./diag.ts";
import { Writer } from "./io.ts";
import { launch, LaunchError } from "./launch.ts";
import { removeDir } from "./monitor-dir.ts";
import { awaitExit, closeAll, drain, pumpOutput } from "./process-io.ts";
import { decodeResize, Frame, type CtlExecRequest, type CtlExecSyncRequest, type MonitorArgs } from "./protocol.ts";
import type { Reaper } from "./reaper.ts";
import { settleLater } from "./settle.ts";

/**
 * ctl `exec-sync` (protocol.ts §6) in a container's monitor: `runtime exec -d` under this
 * monitor (its subreaper collects the process), output as frames on the ctl connection, the
 * timeout enforced on the process tree, then EXIT. Nothing it does can end the monitor: every
 * failure becomes an EXIT frame with the error.
 */
export function execInContainer(a: MonitorArgs, reaper: Reaper, r: CtlExecSyncRequest, out: FrameSink): Promise<void> {
  const ea = execArgs(a, r, { terminal: false, stdin: false, stdinOnce: false, timeoutMs: r.timeoutMs });
  return inFlight(
    runExec(ea, "exec-sync", out, async () => {
      const proc = await launch(ea, reaper);
      const pumps = pumpOutput(proc, (type, chunk) => out.send(type, chunk));
      const { exit, timedOut } = await awaitExit(proc, r.timeoutMs);
      await drain(pumps);
      closeAll(proc);
      return { exitCode: exit.exitCode, timedOut };
    }),
  );
}

/**
 * ctl `exec` (protocol.ts §6) in a container's monitor: a streaming exec session on the ctl
 * connection — `runtime exec -d` under this monitor (with a terminal: the pty it hands over),
 * STARTED with the pid, the client's STDIN / RESIZE / CLOSE_STDIN to the process, its output
 * back, EXIT last. The client leaving kills the process tree. Failures become EXIT frames.
 */
export function execSessionInContainer(a: MonitorArgs, reaper: Reaper, r: CtlExecRequest, conn: SessionConn): Promise<void> {
  const ea = execArgs(a, r, { terminal: r.terminal, stdin: r.stdin, stdinOnce: true, timeoutMs: 0 });
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
  return inFlight(
    runExec(ea, "exec session", conn, async () => {
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
      const pumps = pumpOutput(proc, (type, chunk) => conn.send(type, chunk));
      const { exit } = await awaitExit(proc, 0);
      await drain(pumps);
      await writer?.close(0);
      closeAll(proc);
      return { exitCode: exit.exitCode };
    }),
  );
}

/** Waits (≤ `ms`) for the execs still running in this monitor to send their exit. */
export async function execsEnded(ms: number): Promise<void> {
  if (execs.size > 0) await Promise.race([Promise.allSettled([...execs]), Bun.sleep(ms)]);
}

// --- internal ---

/** The execs running in this container's monitor (ctl exec-sync and exec). */
const execs = new Set<Promise<void>>();

function inFlight(p: Promise<void>): Promise<void> {
  execs.add(p);
  const done = () => void execs.delete(p);
  p.then(done, done); // a rejection is the caller's to handle; this only forgets the exec
  return p;
}

/** The arguments of an exec in the monitor's container: the container's, with the exec's own. */
function execArgs(a: MonitorArgs, r: { id: string; dir: string }, o: Pick<MonitorArgs, "terminal" | "stdin" | "stdinOnce" | "timeoutMs">): MonitorArgs {
  return { ...a, ...o, mode: "exec", standby: false, id: r.id, dir: r.dir, logPath: undefined, exitDir: undefined, attachTimeoutMs: 0 };
}

/**
 * Runs an exec and ends it: its dir goes, then EXIT with its result (or the error: a failure is
 * the exec's, never the monitor's), then the connection.
 */
async function runExec(ea: MonitorArgs, what: string, out: FrameSink, body: () => Promise<Record<string, unknown>>): Promise<void> {
  let result: Record<string, unknown>;
  try {
    result = await body();
  } catch (e) {
    if (!(e instanceof LaunchError)) diag("warning", `${what} failed`, { error: e, exec: ea.id });
    result = { error: messageOf(e) };
  }
  removeDir(ea.dir); // before EXIT: once the client has it, nothing of this exec is left
  await out.send(Frame.EXIT, new TextEncoder().encode(JSON.stringify(result)));
  out.end();
  settleLater();
}
