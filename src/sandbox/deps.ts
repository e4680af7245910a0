import type { PodSandboxConfig } from "../gen/runtime/v1/api_pb.ts";
import type { Logger } from "../log/index.ts";
import type { Paths } from "../paths.ts";
import type { NameIndex, RecordDir } from "../store/index.ts";
import type { RuntimeHandlers } from "../runtime/index.ts";
import { mountShm, unmountAsync } from "../sys/mount.ts";
import { listPinned, namespacePinCheck, pinNamespaces, unpinNamespaces, type PinOptions, type PinnedNamespaces } from "../sys/namespaces.ts";
import type { SandboxMeta, SandboxState, SandboxView } from "./record.ts";

/** Pod networking as the sandbox needs it (the CNI manager behind it). */
export interface NetworkPort {
  waitReady(timeoutMs: number, signal?: AbortSignal): Promise<void>;
  setUp(pod: PodNet, signal?: AbortSignal): Promise<{ ips: string[] }>;
  tearDown(pod: PodNet): Promise<void>;
  /** The node's own addresses, reported for host-network pods. */
  hostAddresses(): Promise<string[]>;
  /** Pod ids that hold a CNI attachment (set up, being set up, or a teardown still owed). */
  attachedPods(): string[];
}

/** A pod as the network sees it. */
export interface PodNet {
  id: string;
  name: string;
  namespace: string;
  uid: string;
  netns: string;
  portMappings: Array<{ hostPort: number; containerPort: number; protocol: string; hostIP?: string }>;
  cgroupPath?: string;
  dns?: { servers: string[]; searches: string[]; options: string[] };
}

/** The pod's infra (pause) container, run only when the pod needs one. */
export interface InfraPort {
  start(sb: SandboxView, config: PodSandboxConfig, signal?: AbortSignal): Promise<{ containerId: string; pid: number }>;
  /** Stops and removes the infra container (idempotent). */
  remove(sb: SandboxView): Promise<void>;
  /** Stops it, keeping its records (idempotent). */
  stop(sb: SandboxView): Promise<void>;
}

/**
 * What the sandbox needs of the containers of a pod: the container service, which depends on the
 * sandbox service (container/ imports sandbox/, never the reverse), so it is set after construction.
 */
export interface PodContainers {
  /** The pod's infra (pause) container. */
  readonly infra: InfraPort;
  /** Stops every container of the pod (force: timeout 0). */
  stopAll(sandboxId: string): Promise<void>;
  /** Removes every container of the pod. */
  removeAll(sandboxId: string): Promise<void>;
}

/** The configuration the sandbox reads, re-read on every call (SIGHUP may change it). */
export interface SandboxSettings {
  dropInfraCtr: boolean;
  defaultSysctls: string[];
  runtimeHandlers: string[];
  defaultRuntime: string;
  /** How long RunPodSandbox waits for the network to become ready. */
  networkWaitMs: number;
  /** disable_hostport_mapping: the CNI portmap plugin gets no port mappings. */
  disableHostportMapping?: boolean;
  /** Each runtime handler's annotation policy, by handler name (absent: no defaults, nothing gated). */
  handlerAnnotations?: Record<string, HandlerAnnotations>;
}

/** A runtime handler's annotations: its default_annotations and what its allowed_annotations leave out. */
export interface HandlerAnnotations {
  /** default_annotations: added to every pod of the handler; the pod's own annotations win. */
  defaults: Record<string, string>;
  /** Prefixes of the experimental annotations the handler does not allow (dropped from requests). */
  disallowed: string[];
}

/** Everything the sandbox service uses. */
export interface SandboxDeps {
  paths: Paths;
  log: Logger;
  records: RecordDir<SandboxMeta, SandboxState>;
  names: NameIndex;
  namespaces: {
    pin(dir: string, id: string, o: PinOptions): Promise<PinnedNamespaces>;
    unpin(p: PinnedNamespaces): Promise<void>;
    /** A check of live pins (mount points) over one read of the mount table. */
    pinCheck(): (path: string) => boolean;
    /** Pinned namespace files under `dir`, by pod id (recovery looks for ones without a record). */
    list(dir: string): Map<string, PinnedNamespaces>;
  };
  /** A pod's /dev/shm tmpfs; `owner` owns its root (the host ids of a user-namespaced pod's root). */
  shm: { mount(path: string, sizeBytes: number, owner?: { uid: number; gid: number }): Promise<void>; unmount(path: string): Promise<void> };
  /** The runtime handlers: whether a handler's pods can have user namespaces of their own here. */
  handlers: RuntimeHandlers;
  network: NetworkPort;
  settings(): SandboxSettings;
}

/** The node's namespace pins (sys/namespaces.ts), as SandboxDeps.namespaces. */
export const hostNamespaces: SandboxDeps["namespaces"] = { pin: pinNamespaces, unpin: unpinNamespaces, pinCheck: namespacePinCheck, list: listPinned };

/** Pod /dev/shm tmpfs mounts (sys/mount.ts), as SandboxDeps.shm. */
export const hostShm: SandboxDeps["shm"] = { mount: mountShm, unmount: async (p) => void (await unmountAsync(p, { detach: true })) };
