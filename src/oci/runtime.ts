import { readdir } from "node:fs/promises";
import { ExecError, run } from "../sys/exec.ts";
import { RuntimeError, wrap, type ErrorKind } from "../errors.ts";
import { RuntimeCommand } from "./command.ts";
import type { Resources, RuntimeState } from "./spec-types.ts";

/**
 * The OCI runtime driver: runc or crun, executed once per operation through sys/exec.ts, every
 * argv from the handler's RuntimeCommand (command.ts). `create` and `exec` are run by the monitor
 * (conmon role) with the same command's prefix (`command.prefix`, MonitorArgs.runtime); everything
 * else is here. Known error texts of both runtimes map to error kinds.
 */

/** How to run one runtime handler. */
export interface OciRuntimeOptions {
  /** Handler name ("runc", "crun", …). */
  name: string;
  /** Binary path. */
  path: string;
  /** runtime_root: the runtime's state directory (e.g. /run/runc). */
  root: string;
  /** Let the runtime manage cgroups through systemd (cgroup_manager = "systemd"). */
  systemdCgroup?: boolean;
  /** Per-operation deadline; default 60 s. */
  timeoutMs?: number;
}

/** What the runtime supports, from `features` or a static record for runtimes without it. */
export interface RuntimeFeatures {
  /** Where the answer came from. */
  source: "features" | "static";
  ociVersionMax?: string;
  mountOptions: string[];
  namespaces: string[];
  /** Recursive read-only mounts ("rro"). */
  rro: boolean;
  /** idmapped mounts. */
  idmap: boolean;
  seccomp: boolean;
  apparmor: boolean;
  selinux: boolean;
  cgroup: { v1: boolean; v2: boolean; systemd: boolean };
}

/** A runc/crun driver bound to one binary and state root. */
export class OciRuntime {
  readonly name: string;
  readonly path: string;
  readonly root: string;
  readonly systemdCgroup: boolean;
  /** The one builder of this handler's runtime command lines. */
  readonly command: RuntimeCommand;
  #timeoutMs: number;
  #features?: Promise<RuntimeFeatures>;

  constructor(o: OciRuntimeOptions) {
    this.name = o.name;
    this.path = o.path;
    this.root = o.root;
    this.systemdCgroup = o.systemdCgroup ?? false;
    this.command = RuntimeCommand.of({ path: o.path, root: o.root, systemdCgroup: this.systemdCgroup });
    this.#timeoutMs = o.timeoutMs ?? 60_000;
  }

  /** Starts a created container (runs its process). */
  async start(id: string): Promise<void> {
    await this.#run(this.command.start(id), "start", id);
  }

  /** The container's state, or undefined when the runtime does not know it. */
  async state(id: string): Promise<RuntimeState | undefined> {
    let out: string;
    try {
      out = await this.#run(this.command.state(id), "state", id);
    } catch (e) {
      if (e instanceof RuntimeError && e.kind === "not-found") return undefined;
      throw e;
    }
    try {
      return JSON.parse(out) as RuntimeState;
    } catch {
      throw new RuntimeError("internal", `${this.name} state ${id}: unreadable output`);
    }
  }

  /** Every container the runtime knows under this root. */
  async list(): Promise<RuntimeState[]> {
    // A state root that is missing or empty (a fresh node, a clean restart) holds no container:
    // the runtime (a Go or C program started for this) would answer [] (recovery asks each handler).
    if (this.root && (await readdir(this.root).catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? [] : undefined)))?.length === 0) return [];
    const out = await this.#run(this.command.list(), "list");
    const v = JSON.parse(out.trim() || "null") as RuntimeState[] | null;
    return v ?? [];
  }

  /** Sends a signal ("SIGTERM", "KILL", 9) to the init process, or to all processes with `all`. */
  async kill(id: string, signal: string | number, all = false): Promise<void> {
    await this.#run(this.command.kill(id, signal, all), "kill", id);
  }

  /** Deletes the container's runtime state; `force` kills it first. Idempotent: an unknown id is fine. */
  async delete(id: string, o: boolean | { force?: boolean } = {}): Promise<void> {
    const force = typeof o === "boolean" ? o : (o.force ?? false);
    try {
      await this.#run(this.command.delete(id, force), "delete", id);
    } catch (e) {
      if (e instanceof RuntimeError && e.kind === "not-found") return;
      throw e;
    }
  }

  /** Applies new cgroup resources to a running container (`update --resources`). */
  async update(id: string, resources: Resources): Promise<void> {
    const file = this.name === "crun" || this.path.endsWith("/crun") ? "/dev/stdin" : "-";
    await this.#run(this.command.update(id, file), "update", id, JSON.stringify(resources));
  }

  /** Freezes every process of the container. */
  async pause(id: string): Promise<void> {
    await this.#run(this.command.pause(id), "pause", id);
  }

  /** Thaws a paused container. */
  async resume(id: string): Promise<void> {
    await this.#run(this.command.resume(id), "resume", id);
  }

  /** What the runtime supports (cached): `features` when it has it, otherwise a static record. */
  features(): Promise<RuntimeFeatures> {
    this.#features ??= this.#loadFeatures();
    return this.#features;
  }

  /** The runtime's version facts from `--version`. */
  async version(): Promise<{ name: string; version: string; commit?: string; spec?: string }> {
    const out = await this.#run(this.command.version(), "version");
    const version = /version\s+(\S+)/.exec(out)?.[1] ?? "unknown";
    const commit = /^commit:\s*(\S+)/m.exec(out)?.[1];
    const spec = /^spec:\s*(\S+)/m.exec(out)?.[1];
    return { name: this.name, version, ...(commit ? { commit } : {}), ...(spec ? { spec } : {}) };
  }

  // --- internal ---

  async #run(argv: string[], op: string, id?: string, stdin?: string): Promise<string> {
    try {
      return await run(argv, { stdin, timeoutMs: this.#timeoutMs });
    } catch (e) {
      throw classify(e, this.name, op, id);
    }
  }

  async #loadFeatures(): Promise<RuntimeFeatures> {
    try {
      const out = await this.#run(this.command.features(), "features");
      return fromFeaturesJson(JSON.parse(out));
    } catch {
      return staticFeatures(this.name, (await this.version().catch(() => undefined))?.version);
    }
  }
}

/** Maps a runtime's failure to an error kind by its message (runc and crun wordings). */
export function classify(e: unknown, runtime: string, op: string, id?: string): RuntimeError {
  if (!(e instanceof ExecError)) return wrap(e, `${runtime} ${op}`);
  const what = id ? `${runtime} ${op} ${id}` : `${runtime} ${op}`;
  if (e.exitCode === null && !e.stderr.includes("timed out"))
    return new RuntimeError("unavailable", `${what}: cannot run ${e.argv[0]}: ${e.stderr}`, { cause: e });
  const text = lastMessage(e.stderr);
  let kind: ErrorKind = "internal";
  for (const [re, k] of PATTERNS) {
    if (re.test(e.stderr)) {
      kind = k;
      break;
    }
  }
  return new RuntimeError(kind, `${what}: ${text || `exit ${e.exitCode ?? "?"}`}`, { cause: e });
}

// --- internal ---

const PATTERNS: Array<[RegExp, ErrorKind]> = [
  [/does not exist|not exist|no such container|error opening file .*status.*No such file|cannot open directory .*No such file/i, "not-found"],
  [/already exists/i, "already-exists"],
  [/not running|stopped container|process already finished|container is stopped|container has stopped|no such process/i, "failed-precondition"],
  [/is paused|not paused|is not paused|cannot (?:start|exec).*(?:paused|created)|not in created state|cannot start an already running/i, "failed-precondition"],
  [/permission denied|operation not permitted/i, "permission-denied"],
  [/timed out|timeout/i, "deadline-exceeded"],
];

function lastMessage(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((s) => s.trim())
    .filter(Boolean);
  const last = lines[lines.length - 1] ?? "";
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(last);
  return m ? (m[1] as string).replace(/\\"/g, '"') : last;
}

function fromFeaturesJson(f: {
  ociVersionMax?: string;
  mountOptions?: string[];
  linux?: {
    namespaces?: string[];
    cgroup?: { v1?: boolean; v2?: boolean; systemd?: boolean };
    seccomp?: { enabled?: boolean };
    apparmor?: { enabled?: boolean };
    selinux?: { enabled?: boolean };
    mountExtensions?: { idmap?: { enabled?: boolean } };
  };
}): RuntimeFeatures {
  const mountOptions = f.mountOptions ?? [];
  return {
    source: "features",
    ociVersionMax: f.ociVersionMax,
    mountOptions,
    namespaces: f.linux?.namespaces ?? [],
    rro: mountOptions.includes("rro"),
    idmap: f.linux?.mountExtensions?.idmap?.enabled ?? false,
    seccomp: f.linux?.seccomp?.enabled ?? false,
    apparmor: f.linux?.apparmor?.enabled ?? false,
    selinux: f.linux?.selinux?.enabled ?? false,
    cgroup: { v1: f.linux?.cgroup?.v1 ?? true, v2: f.linux?.cgroup?.v2 ?? true, systemd: f.linux?.cgroup?.systemd ?? false },
  };
}

/** What runtimes without `features` (crun < 1.9, old runc) support, by version. */
function staticFeatures(name: string, version: string | undefined): RuntimeFeatures {
  const [major = 0, minor = 0] = (version ?? "0.0").split(/[.+-]/).map((x) => Number.parseInt(x, 10) || 0);
  const atLeast = (a: number, b: number) => major > a || (major === a && minor >= b);
  // crun has had recursive mount attributes (rro) since 1.4 and idmapped mounts since 1.5;
  // runc got rro in 1.1 (features exists there) and idmap in 1.2.
  const isCrun = name === "crun";
  const rro = isCrun ? atLeast(1, 4) : atLeast(1, 1);
  const base = ["bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec", "rprivate", "rslave", "rshared", "private", "slave", "shared", "tmpcopyup"];
  return {
    source: "static",
    mountOptions: rro ? [...base, "rro"] : base,
    namespaces: ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
    rro,
    idmap: isCrun ? atLeast(1, 5) : atLeast(1, 2),
    seccomp: true,
    apparmor: true,
    selinux: true,
    cgroup: { v1: true, v2: true, systemd: true },
  };
}
