import { readFileSync, rmSync } from "node:fs";
import { EXEC_SYNC_OUTPUT_MAX, monitorFiles } from "../conmon/protocol.ts";
import { messageOf, RuntimeError } from "../errors.ts";
import { RuntimeCommand } from "../oci/command.ts";
import { killTree } from "../sys/kill-tree.ts";
import { exitedPidfds, pidfdClose, pidfdOpen } from "../sys/pidfd.ts";
import { spawn } from "../sys/spawn.ts";
import { newId } from "../util/id.ts";
import type { ExecSyncOptions, ExecSyncResult } from "./exec-sync.ts";
import { monitorDir, runtimeEnv, writeProcessSpec } from "./spawn.ts";

/**
 * ExecSync with no monitor: the daemon runs the runtime's `exec` in the foreground (not -d), as
 * its own child. The runtime is the process's parent and subreaper; it passes the process's
 * output on to our pipes and exits with its status (128 + signal when killed). No monitor process
 * wakes up for a probe: a Bun process that wakes maps megabytes of the binary's code back in
 * (bench/RESULTS.md, "probe"), which made every probed container's monitor the largest on a node.
 *
 * - Timeout: the process and its descendants are killed (sys/kill-tree.ts; the pid is the
 *   runtime's pid file, held by a pidfd so that a recycled pid is never signalled); timedOut.
 * - A backgrounded child that keeps the output pipes open keeps runc in the foreground after the
 *   process exited (runc copies the output until it ends). Once the process is gone, the output
 *   may flow for DRAIN_MS more; then the status is the one runc logged as it reaped the process
 *   (`--debug`: "process exited" with pid and status) and runc is killed, so that ExecSync
 *   returns at the process's exit, as with CRI-O's conmon (the child runs on; its writes fail).
 *   A runtime that logs no such line is waited for.
 * - The runtime failed to start the process (no pid file when it exited): RuntimeError "unknown"
 *   with the runtime's own error (its JSON log, else its stderr, else its status). The runtime
 *   killed by someone else: RuntimeError "unknown" too (its exit is not the process's status).
 * Output is capped per stream at `maxOutput`, the rest read and dropped.
 */
export async function execSyncDirect(o: ExecSyncOptions): Promise<ExecSyncResult> {
  const execId = o.execId ?? newId();
  const dir = monitorDir(o.socketDir, execId);
  const f = monitorFiles(dir);
  const max = o.maxOutput ?? EXEC_SYNC_OUTPUT_MAX;
  const timeoutMs = o.timeoutMs ?? 0;
  const what = `exec in container "${o.containerId}"`;
  let watch: ProcessWatch | undefined;
  try {
    writeProcessSpec(dir, o.process, false);
    const argv = new RuntimeCommand(o.runtime).exec(o.containerId, { processPath: f.process, pidFile: f.pid, log: f.runtimeLog, debug: true });
    let p: ReturnType<typeof spawn<"ignore", "pipe", "pipe">>;
    try {
      p = spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: runtimeEnv(o.env), cwd: "/" });
    } catch (e) {
      throw new RuntimeError("unknown", `${what}: ${messageOf(e)}`);
    }
    const stdout = collect(p.stdout, max);
    const stderr = collect(p.stderr, max);
    watch = new ProcessWatch(f.pid);
    let runtimeExited = false;
    const exited = p.exited.then((code) => {
      runtimeExited = true;
      return code;
    });
    let timedOut = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (timeoutMs > 0)
      timer = setTimeout(() => {
        timedOut = true;
        void watch!.kill(() => runtimeExited);
      }, timeoutMs);
    let code: number;
    try {
      const outlived = { status: undefined as number | undefined };
      code = await Promise.race([exited, lingering(p.pid, exited, watch, f.runtimeLog, outlived)]);
      // killed here for outliving the process: its status, not the kill's
      if (outlived.status !== undefined) code = outlived.status;
      else if (p.signalCode) {
        // killed by someone else: its exit is not the process's status (which may still run, as
        // after a runtime killed under a monitor)
        throw new RuntimeError("unknown", `${what}: the runtime was killed by ${p.signalCode} (exit ${code})`);
      }
    } finally {
      clearTimeout(timer);
    }
    // the runtime's end closes our pipes; what it still copies arrives within DRAIN_MS
    await Promise.race([Promise.all([stdout.done, stderr.done]), Bun.sleep(DRAIN_MS)]);
    stdout.cancel();
    stderr.cancel();
    if (!watch.started()) throw new RuntimeError("unknown", `${what}: ${runtimeError(f.runtimeLog, stderr.take(), code)}`);
    return { exitCode: code, stdout: stdout.take(), stderr: stderr.take(), timedOut };
  } finally {
    watch?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** runc's debug line at the reaping of a process (signals.go): `{"msg":"process exited","pid":N,"status":S}`. */
export function reapedStatus(log: string, pid: number): number | undefined {
  for (const line of log.split("\n")) {
    if (!line.includes('"process exited"')) continue;
    try {
      const r = JSON.parse(line) as { msg?: unknown; pid?: unknown; status?: unknown };
      if (r.msg === "process exited" && r.pid === pid && Number.isInteger(r.status)) return r.status as number;
    } catch {
      // not JSON: not the line
    }
  }
  return undefined;
}

/**
 * The runtime's own words for a failure to start the process: the last error of its JSON log
 * (debug lines are not errors), else the tail of what it wrote to stderr, else its status.
 */
export function runtimeError(logPath: string, stderr: Uint8Array, status: number): string {
  let msg = "";
  for (const line of readText(logPath).split("\n")) {
    try {
      const r = JSON.parse(line) as { level?: string; msg?: string };
      if ((r.level === "error" || r.level === "fatal") && r.msg) msg = r.msg;
    } catch {
      // not JSON (a Go panic, say): its stderr has it
    }
  }
  if (msg) return msg;
  const text = new TextDecoder().decode(stderr).trim();
  return text ? text.slice(-ERROR_MAX) : `runtime exited with status ${status}`;
}

// --- internal ---

/** How long output may flow after the process exited (its orphans holding the pipes). */
const DRAIN_MS = 1000;
/** How often a runtime still running is checked for a process already gone (most execs end before the first check). */
const LINGER_POLL_MS = 100;
const ERROR_MAX = 4096;

/**
 * Settles with the process's status when the runtime outlives it: the process is gone, the
 * runtime is still running DRAIN_MS later (copying the output of a child that holds the pipes),
 * and it logged the status as it reaped the process. The status goes to `out` and the runtime
 * is killed. Never settles otherwise (the runtime's own exit is awaited beside it).
 */
async function lingering(runtimePid: number, exited: Promise<number>, watch: ProcessWatch, logPath: string, out: { status?: number }): Promise<number> {
  let done = false;
  void exited.then(() => (done = true));
  for (;;) {
    await Bun.sleep(LINGER_POLL_MS);
    if (done) return new Promise<number>(() => {});
    if (!watch.gone()) continue;
    await Promise.race([exited, Bun.sleep(DRAIN_MS)]);
    if (done) return new Promise<number>(() => {});
    const status = reapedStatus(readText(logPath), watch.pid!);
    if (status === undefined) return new Promise<number>(() => {}); // a runtime that does not say: wait for it
    out.status = status; // before the kill: `exited` settles the race as soon as the runtime is gone
    try {
      process.kill(runtimePid, "SIGKILL"); // our own child, not yet reaped: not a recycled pid
    } catch {
      // exited meanwhile
    }
    await exited;
    return status;
  }
}

/** The exec'd process, from the runtime's pid file, held by a pidfd once read. */
class ProcessWatch {
  pid: number | undefined;
  #fd: number | undefined;
  #gone = false;

  constructor(readonly pidFile: string) {}

  /** Whether the runtime wrote the pid file (the process was started). */
  started(): boolean {
    this.#read();
    return this.pid !== undefined;
  }

  /** True once the process has exited (false while its pid is not known yet). */
  gone(): boolean {
    this.#read();
    if (this.pid === undefined) return false;
    if (!this.#gone && this.#fd !== undefined && exitedPidfds([this.#fd]).size > 0) this.#gone = true;
    return this.#gone;
  }

  /** Kills the process and its descendants once its pid is known (while the runtime runs). */
  async kill(runtimeExited: () => boolean): Promise<void> {
    while (!this.started()) {
      if (runtimeExited()) return;
      await Bun.sleep(10);
    }
    if (!this.gone()) await killTree(this.pid!);
  }

  close(): void {
    if (this.#fd !== undefined) pidfdClose(this.#fd);
    this.#fd = undefined;
  }

  #read(): void {
    if (this.pid !== undefined) return;
    const pid = Number(readText(this.pidFile).trim());
    if (!(pid > 0)) return;
    this.pid = pid;
    this.#fd = pidfdOpen(pid);
    // already reaped by the runtime (a quick process), or no pidfds: count it as gone
    if (this.#fd === undefined) this.#gone = true;
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** Reads a stream to its end, keeping the first `max` bytes. */
function collect(stream: ReadableStream<Uint8Array>, max: number) {
  const chunks: Uint8Array[] = [];
  let kept = 0;
  const reader = stream.getReader();
  const done = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        if (kept >= max) continue;
        const part = value.length <= max - kept ? value : value.subarray(0, max - kept);
        chunks.push(part);
        kept += part.length;
      }
    } catch {
      // cancelled
    }
  })();
  return {
    done,
    take: () => Buffer.concat(chunks) as Uint8Array,
    cancel: () => void reader.cancel().catch(() => {}),
  };
}
