import type { ContainerSpecInput, ContainerSpecResult, ImageConfig, SpecDefaults, SpecHost, SpecIo } from "./spec/types.ts";
import type { Logger } from "../log/index.ts";
import type { Paths } from "../paths.ts";
import type { SandboxService } from "../sandbox/index.ts";
import type { NameIndex, RecordDir } from "../store/index.ts";
import type { ContainerMeta, ContainerRunState } from "./record.ts";
import type { InfraSpecInput } from "../sandbox/spec.ts";

/** An exit as the monitor recorded it. */
export interface ExitInfo {
  exitCode: number;
  exitedAt: number;
  oomKilled: boolean;
}

/** The image a container is created from. */
export interface ImageForCreate {
  id: string;
  name: string;
  config: ImageConfig;
  /** Unpacked layer directories, lowest first. */
  layers: string[];
}

/** The image store as containers need it. */
export interface ImagePort {
  /** Resolves a reference or id to a stored image; undefined when it is not in the store. */
  forCreate(ref: string): Promise<ImageForCreate | undefined>;
  /** Throws unless the signature policy of pods in `namespace` accepts image `name` (checked again at creation). */
  checkPolicy(name: string, namespace: string): void;
  /** Like forCreate, pulling the image first when it is missing (the pause image). */
  ensure(ref: string, authFile: string, signal?: AbortSignal): Promise<ImageForCreate>;
}

/** Container root filesystems. */
export interface RootfsPort {
  create(id: string, lowerDirs: string[]): Promise<string>;
  /** Mounts an image's layers read-only as the container's image volume `n`; removed with the rootfs. */
  mountImage(id: string, n: number, lowerDirs: string[]): Promise<string>;
  remove(id: string): Promise<void>;
}

/** One OCI runtime handler (runc, crun). */
export interface RuntimePort {
  readonly name: string;
  readonly path: string;
  readonly root: string;
  start(id: string): Promise<void>;
  kill(id: string, signal: string, all?: boolean): Promise<void>;
  delete(id: string, force: boolean): Promise<void>;
  /** undefined when the runtime does not know the container. */
  state(id: string): Promise<{ status: string; pid: number } | undefined>;
  update(id: string, resources: unknown): Promise<void>;
  /** Ids of every container the runtime knows (its state dir): recovery finds those with no record. */
  list?(): Promise<string[]>;
}

/** The monitor (`crio conmon`) as the daemon drives it. */
export interface MonitorPort {
  /** Runs the runtime's create under a new monitor, placed in the cgroup of `cgroupParent`'s pod (monitor_cgroup). */
  create(o: { id: string; bundle: string; runtime: RuntimePort; logPath: string; terminal: boolean; stdin: boolean; stdinOnce: boolean; logSizeMax: number; timeoutMs: number; cgroupParent: string }): Promise<{ pid: number }>;
  execSync(o: { id: string; runtime: RuntimePort; process: unknown; timeoutMs: number; terminal: boolean }): Promise<{ exitCode: number; stdout: Uint8Array; stderr: Uint8Array; timedOut: boolean }>;
  reopenLog(id: string): Promise<void>;
  readExit(id: string): Promise<ExitInfo | undefined>;
  /** Whether the container's monitor process is running. */
  alive(id: string): boolean;
  /** Removes the monitor's files of a container (exit file, sockets). */
  cleanup(id: string): Promise<void>;
  /** Kills the monitor of a container that has no record (recovery after a crash mid-create) and waits for it to go. */
  abandon?(id: string): Promise<void>;
}

/** The configuration containers read, re-read on every call. */
export interface ContainerSettings {
  defaults: SpecDefaults;
  cgroupManager: "cgroupfs" | "systemd";
  logSizeMax: number;
  logDir: string;
  ctrStopTimeoutS: number;
  pauseImage: string;
  pauseCommand: string;
  pauseImageAuthFile: string;
  infraCtrCpuset: string;
  containerCreateTimeoutS: number;
  /** hooks_dir: directories of OCI hook definitions (later ones mask earlier ones by file name). */
  hooksDir?: string[];
  /** Names of the configured runtime handlers (recovery lists each one's containers). */
  runtimeHandlers?: string[];
}

/** Everything the container service uses. */
export interface ContainerDeps {
  paths: Paths;
  log: Logger;
  records: RecordDir<ContainerMeta, ContainerRunState>;
  names: NameIndex;
  sandboxes: SandboxService;
  images: ImagePort;
  rootfs: RootfsPort;
  runtime(handler: string): RuntimePort;
  monitor: MonitorPort;
  buildSpec(input: ContainerSpecInput): ContainerSpecResult;
  buildInfraSpec(input: InfraSpecInput): { spec: unknown; warnings: string[]; seccompRef: string; stopSignal: string };
  host: SpecHost;
  io: SpecIo;
  settings(): ContainerSettings;
}
