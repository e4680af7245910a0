import { existsSync, rmSync } from "node:fs";
import { encodeCtlExecSync, EXEC_SYNC_OUTPUT_MAX, monitorFiles } from "../conmon/protocol.ts";
import { openCtl } from "./attach-client.ts";
import { RuntimeError } from "../errors.ts";
import { newId } from "../util/id.ts";
import { monitorDir, pidOf, writeProcessSpec, type MonitorBase } from "./spawn.ts";
import { startStandby, type ExecSyncMonitor, type Standby } from "./standby.ts";

/** A command to run to completion in a running container (CRI ExecSync). */
export interface ExecSyncOptions extends MonitorBase {
  containerId: string;
  /** The OCI process to run (runtime-spec `process`: args, env, cwd, user, …); never a terminal. */
  process: object;
  /** Kill the process (and its descendants) after this many ms; 0 or absent = no limit. */
  timeoutMs?: number;
  /** Output kept per stream; the rest is read and dropped. Default 16 MiB (CRI-O's cap). */
  maxOutput?: number;
  /** The exec session id (names `<socketDir>/<execId>/`); default a new id. */
  execId?: string;
}

/** What ExecSync returns. After a timeout the process is already gone; `exitCode` is its status. */
export interface ExecSyncResult {
  exitCode: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  timedOut: boolean;
}

/**
 * Runs a process in a container under an exec-sync monitor (`runtime exec -d`): its stdout and
 * stderr go straight into pipes read here, each capped at `maxOutput`; the monitor enforces the
 * timeout by killing the process tree and waits until it is gone before reporting. The monitor
 * is a warm one from `standby` when one waits (else one started now); either gets its request
 * on fd 0 (protocol.ts §1), and `standby` is topped up afterwards. Rejects with the runtime's
 * error (kind unknown) when the process could not be started.
 */
export async function execSync(o: ExecSyncOptions, standby?: Standby<"exec-sync">): Promise<ExecSyncResult> {
  const execId = o.execId ?? newId();
  const dir = monitorDir(o.socketDir, execId);
  const max = o.maxOutput ?? EXEC_SYNC_OUTPUT_MAX;
  let m: ExecSyncMonitor | undefined;
  try {
    writeProcessSpec(dir, o.process, false);
    const request = { id: execId, container: o.containerId, dir, timeoutMs: o.timeoutMs ?? 0 };
    m = standby?.take();
    if (!m?.hand(request)) {
      // none waiting, or it died since (EPIPE): a fresh one, which reads the request once loaded
      m?.kill();
      m = startStandby("exec-sync", o);
      if (!m.hand(request)) throw new RuntimeError("internal", `exec in container "${o.containerId}": the monitor exited before its request`);
    }
    const stdout = collect(m.stdout, max);
    const stderr = collect(m.stderr, max);
    try {
      const what = `exec in container "${o.containerId}"`;
      const [started] = await m.monitor.messages(1, 60_000, what);
      pidOf(started, m.monitor, what);
      // the monitor kills at timeoutMs; allow it time to do so before giving up on it
      const limit = (o.timeoutMs || 0) > 0 ? o.timeoutMs! + 30_000 : 2 ** 31 - 1;
      const [done] = await m.monitor.messages(1, limit, what);
      if (!done || !("exitCode" in done)) throw new RuntimeError("internal", `${what}: the monitor exited without reporting the exit code`);
      // output ends when the last holder of the pipes is gone; a backgrounded child may keep them
      await Promise.race([Promise.all([stdout.done, stderr.done]), Bun.sleep(DRAIN_MS)]);
      return { exitCode: done.exitCode, stdout: stdout.take(), stderr: stderr.take(), timedOut: done.timedOut };
    } finally {
      stdout.cancel();
      stderr.cancel();
    }
  } finally {
    m?.close();
    rmSync(dir, { recursive: true, force: true });
    // take() started the replacement already; this only retries after a failed start
    standby?.fill();
  }
}

/**
 * ExecSync through the container's own monitor (ctl `exec-sync`, protocol.ts §6): no monitor
 * process is started, so an exec costs the runtime's `exec` and little else. Resolves undefined
 * when that monitor cannot do it (it predates the request, or is not there): the caller then
 * runs the exec under an exec-sync monitor. Output is capped per stream as in execSync.
 */
export async function execSyncInContainerMonitor(o: ExecSyncOptions): Promise<ExecSyncResult | undefined> {
  const ctl = monitorFiles(monitorDir(o.socketDir, o.containerId)).ctl;
  if (!existsSync(ctl)) return undefined;
  const execId = o.execId ?? newId();
  const dir = monitorDir(o.socketDir, execId);
  const max = o.maxOutput ?? EXEC_SYNC_OUTPUT_MAX;
  const what = `exec in container "${o.containerId}"`;
  writeProcessSpec(dir, o.process, false);
  const stdout = capped(max);
  const stderr = capped(max);
  try {
    const c = await openCtl(ctl, encodeCtlExecSync({ id: execId, dir, timeoutMs: o.timeoutMs ?? 0 }), { stdout: stdout.add, stderr: stderr.add });
    if (!c) return undefined; // not listening: a monitor that is gone (the caller's fallback reports it)
    try {
      // the monitor kills at timeoutMs; allow it time to do so before giving up on it
      const limit = (o.timeoutMs || 0) > 0 ? o.timeoutMs! + 30_000 : 2 ** 31 - 1;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([c.exitInfo, new Promise<"late">((res) => (timer = setTimeout(() => res("late"), limit)))]);
      clearTimeout(timer);
      if (r === "late") throw new RuntimeError("internal", `${what}: no exit within ${limit} ms`);
      // the connection ended or sent EXIT: the first answer is known ("unsupported": a text line)
      if ((await c.first) === "unsupported") return undefined;
      if (!r) throw new RuntimeError("internal", `${what}: the monitor closed the connection before the exit`);
      if (typeof r.error === "string") throw new RuntimeError("unknown", `${what}: ${r.error}`);
      if (!Number.isInteger(r.exitCode)) throw new RuntimeError("internal", `${what}: the monitor sent no exit code`);
      return { exitCode: r.exitCode as number, stdout: stdout.take(), stderr: stderr.take(), timedOut: r.timedOut === true };
    } finally {
      c.conn.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- internal ---

const DRAIN_MS = 1000;

/** Reads an fd to its end, keeping the first `max` bytes. */
function collect(fd: number, max: number) {
  const out = capped(max);
  const reader = Bun.file(fd).stream().getReader() as ReadableStreamDefaultReader<Uint8Array>;
  const done = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        out.add(value);
      }
    } catch {
      // cancelled or closed
    }
  })();
  return {
    done,
    take: out.take,
    cancel: () => void reader.cancel().catch(() => {}),
  };
}

/** Keeps the first `max` bytes given to add(); the rest is dropped. */
function capped(max: number) {
  const chunks: Uint8Array[] = [];
  let kept = 0;
  return {
    add: (data: Uint8Array) => {
      if (kept >= max) return;
      const part = data.length <= max - kept ? data : data.subarray(0, max - kept);
      chunks.push(part);
      kept += part.length;
    },
    take: () => Buffer.concat(chunks) as Uint8Array,
  };
}
