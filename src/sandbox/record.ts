import type { PinnedNamespaces } from "../sys/namespaces.ts";
import type { IdMap } from "../sys/userns.ts";

/** CRI NamespaceMode values (api.proto), as numbers: the domain imports no generated values. */
export const NS = { POD: 0, CONTAINER: 1, NODE: 2, TARGET: 3 } as const;

/** A pod's reserved name, CRI-O's: k8s_<name>_<namespace>_<uid>_<attempt>. */
export function sandboxName(md: { name: string; namespace: string; uid: string; attempt: number }): string {
  return `k8s_${md.name}_${md.namespace}_${md.uid}_${md.attempt}`;
}

/** What a pod was created with; written once. */
export interface SandboxMeta {
  id: string;
  /** k8s_<name>_<namespace>_<uid>_<attempt>, CRI-O's reserved name. */
  name: string;
  metadata: { name: string; uid: string; namespace: string; attempt: number };
  /** The PodSandboxConfig as protobuf JSON (for verbose status and recovery). */
  configJson: unknown;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtimeHandler: string;
  hostname: string;
  logDirectory: string;
  cgroupParent: string;
  /** Namespace modes: network/pid/ipc as CRI NamespaceMode numbers. */
  namespaceOptions: { network: number; pid: number; ipc: number; targetId: string };
  /** The pod's own user namespace mappings (hostUsers: false); absent: the host's user namespace. */
  userns?: { uids: IdMap[]; gids: IdMap[] };
  createdAt: number;
}

/** The pod's changing state; replaced atomically. */
export interface SandboxState {
  state: "ready" | "notready";
  ips: string[];
  namespaces: PinnedNamespaces;
  shmPath: string;
  hostnamePath: string;
  resolvConfPath: string;
  /** The infra (pause) container, when the pod has one. */
  infraContainerId?: string;
  infraPid?: number;
  /** CNI DEL is still owed (a teardown failed); retried by stop, remove and the next start. */
  networkPending: boolean;
  stoppedAt?: number;
}

/** A sandbox in memory: its record plus derived lookups. */
export interface SandboxView {
  meta: Readonly<SandboxMeta>;
  status: Readonly<SandboxState>;
}
