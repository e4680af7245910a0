/**
 * A runtime handler ([crio.runtime.runtimes.NAME]) as one object: its OCI runtime (binary, root,
 * cgroup driver flag; every command line from oci/command.ts), what that runtime supports, and its
 * monitors with their warm standbys, which run `runtime create` and `exec` with the same command
 * prefix. The registry (registry.ts) builds one per configured handler and replaces it when a
 * reload changes what it was built from.
 */
import type { Logger } from "../log/index.ts";
import { Monitors, selfCommand, type ExecSyncResult } from "../monitor/index.ts";
import { OciRuntime, type RuntimeFeatures } from "../oci/index.ts";
import type { Paths } from "../paths.ts";
import { JOURNAL_SOCKET } from "../sys/journal.ts";
import { kernelAtLeast } from "../sys/process.ts";
import type { FeaturesCache } from "./features-cache.ts";
import { usernsSupport, usernsSupported } from "./userns-support.ts";

/** A runtime handler as the Status RPC lists it. */
export interface HandlerFeatures {
  name: string;
  /** The runtime knows "rro" (`features`, or a static record by version) and the kernel has mount_setattr (≥ 5.12). */
  recursiveReadOnlyMounts: boolean;
  /** Pods in user namespaces of their own: the node and the handler's runtime support them (userns-support.ts). */
  userNamespaces: boolean;
}

/** A handler's entry of the configuration ([crio.runtime.runtimes.NAME]), as far as it is read here. */
export interface HandlerConfig {
  /** runtime_path; "" = the handler's name looked up in $PATH. */
  runtimePath: string;
  runtimeRoot: string;
  /** monitor_path; "" = this program. */
  monitorPath: string;
  /** monitor_env: KEY=value. */
  monitorEnv: readonly string[];
  noSyncLog: boolean;
  /** container_create_timeout, seconds. */
  containerCreateTimeout: number;
}

/** The configuration the handlers read, re-read on every call (a reload may change it). */
export interface HandlersSettings {
  runtimes: Readonly<Record<string, HandlerConfig>>;
  defaultRuntime: string;
  /** log_to_journald: container monitors also send each log record to the journal. */
  logToJournald: boolean;
  /** no_pivot: `runtime create --no-pivot`. */
  noPivot: boolean;
  /** The monitor_cgroup in effect for a handler (conmon_cgroup wins when set). */
  monitorCgroupOf(name: string): string;
}

/** What every handler shares: the settings, the node's paths and cgroup driver, the log. */
export interface HandlerContext {
  settings: () => HandlersSettings;
  paths: Paths;
  cgroupManager: "systemd" | "cgroupfs";
  log: Logger;
  /** The runtimes' `features` answers kept across restarts (features-cache.ts); none: asked at every start. */
  featuresCache?: FeaturesCache;
}

/** A container for the handler's runtime to create under a new monitor. */
export interface CreateOptions {
  id: string;
  bundle: string;
  logPath: string;
  terminal: boolean;
  stdin: boolean;
  stdinOnce: boolean;
  logSizeMax: number;
  /** Used when the handler is no longer configured; else its container_create_timeout. */
  timeoutMs: number;
  /** The pod's cgroup parent: the monitor goes beside it (monitor_cgroup). */
  cgroupParent: string;
}

/** One configured runtime handler: its OCI runtime, features and monitors. */
export class RuntimeHandler {
  /** The runc/crun driver of this handler. */
  readonly runtime: OciRuntime;
  /** Its monitors and warm standbys (they run this handler's runtime prefix). */
  readonly monitors: Monitors;
  #features?: Promise<RuntimeFeatures>;

  /** Built from handler `name`'s entry `h`, whose runtime binary is `path`. */
  constructor(
    readonly name: string,
    path: string,
    h: HandlerConfig,
    readonly ctx: HandlerContext,
  ) {
    const c = ctx.settings();
    this.runtime = new OciRuntime({ name, path, root: h.runtimeRoot, systemdCgroup: ctx.cgroupManager === "systemd" });
    this.monitors = new Monitors({
      selfCommand: h.monitorPath ? [h.monitorPath] : selfCommand(),
      runtime: this.runtime.command.prefix,
      socketDir: ctx.paths.monitors,
      exitDir: ctx.paths.exits,
      env: {
        ...Object.fromEntries(h.monitorEnv.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)])),
        // log_to_journald: container monitors also send each log record to the journal
        // (CRIO_JOURNAL_SOCKET overrides the socket, for tests)
        ...(c.logToJournald ? { CRIO_MONITOR_JOURNAL: process.env.CRIO_JOURNAL_SOCKET || JOURNAL_SOCKET } : {}),
        // no_pivot: `runtime create --no-pivot` (for a root on a ramdisk, where pivot_root fails)
        ...(c.noPivot ? { CRIO_MONITOR_NO_PIVOT: "1" } : {}),
      },
    });
  }

  /** What the runtime supports (cached, and kept across restarts): `features`, or a static record by version. */
  features(): Promise<RuntimeFeatures> {
    const cache = this.ctx.featuresCache;
    this.#features ??= cache ? cache.features(this.runtime.path, () => this.runtime.features()) : this.runtime.features();
    return this.#features;
  }

  /** The handler as Status lists it: rro needs the runtime's "rro" and a kernel with mount_setattr (5.12). */
  async status(): Promise<HandlerFeatures> {
    const f = await this.features().catch(() => undefined);
    return { name: this.name, recursiveReadOnlyMounts: kernelAtLeast(5, 12) && (f?.rro ?? false), userNamespaces: usernsSupported(this.ctx.paths, f) };
  }

  /** Why pods of this handler cannot have user namespaces of their own here, or undefined when they can. */
  async usernsSupport(): Promise<string | undefined> {
    return usernsSupport(this.ctx.paths, await this.features().catch(() => undefined));
  }

  /**
   * Runs `runtime create` under a new monitor (a warm one when one waits), with this handler's
   * container_create_timeout and no_sync_log, and moves the monitor to its cgroup
   * (monitor_cgroup); a monitor that stays in the daemon's cgroup is logged, not an error.
   */
  async create(o: CreateOptions): Promise<{ pid: number; monitorPid: number }> {
    const c = this.ctx.settings();
    const h = c.runtimes[this.name];
    const cgroup = { manager: this.ctx.cgroupManager, setting: h ? c.monitorCgroupOf(this.name) : "", parent: o.cgroupParent, id: o.id };
    const { cgroupParent: _p, timeoutMs, ...rest } = o;
    const r = await this.monitors.spawn({ ...rest, timeoutMs: h ? h.containerCreateTimeout * 1000 : timeoutMs, noSyncLog: h?.noSyncLog, cgroup });
    if (r.cgroupWarning) this.ctx.log.warn(r.cgroupWarning, { id: o.id });
    return r;
  }

  /** ExecSync: in the container's own monitor when it can, else under an exec-sync monitor. */
  execSync(o: { id: string; process: object; timeoutMs: number }): Promise<ExecSyncResult> {
    return this.monitors.execSync({ containerId: o.id, process: o.process, timeoutMs: o.timeoutMs });
  }

  /** Kills its waiting monitors (daemon shutdown; a handler replaced by a reload). */
  close(): void {
    this.monitors.close();
  }
}
