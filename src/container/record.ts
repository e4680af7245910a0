/** What a container was created with; written once. */
export interface ContainerMeta {
  id: string;
  /** k8s_<container>_<pod>_<namespace>_<uid>_<attempt>. */
  name: string;
  sandboxId: string;
  metadata: { name: string; attempt: number };
  /** The ContainerConfig as protobuf JSON (verbose status, UpdateContainerResources base). */
  configJson: unknown;
  image: { id: string; name: string; userRequested: string };
  logPath: string;
  createdAt: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  stopSignal: string;
  user: { uid: number; gid: number; additionalGids: number[] };
  /** The CRI mounts; `image` (and `imageSubPath`) for an image volume, with `imageId` the image it resolved to. */
  mounts: Array<{
    containerPath: string;
    hostPath: string;
    readonly: boolean;
    propagation: number;
    selinuxRelabel: boolean;
    image?: string;
    imageSubPath?: string;
    imageId?: string;
  }>;
  tty: boolean;
  stdin: boolean;
  stdinOnce: boolean;
  runtimeHandler: string;
  bundle: string;
  seccomp: string;
  /** The infra container of a pod (not listed by ListContainers). */
  infra?: boolean;
}

/** The container's changing state; replaced atomically. */
export interface ContainerRunState {
  state: "created" | "running" | "exited" | "unknown";
  pid?: number;
  startedAt?: number;
  finishedAt?: number;
  exitCode?: number;
  oomKilled?: boolean;
  message?: string;
  /** Linux resources last applied by UpdateContainerResources (protobuf JSON). */
  resources?: unknown;
}

/** A container as the services hand it out. */
export interface ContainerView {
  readonly meta: Readonly<ContainerMeta>;
  readonly status: Readonly<ContainerRunState>;
}

/** The CRI reason of an exited container: OOMKilled, Completed or Error. */
export function exitReason(s: ContainerRunState): string {
  if (s.state !== "exited") return "";
  if (s.oomKilled) return "OOMKilled";
  return s.exitCode === 0 ? "Completed" : "Error";
}
