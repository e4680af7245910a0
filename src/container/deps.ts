import type { CdiRegistry } from "./cdi-registry.ts";
import type { DefaultMount } from "./node-files.ts";
import type { ImageConfig, SpecDefaults, SpecHost, SpecIo } from "./spec/types.ts";
import type { Logger } from "../log/index.ts";
import type { Paths } from "../paths.ts";
import type { SandboxService } from "../sandbox/index.ts";
import type { NameIndex, RecordDir } from "../store/index.ts";
import type { ContainerMeta, ContainerRunState } from "./record.ts";
import type { MonitorFiles } from "../monitor/index.ts";
import type { RuntimeHandlers } from "../runtime/index.ts";
import type { IdMap } from "../sys/userns.ts";
import type { IdmapStaging } from "./idmap.ts";

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

/**
 * The image store as containers need it (image/service.ts ImageService). A port because image/
 * imports config/, which imports container/: the container folder cannot import image/.
 */
export interface ImagePort {
  /** Resolves a reference or id to a stored image; undefined when it is not in the store. */
  forCreate(ref: string): Promise<ImageForCreate | undefined>;
  /** Throws unless the signature policy of pods in `namespace` accepts image `name` (checked again at creation). */
  checkPolicyFor(name: string, namespace: string): Promise<void>;
  /** Like forCreate, pulling the image first when it is missing (the pause image). */
  ensure(ref: string, authFile: string, signal?: AbortSignal): Promise<ImageForCreate>;
}

/** The user namespace of a pod that has its own (hostUsers: false), as its containers need it. */
export interface PodIdmap {
  /** The pinned user namespace file. */
  usernsPath: string;
  uids: IdMap[];
  gids: IdMap[];
}

/** Container root filesystems; with `idmap`, the layers are shown through the pod's user namespace. */
export interface RootfsPort {
  create(id: string, lowerDirs: string[], idmap?: PodIdmap): Promise<string>;
  /** Mounts an image's layers read-only as the container's image volume `n`; removed with the rootfs. */
  mountImage(id: string, n: number, lowerDirs: string[], idmap?: PodIdmap): Promise<string>;
  remove(id: string): Promise<void>;
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
  /** timezone: "" (the image's), "Local" or an IANA zone name for every container's /etc/localtime. */
  timezone?: string;
  /** container_min_memory of each runtime handler (defaults.containerMinMemory is the default handler's). */
  containerMinMemoryByHandler?: Record<string, number>;
  /** default_mounts_file, parsed: host files and directories copied into every container. */
  defaultMounts?: DefaultMount[];
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
  /** The runtime handlers: each one's OCI runtime and monitors (runtime create, exec-sync). */
  handlers: RuntimeHandlers;
  /** Exit files and monitor dirs of every container, whichever handler created it. */
  monitors: MonitorFiles;
  /** Idmapped bind sources for pods with their own user namespace (absent: such pods' containers fail). */
  idmap?: IdmapStaging;
  host: SpecHost;
  io: SpecIo;
  /** CDI devices by qualified name (cdi_spec_dirs); invalid-argument naming the unknown ones. */
  cdi: CdiRegistry;
  settings(): ContainerSettings;
}
