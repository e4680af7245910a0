/**
 * The daemon's side of the container monitor (DESIGN.md §4): starting `crio conmon` for
 * containers and exec sessions, talking to running monitors, and learning of exits from the
 * exits directory. The contract with the monitor is src/conmon/protocol.ts.
 */
import { join } from "node:path";
import type { ExitRecord } from "../conmon/protocol.ts";
import { detectCgroupLayout, type CgroupLayout } from "../sys/cgroup.ts";
import { procCmdline } from "../sys/process.ts";
import { messageOf } from "../errors.ts";
import { attach, type AttachConnection, type AttachOutput } from "./attach-client.ts";
import { placeMonitor, removeMonitorCgroup, type MonitorCgroupRequest } from "./cgroup.ts";
import { attachSocketPath, removeMonitorDir, reopenLog, resize } from "./control.ts";
import { execSessionInContainerMonitor, spawnExec, type SpawnExecOptions } from "./exec.ts";
import { execSyncDirect } from "./exec-direct.ts";
import { execSync, execSyncInContainerMonitor, type ExecSyncOptions, type ExecSyncResult } from "./exec-sync.ts";
import { ExitWatcher, readExitFile, removeExitFile } from "./exits.ts";
import { MonitorLiveness } from "./liveness.ts";
import { monitorPidOf, spawnMonitor, type MonitorBase, type SpawnMonitorOptions } from "./spawn.ts";
import { Standby } from "./standby.ts";

export type { ExitRecord } from "../conmon/protocol.ts";
export { EXEC_SYNC_OUTPUT_MAX, LOG_LINE_MAX, parseLogLine, type LogRecord } from "../conmon/protocol.ts";
export { attach, type AttachConnection, type AttachOutput } from "./attach-client.ts";
export type { MonitorCgroupRequest } from "./cgroup.ts";
export { attachSocketPath, removeMonitorDir, reopenLog, resize } from "./control.ts";
export { spawnExec, type SpawnExecOptions } from "./exec.ts";
export { execSync, type ExecSyncOptions, type ExecSyncResult } from "./exec-sync.ts";
export { ExitWatcher, readExitFile, removeExitFile } from "./exits.ts";
export { MonitorLiveness } from "./liveness.ts";
export { monitorPidOf, monitorPidOfAsync, selfCommand, spawnMonitor, type MonitorBase, type SpawnMonitorOptions } from "./spawn.ts";
export {
  Standby,
  StandbyPool,
  startStandby,
  type CreateMonitor,
  type ExecSessionMonitor,
  type ExecSyncMonitor,
  type StandbyKind,
  type StandbyKinds,
  type StandbyStats,
  type WaitingMonitor,
} from "./standby.ts";

/** Node-wide monitor settings: how to run the monitor, the runtime, and the runroot dirs. */
export interface MonitorConfig extends MonitorBase {
  /** paths.exits */
  exitDir: string;
  /** Exec-sync monitors kept warm (standby.ts); default 1, 0 = start each one on demand. */
  execSyncStandby?: number;
  /** Exec (session) monitors kept warm for streaming exec; default 1, 0 = start each on demand. */
  execStandby?: number;
  /** Container monitors kept warm for CreateContainer; default 1, 0 = start each on demand. */
  createStandby?: number;
  /**
   * ExecSync run by the daemon itself, the runtime's `exec` in the foreground, no monitor
   * (exec-direct.ts; default); false: through a monitor (execSyncInContainerMonitor says which).
   */
  execSyncDirect?: boolean;
  /**
   * ExecSync (when not direct) and streaming exec sessions through the container's own monitor
   * when it can (default); false: always a monitor of their own (warm standbys).
   */
  execSyncInContainerMonitor?: boolean;
}

type PerCall<T> = Omit<T, keyof MonitorBase | "exitDir">;

/**
 * What the daemon reads and removes of any monitor, whichever runtime handler started it: the
 * monitor dirs (sockets, pid file) under `socketDir` and the exit files under `exitDir`.
 */
export class MonitorFiles {
  readonly #liveness: MonitorLiveness;
  constructor(readonly dirs: { socketDir: string; exitDir: string }) {
    this.#liveness = new MonitorLiveness(dirs.socketDir);
  }

  /** Whether container `id`'s monitor process is running (the watchdog asks for every container: liveness.ts). */
  alive(id: string): Promise<boolean> {
    return this.#liveness.alive(id);
  }

  /** Reopens the container's log file (ReopenContainerLog). */
  reopenLog(id: string): Promise<void> {
    return reopenLog(this.dirs.socketDir, id);
  }

  /** Resizes the container's terminal. */
  resize(id: string, rows: number, cols: number): Promise<void> {
    return resize(this.dirs.socketDir, id, rows, cols);
  }

  /** The container's attach socket. */
  attachSocketPath(id: string): string {
    return attachSocketPath(this.dirs.socketDir, id);
  }

  /** Attaches to container (or exec session) `id`. */
  attach(id: string, out: AttachOutput): Promise<AttachConnection> {
    return attach(this.attachSocketPath(id), out);
  }

  /** The exit of container `id`, once its monitor recorded it. */
  readExit(id: string): Promise<ExitRecord | undefined> {
    return readExitFile(this.dirs.exitDir, id);
  }

  /**
   * Removes what the monitor of `id` left once its container is gone: its cgroup (waiting up to
   * 5 s for an exiting monitor to leave it, then killing what is still there; should that fail
   * too it throws and keeps the dir, so that a retry finds the cgroup), its dir and its exit files.
   */
  async remove(id: string): Promise<void> {
    await removeMonitorCgroup(join(this.dirs.socketDir, id));
    await removeMonitorDir(this.dirs.socketDir, id);
    await removeExitFile(this.dirs.exitDir, id);
  }

  /**
   * Kills the monitor of `id` and waits (≤ 3 s) until it is gone: recovery's undo of a container
   * that has no record. Only a process that names `id` in its command line (a container's monitor
   * retitles itself with its id) is killed, and only it, never its process group: a pid file of a
   * half-made create may point at a pid reused since, or at a standby now serving another container.
   */
  async abandon(id: string): Promise<void> {
    const pid = monitorPidOf(this.dirs.socketDir, id);
    if (!pid || !processNames(pid, id)) return;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      return; // gone
    }
    const end = Date.now() + 3000;
    while (monitorPidOf(this.dirs.socketDir, id) === pid && Date.now() < end) await Bun.sleep(10);
  }

  /** A watcher of the exits directory; call start() on it. */
  watchExits(onExit: (id: string, exit: ExitRecord) => void, rescanMs?: number): ExitWatcher {
    return new ExitWatcher(this.dirs.exitDir, onExit, rescanMs);
  }
}

/** The monitor functions bound to one MonitorConfig: a runtime handler's monitors and its warm standbys. */
export class Monitors extends MonitorFiles {
  /** The warm exec-sync monitors of this runtime; close() kills them. */
  readonly standby: Standby<"exec-sync">;
  /** The warm exec (session) monitors of this runtime; close() kills them. */
  readonly execStandby: Standby<"exec">;
  /** The warm container monitors of this runtime; close() kills them. */
  readonly createStandby: Standby<"create">;

  #layout: CgroupLayout | undefined;

  constructor(readonly config: MonitorConfig) {
    super(config);
    this.standby = new Standby("exec-sync", config, config.execSyncStandby ?? 1);
    this.execStandby = new Standby("exec", config, config.execStandby ?? 1);
    this.createStandby = new Standby("create", config, config.createStandby ?? 1);
  }

  /** Kills the waiting exec-sync, exec and container monitors (daemon shutdown; a replaced runtime). */
  close(): void {
    this.standby.close();
    this.execStandby.close();
    this.createStandby.close();
  }

  /**
   * spawnMonitor for a container: resolves with its init pid and the monitor's pid; with
   * `cgroup`, the monitor is then moved to its cgroup (monitor_cgroup, cgroup.ts): `cgroup` is
   * where it went, or `cgroupWarning` why it stayed where it started (the container runs anyway).
   */
  async spawn(
    o: PerCall<SpawnMonitorOptions> & { cgroup?: MonitorCgroupRequest },
  ): Promise<{ pid: number; monitorPid: number; cgroup?: string; cgroupWarning?: string }> {
    const { cgroup, ...rest } = o;
    const r = await spawnMonitor({ ...this.config, ...rest }, this.createStandby);
    if (!cgroup) return r;
    try {
      return { ...r, cgroup: await placeMonitor(cgroup, r.monitorPid, join(this.config.socketDir, o.id), (this.#layout ??= detectCgroupLayout())) };
    } catch (e) {
      return { ...r, cgroupWarning: `monitor of container ${o.id} stays in the daemon's cgroup: ${messageOf(e)}` };
    }
  }

  /**
   * execSync in a running container: the runtime's exec run by the daemon, no monitor woken
   * (exec-direct.ts); with execSyncDirect false, through the container's own monitor, else — a
   * monitor from before that existed — under an exec-sync monitor (a warm one).
   */
  async execSync(o: PerCall<ExecSyncOptions>): Promise<ExecSyncResult> {
    const full = { ...this.config, ...o };
    if (this.config.execSyncDirect !== false) return execSyncDirect(full);
    if (this.config.execSyncInContainerMonitor !== false) {
      const r = await execSyncInContainerMonitor(full);
      if (r) return r;
    }
    return execSync(full, this.standby);
  }

  /**
   * A streaming exec session in the container's own monitor; undefined when it cannot run one
   * (the caller then uses spawnExec and attaches).
   */
  execSessionInContainer(o: PerCall<SpawnExecOptions>, out: AttachOutput): Promise<{ conn: AttachConnection; pid: number } | undefined> {
    if (this.config.execSyncInContainerMonitor === false) return Promise.resolve(undefined);
    return execSessionInContainerMonitor({ ...this.config, exitDir: undefined, ...o }, out);
  }

  /** spawnExec: a streaming exec session; attach to the returned attachPath. */
  spawnExec(o: PerCall<SpawnExecOptions> & { exitDir?: string }) {
    return spawnExec({ ...this.config, exitDir: undefined, ...o }, this.execStandby);
  }
}

/** Whether process `pid`'s command line contains `text`. */
function processNames(pid: number, text: string): boolean {
  try {
    return procCmdline(pid)?.includes(text) ?? false;
  } catch {
    return false;
  }
}
