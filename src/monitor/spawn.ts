import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { buildArgs, isValidId, monitorFiles, parseSync, type CreateRequest, type MonitorArgs, type SyncMessage } from "../conmon/protocol.ts";
import { RuntimeError, invalid } from "../errors.ts";
import { close, pipe } from "../sys/libc.ts";
import { procCmdline, procCmdlineAsync } from "../sys/process.ts";
import { spawn } from "../sys/spawn.ts";
import type { Standby } from "./standby.ts";

/** The command that runs this program again: `[execPath]` compiled, `[bun, main.ts]` from source. */
export function selfCommand(): string[] {
  return Bun.isStandaloneExecutable ? [process.execPath] : [process.execPath, Bun.main];
}

/** What every monitor needs to know about the node. */
export interface MonitorBase {
  /** How to run `crio` again; `crio conmon` is appended (see selfCommand()). */
  selfCommand: string[];
  /** The handler's runtime command prefix (OciRuntime.command.prefix), handed to the monitor as is. */
  runtime: readonly string[];
  /** Parent of the per-monitor dirs `<socketDir>/<id>/` (paths.monitors). */
  socketDir: string;
  /** Extra environment for the monitor and the runtime. */
  env?: Record<string, string>;
}

/** A container to create under a new monitor. */
export interface SpawnMonitorOptions extends MonitorBase {
  id: string;
  bundle: string;
  /** The CRI log file (the kubelet's log_path under its log_directory). */
  logPath: string;
  /** Where the exit file is written (paths.exits). */
  exitDir: string;
  terminal?: boolean;
  stdin?: boolean;
  stdinOnce?: boolean;
  /** log_size_max in bytes; 0 or less = unlimited. */
  logSizeMax?: number;
  /** The handler's no_sync_log: the monitor does not fsync the log on reopen and at the end. */
  noSyncLog?: boolean;
  /** How long `runtime create` may take (container_create_timeout); default 240 s. */
  timeoutMs?: number;
}

/**
 * Starts `crio conmon` for a container, detached in its own session so it outlives the daemon;
 * resolves when the runtime created the container (its init pid and the monitor's pid). Rejects
 * with the runtime's error text (kind unknown), deadline-exceeded after `timeoutMs` (the monitor
 * and the runtime are then killed), or internal when the monitor died without a word.
 */
export async function spawnMonitor(o: SpawnMonitorOptions, standby?: Standby<"create">): Promise<{ pid: number; monitorPid: number }> {
  const running = monitorPidOf(o.socketDir, o.id);
  if (running) throw new RuntimeError("already-exists", `a monitor (pid ${running}) already runs container "${o.id}"`);
  const dir = monitorDir(o.socketDir, o.id);
  mkdirSync(o.exitDir, { recursive: true, mode: 0o700 });
  // what a warm monitor is handed, and (with the rest) a cold monitor's command line
  const req: CreateRequest = {
    id: o.id,
    dir,
    bundle: o.bundle,
    logPath: o.logPath,
    terminal: !!o.terminal,
    stdin: !!o.stdin,
    stdinOnce: !!o.stdinOnce,
    logSizeMax: o.logSizeMax ?? 0,
    noSyncLog: !!o.noSyncLog,
  };
  const args: MonitorArgs = { mode: "create", container: o.id, runtime: [...o.runtime], exitDir: o.exitDir, timeoutMs: 0, attachTimeoutMs: 0, ...req };
  const diag = monitorFiles(dir).diag;
  try {
    // a warm monitor when one waits (protocol.ts §1, standby create), else one started now
    let warm = standby?.take(false); // its replacement starts once this create is done
    if (warm && (warm.exitDir !== o.exitDir || !warm.hand(req))) {
      warm.kill();
      warm = undefined;
    }
    const started = warm?.monitor ?? startMonitor(o, args, diag);
    // a warm monitor opens <dir>/monitor.log itself once handed its request
    const m = warm ? { ...started, diagTail: () => tail(diag) } : started;
    try {
      const [first] = await m.messages(1, o.timeoutMs ?? 240_000, `runtime create for container "${o.id}"`);
      return { pid: pidOf(first, m, `create container "${o.id}"`), monitorPid: m.pid };
    } finally {
      if (warm) warm.close();
      else m.closeSync();
    }
  } catch (e) {
    // nothing runs: leave nothing behind (the runtime's own state is the caller's to delete)
    rmSync(dir, { recursive: true, force: true });
    throw e;
  } finally {
    standby?.fill();
  }
}

// --- shared with exec-sync.ts and exec.ts ---

/** The pid of the live monitor of `id` (from its monitor.pid), or undefined. */
export function monitorPidOf(socketDir: string, id: string): number | undefined {
  if (!isValidId(id)) return undefined;
  try {
    const pid = Number(readFileSync(monitorFiles(join(socketDir, id)).monitorPid, "utf8").trim());
    // a recycled pid is not our monitor: check that it runs `… conmon …`
    return pid > 0 && procCmdline(pid)?.split("\0").includes("conmon") ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** monitorPidOf with its two reads on the thread pool (the watchdog asks for every running container every 5 s). */
export async function monitorPidOfAsync(socketDir: string, id: string): Promise<number | undefined> {
  if (!isValidId(id)) return undefined;
  try {
    const pid = Number((await readFile(monitorFiles(join(socketDir, id)).monitorPid, "utf8")).trim());
    return pid > 0 && (await procCmdlineAsync(pid))?.split("\0").includes("conmon") ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Validates an id and makes `<socketDir>/<id>/`. Its depth is free: the sockets in it are bound
 * and connected through short aliases of the dir (sys/short-path.ts), never their full paths.
 */
export function monitorDir(socketDir: string, id: string): string {
  if (!isValidId(id)) throw invalid(`invalid container or exec id "${id}"`);
  const dir = join(socketDir, id);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** Writes an exec process spec to the monitor dir, with `terminal` set as asked. */
export function writeProcessSpec(dir: string, spec: object, terminal: boolean): void {
  writeFileSync(monitorFiles(dir).process, JSON.stringify({ ...spec, terminal }), { mode: 0o600 });
}

/** A running monitor and its sync pipe. */
export interface StartedMonitor {
  pid: number;
  /** Reads `n` sync messages; fewer when the monitor closed the pipe. Kills it on timeout. */
  messages(n: number, timeoutMs: number, what: string): Promise<SyncMessage[]>;
  /** Closes our end of the sync pipe. */
  closeSync(): void;
  /** Resolves with the monitor's exit code. */
  exited: Promise<number>;
  /** The tail of the monitor's diagnostics log. */
  diagTail(): string;
}

/** Spawns the monitor with fd 3 (and for exec-sync fds 4 and 5; a standby's fd 0) wired; detached, unref'd. */
export function startMonitor(base: MonitorBase, args: MonitorArgs, diagPath: string | undefined, extraFds: number[] = [], stdinFd?: number): StartedMonitor {
  const [syncR, syncW] = pipe();
  let diagFd: number | "ignore" = "ignore";
  try {
    if (diagPath) diagFd = openSync(diagPath, "a", 0o600);
    // fd 3 is the sync pipe; exec-sync adds the output pipes as fds 4 and 5 (protocol.ts §2)
    const stdio: Array<number | "ignore"> = [stdinFd ?? "ignore", "ignore", diagFd, syncW, ...extraFds];
    const proc = spawn([...base.selfCommand, "conmon", ...buildArgs(args)], {
      stdio: stdio as ["ignore", "ignore", "ignore"],
      detached: true,
      cwd: "/", // a monitor lives for the container's life: hold no directory of the daemon's
      env: monitorEnv(base.env),
    });
    proc.unref();
    const sync = new SyncReader(syncR, proc.pid);
    return {
      pid: proc.pid,
      exited: proc.exited,
      messages: (n, timeoutMs, what) => sync.read(n, timeoutMs, what),
      closeSync: () => sync.close(),
      diagTail: () => tail(diagPath),
    };
  } catch (e) {
    close(syncR);
    throw e;
  } finally {
    close(syncW);
    if (typeof diagFd === "number") closeSync(diagFd);
  }
}

/** The pid in a sync message, or the error it carries as a RuntimeError. */
export function pidOf(m: SyncMessage | undefined, monitor: StartedMonitor, what: string): number {
  if (m && "pid" in m) return m.pid;
  if (m && "error" in m) throw new RuntimeError("unknown", `${what}: ${m.error}`);
  const diag = monitor.diagTail();
  throw new RuntimeError("internal", `${what}: the monitor exited without reporting${diag ? `: ${diag}` : ""}`);
}

// --- internal ---

/**
 * The daemon's environment minus what belongs to the daemon alone (systemd notify and sockets),
 * plus JSC settings that shrink each monitor, which runs for days doing little: JSC's mini VM
 * mode (footprint over throughput; it also stops the JSCWarmUp thread that keeps pre-faulted
 * heap blocks, ≈ −700 KB), no concurrent-JIT thread (≈ −130 KB) and one GC marker (≈ −80 KB) —
 * anonymous memory per monitor, measured on the compiled binary — and mimalloc returning freed
 * pages at once rather than after a delay (the monitor's settle step relies on it). The OCI
 * runtime ignores them.
 */
function monitorEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { ...MONITOR_JSC, ...runtimeEnv(extra) };
}

/** The OCI runtime's environment when the daemon runs it for a monitor's work (exec-direct.ts): the monitor's, less the JSC settings. */
export function runtimeEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !DAEMON_ONLY.has(k)) env[k] = v;
  return { ...env, ...extra };
}

const MONITOR_JSC = { BUN_JSC_forceMiniVMMode: "1", BUN_JSC_useConcurrentJIT: "0", BUN_JSC_numberOfGCMarkers: "1", MIMALLOC_PURGE_DELAY: "0" };

const DAEMON_ONLY = new Set(["NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID"]);

/** Reads sync lines from the pipe, keeping what arrived beyond the lines asked for. */
class SyncReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf = "";
  #dec = new TextDecoder();
  #closed = false;

  constructor(
    readonly fd: number,
    readonly pid: number,
  ) {
    this.#reader = Bun.file(fd).stream().getReader() as ReadableStreamDefaultReader<Uint8Array>;
  }

  async read(n: number, timeoutMs: number, what: string): Promise<SyncMessage[]> {
    const out: SyncMessage[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
    try {
      for (;;) {
        for (let nl; out.length < n && (nl = this.#buf.indexOf("\n")) >= 0; this.#buf = this.#buf.slice(nl + 1)) out.push(parseSync(this.#buf.slice(0, nl)));
        if (out.length >= n || this.#closed) return out;
        const r = await Promise.race([this.#reader.read(), expired]);
        if (r === "timeout") {
          killGroup(this.pid);
          throw new RuntimeError("deadline-exceeded", `${what} timed out after ${timeoutMs} ms`);
        }
        if (r.done) this.#closed = true;
        else this.#buf += this.#dec.decode(r.value, { stream: true });
      }
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.#reader.cancel().catch(() => {});
    close(this.fd);
  }
}

/** SIGKILLs the monitor's process group (it leads its own session; the runtime is in it). */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

function tail(path: string | undefined): string {
  if (!path) return "";
  try {
    const lines = readFileSync(path, "utf8").trim().split("\n");
    return lines.slice(-3).join("; ");
  } catch {
    return "";
  }
}
