/**
 * The one builder of runtime command lines (runc, crun). Every invocation of a handler's runtime,
 * by the daemon (src/oci/runtime.ts) or by a monitor (src/conmon/launch.ts), is an argv made here
 * from the handler's prefix — binary, `--root`, and `--systemd-cgroup` with the systemd cgroup
 * driver — so no path can drop a global flag. The daemon hands the monitor that prefix on its
 * command line (MonitorArgs.runtime, src/conmon/protocol.ts).
 *
 * A leaf: no imports, so the monitor role may load it (test/unit/architecture.test.ts).
 */

/** What makes a handler's prefix. */
export interface RuntimeCommandOptions {
  /** The runtime binary. */
  path: string;
  /** runtime_root: its state directory. */
  root: string;
  /** cgroup_manager = "systemd": the runtime manages cgroups through systemd. */
  systemdCgroup?: boolean;
}

/** Options of `create`. */
export interface CreateArgs {
  bundle: string;
  pidFile: string;
  consoleSocket?: string;
  noPivot?: boolean;
  /** The runtime's own log (JSON), read on failure. */
  log?: string;
}

/** Options of `exec`. */
export interface ExecArgs {
  /** A file holding the OCI process JSON. */
  processPath: string;
  tty?: boolean;
  detach?: boolean;
  pidFile?: string;
  consoleSocket?: string;
  /** The runtime's own log (JSON), read on failure. */
  log?: string;
  /** `--debug`: the runtime logs its steps too (runc: "process exited" with the status, as it reaps). */
  debug?: boolean;
}

/** The argv of every runtime verb for one handler. */
export class RuntimeCommand {
  /** Binary and global flags; every argv starts with it. */
  readonly prefix: readonly string[];

  /** From a prefix made by `RuntimeCommand.of` (the monitor gets it on its command line). */
  constructor(prefix: readonly string[]) {
    if (prefix.length === 0 || !prefix[0]) throw new Error("a runtime command needs the runtime's path");
    this.prefix = [...prefix];
  }

  /** A handler's command: binary, `--root <root>`, and `--systemd-cgroup` with that driver. */
  static of(o: RuntimeCommandOptions): RuntimeCommand {
    return new RuntimeCommand([o.path, "--root", o.root, ...(o.systemdCgroup ? ["--systemd-cgroup"] : [])]);
  }

  /** The runtime binary. */
  get path(): string {
    return this.prefix[0] as string;
  }

  /** Whether the prefix selects the systemd cgroup driver. */
  get systemdCgroup(): boolean {
    return this.prefix.includes("--systemd-cgroup");
  }

  create(id: string, o: CreateArgs): string[] {
    return [
      ...this.#global(o.log),
      "create",
      "--bundle",
      o.bundle,
      "--pid-file",
      o.pidFile,
      ...(o.consoleSocket ? ["--console-socket", o.consoleSocket] : []),
      ...(o.noPivot ? ["--no-pivot"] : []),
      id,
    ];
  }

  start(id: string): string[] {
    return [...this.prefix, "start", id];
  }

  exec(id: string, o: ExecArgs): string[] {
    return [
      ...this.#global(o.log),
      ...(o.debug ? ["--debug"] : []),
      "exec",
      "--process",
      o.processPath,
      ...(o.tty ? ["--tty"] : []),
      ...(o.detach ? ["--detach"] : []),
      ...(o.pidFile ? ["--pid-file", o.pidFile] : []),
      ...(o.consoleSocket ? ["--console-socket", o.consoleSocket] : []),
      id,
    ];
  }

  /** Signal to the init process, or to every process with `all`. */
  kill(id: string, signal: string | number, all = false): string[] {
    return [...this.prefix, "kill", ...(all ? ["--all"] : []), id, String(signal)];
  }

  /** `update --resources <file>`: "-" (runc) or "/dev/stdin" (crun) reads them from stdin. */
  update(id: string, resourcesFile: string): string[] {
    return [...this.prefix, "update", "--resources", resourcesFile, id];
  }

  state(id: string): string[] {
    return [...this.prefix, "state", id];
  }

  delete(id: string, force = false): string[] {
    return [...this.prefix, "delete", ...(force ? ["--force"] : []), id];
  }

  list(): string[] {
    return [...this.prefix, "list", "--format", "json"];
  }

  pause(id: string): string[] {
    return [...this.prefix, "pause", id];
  }

  resume(id: string): string[] {
    return [...this.prefix, "resume", id];
  }

  features(): string[] {
    return [...this.prefix, "features"];
  }

  version(): string[] {
    return [this.path, "--version"];
  }

  // --- internal ---

  /** The prefix, with the runtime's log as global flags (they must precede the verb). */
  #global(log: string | undefined): string[] {
    return log ? [...this.prefix, "--log", log, "--log-format", "json"] : [...this.prefix];
  }
}
