import { rmSync } from "node:fs";
import { EXEC_SYNC_OUTPUT_MAX, type MonitorArgs } from "../conmon/protocol.ts";
import { RuntimeError } from "../errors.ts";
import { close, pipe } from "../sys/libc.ts";
import { newId } from "../util/id.ts";
import { monitorDir, pidOf, startMonitor, writeProcessSpec, type MonitorBase } from "./spawn.ts";

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
 * timeout by killing the process tree and waits until it is gone before reporting. Rejects with
 * the runtime's error (kind unknown) when the process could not be started.
 */
export async function execSync(o: ExecSyncOptions): Promise<ExecSyncResult> {
  const execId = o.execId ?? newId();
  const dir = monitorDir(o.socketDir, execId);
  const max = o.maxOutput ?? EXEC_SYNC_OUTPUT_MAX;
  const fds: number[] = [];
  try {
    writeProcessSpec(dir, o.process, false);
    const [outR, outW] = pipe();
    const [errR, errW] = pipe();
    fds.push(outR, errR);
    const args: MonitorArgs = {
      mode: "exec-sync", id: execId, container: o.containerId, runtime: o.runtimePath, runtimeRoot: o.runtimeRoot,
      dir, terminal: false, stdin: false, stdinOnce: false, logSizeMax: 0, timeoutMs: o.timeoutMs ?? 0, attachTimeoutMs: 0,
    };
    let m;
    try {
      m = startMonitor(o, args, undefined, [outW, errW]);
    } finally {
      close(outW);
      close(errW);
    }
    const stdout = collect(outR, max);
    const stderr = collect(errR, max);
    try {
      const what = `exec in container "${o.containerId}"`;
      const [started] = await m.messages(1, 60_000, what);
      pidOf(started, m, what);
      // the monitor kills at timeoutMs; allow it time to do so before giving up on it
      const limit = (o.timeoutMs || 0) > 0 ? o.timeoutMs! + 30_000 : 2 ** 31 - 1;
      const [done] = await m.messages(1, limit, what);
      if (!done || !("exitCode" in done)) throw new RuntimeError("internal", `${what}: the monitor exited without reporting the exit code`);
      // output ends when the last holder of the pipes is gone; a backgrounded child may keep them
      await Promise.race([Promise.all([stdout.done, stderr.done]), Bun.sleep(DRAIN_MS)]);
      return { exitCode: done.exitCode, stdout: stdout.take(), stderr: stderr.take(), timedOut: done.timedOut };
    } finally {
      m.closeSync();
      stdout.cancel();
      stderr.cancel();
    }
  } finally {
    for (const fd of fds) close(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- internal ---

const DRAIN_MS = 1000;

/** Reads an fd to its end, keeping the first `max` bytes. */
function collect(fd: number, max: number) {
  const chunks: Uint8Array[] = [];
  let kept = 0;
  const reader = Bun.file(fd).stream().getReader() as ReadableStreamDefaultReader<Uint8Array>;
  const done = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        if (kept < max) {
          const part = value.length <= max - kept ? value : value.subarray(0, max - kept);
          chunks.push(part);
          kept += part.length;
        }
      }
    } catch {
      // cancelled or closed
    }
  })();
  return {
    done,
    take: () => Buffer.concat(chunks) as Uint8Array,
    cancel: () => void reader.cancel().catch(() => {}),
  };
}
