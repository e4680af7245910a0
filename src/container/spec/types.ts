import type { ContainerConfig, PodSandboxConfig } from "../../gen/runtime/v1/api_pb.ts";
import type { Device, IdMapping, Spec } from "../../oci/spec-types.ts";
import type { CdiResolved } from "./cdi.ts";
import type { SeccompProfile } from "./seccomp-profile.ts";

/** The `config` section of an OCI image config (the fields the spec builder reads). */
export interface ImageConfig {
  User?: string;
  Env?: string[] | null;
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  StopSignal?: string;
  Volumes?: Record<string, unknown> | null;
  Labels?: Record<string, string> | null;
}

/** How a container gets a namespace: the host's, a fresh one, or an existing one joined by path. */
export type NamespaceRef = "host" | "new" | { path: string };

/** The pod's namespaces, as prepared by RunPodSandbox. */
export interface PodNamespaces {
  network: NamespaceRef;
  ipc: NamespaceRef;
  uts: NamespaceRef;
  /**
   * The pod's PID namespace: "host" (hostPID), { path: /proc/<infra-pid>/ns/pid } when the pod shares
   * one (NamespaceMode POD at pod level), otherwise "new" (each container gets its own).
   */
  pid: NamespaceRef;
  /**
   * The pod's own user namespace (hostUsers: false), joined by path; its mappings go into the spec
   * too (runc wants them, and checks them against the namespace).
   */
  user?: { path: string; uidMappings: IdMapping[]; gidMappings: IdMapping[] };
}

/** Node-wide defaults from the configuration ([crio.runtime]). */
export interface SpecDefaults {
  /** default_capabilities, with or without the CAP_ prefix. */
  capabilities: string[];
  /** add_inheritable_capabilities: also fill the inheritable (and, for non-root, ambient) set. */
  addInheritableCapabilities?: boolean;
  /** default_env: "KEY=value" entries, overridden by the image and the CRI. */
  env: string[];
  /** default_ulimits: "nofile=1024:2048" entries. */
  ulimits: string[];
  /** default_sysctls: "key=value" entries added to every pod. */
  sysctls: string[];
  /** container_min_memory in bytes (CRI-O: 12 MiB); lower limits are invalid-argument. */
  containerMinMemory: number;
  /** pids_limit; 0 or absent = no limit. */
  pidsLimit?: number;
  /** read_only: every container gets a read-only rootfs plus tmpfs /run, /tmp, /var/tmp. */
  readOnly?: boolean;
  /** apparmor_profile used for RuntimeDefault (CRI-O: "crio-default"). */
  apparmorProfile?: string;
  /** Runtime handlers with privileged_without_host_devices: their privileged containers get no host devices. */
  privilegedWithoutHostDevices?: string[];
  /** additional_devices: "HOST[:CONTAINER[:PERMISSIONS]]" entries added to every container. */
  additionalDevices?: string[];
  /** allowed_devices: host device paths a pod may ask for with the io.kubernetes.cri-o.Devices annotation. */
  allowedDevices?: string[];
  /** device_ownership_from_security_context: a non-privileged container's CRI devices are owned by its uid/gid. */
  deviceOwnershipFromSecurityContext?: boolean;
  /** seccomp_profile: a node-wide replacement for the built-in RuntimeDefault profile (parsed JSON). */
  seccompProfile?: SeccompProfile;
  /** seccomp_use_default_when_empty: containers that name no seccomp profile get RuntimeDefault. */
  seccompUseDefaultWhenEmpty?: boolean;
  /** bind_mount_prefix: prefix of the host path of every CRI bind mount. */
  bindMountPrefix?: string;
  /** absent_mount_sources_to_reject: missing host paths that fail CreateContainer instead of being created. */
  absentMountSourcesToReject?: string[];
  /** hostnetwork_disable_selinux (default true): no SELinux labels for containers of host-network pods. */
  hostnetworkDisableSelinux?: boolean;
}

/** Facts about the node and the daemon's own privileges (see host.ts detectSpecHost). */
export interface SpecHost {
  /** The daemon's capability bounding set (CAP_ names); privileged and "ALL" get only these. */
  capabilities: string[];
  /** Lowest oom_score_adj the daemon may give a child (its own value without CAP_SYS_RESOURCE). */
  minOomScoreAdj: number;
  apparmor: boolean;
  selinux: boolean;
  seccomp: boolean;
  /** cgroup facts: v2 = unified hierarchy only; v1 covers legacy and hybrid. */
  cgroup: { v2: boolean; swap: boolean; hugetlb: boolean; pids: boolean };
  /** Go-style architecture of the node: amd64, arm64, … (selects seccomp architectures). */
  arch: string;
  /** The OCI runtime supports recursive read-only ("rro") mounts. */
  rro: boolean;
  /** Extra paths to mask on this host (thermal_throttle of each cpu). */
  extraMaskedPaths?: string[];
  /** Kernel release, for minKernel rules of seccomp profiles. */
  kernel?: string;
}

/** File-system access the builder needs; fakes in tests. */
export interface SpecIo {
  /** Reads a text file; throws (ENOENT …) when it cannot. */
  readFile(path: string): string;
  /** The device nodes at a host path (a node, or every node under a directory). */
  devicesAt(path: string): Device[];
  /** Every device node of the host, for privileged containers. */
  hostDevices(): Device[];
  /** Resolves a host path's symlinks; undefined when it does not exist. */
  realpath(path: string): string | undefined;
  /** Whether the kernel holds an AppArmor profile of this name; absent = not checked. */
  apparmorLoaded?(name: string): boolean;
}

/** The pod a container joins. */
export interface SandboxInput {
  id: string;
  /** CRI-O style name: k8s_POD_<name>_<namespace>_<uid>_<attempt>. */
  name: string;
  config: PodSandboxConfig;
  hostname: string;
  namespaces: PodNamespaces;
  /** The pod's /dev/shm tmpfs (absent for hostIPC: the host's /dev/shm is used). */
  shmPath?: string;
  hostnamePath?: string;
  resolvConfPath?: string;
  hostsPath?: string;
  /** Parent cgroup as given by the kubelet (cgroupfs path or systemd slice). */
  cgroupParent: string;
  ips?: string[];
  runtimeHandler?: string;
}

/** Everything buildContainerSpec needs. */
export interface ContainerSpecInput {
  id: string;
  /** CRI-O style name: k8s_<container>_<pod>_<namespace>_<uid>_<attempt>. */
  name: string;
  config: ContainerConfig;
  sandbox: SandboxInput;
  image: {
    /** The image config section (Entrypoint, Cmd, Env, …). */
    config: ImageConfig;
    /** Image id (sha256:… or hex). */
    id: string;
    /** A name of the image (for annotations), "" when none. */
    name: string;
    /** The reference the kubelet asked for. */
    userRequested: string;
  };
  /** Mounted root filesystem (overlay merged dir). */
  rootfs: string;
  /**
   * Image volumes (CRI Mount.image): the index in config.mounts → the host directory to bind
   * (the image's read-only mount, or the image_sub_path in it), mounted by the caller.
   */
  imageVolumes?: ReadonlyMap<number, string>;
  /** Per-container runtime dir where generated files (passwd, group) are written by the caller. */
  runDir: string;
  logPath?: string;
  cgroupManager: "cgroupfs" | "systemd";
  /** Contents of the image's /etc/passwd and /etc/group; undefined when the image has none. */
  etcPasswd?: string;
  etcGroup?: string;
  /** The target container's PID namespace path for NamespaceMode TARGET. */
  targetPidNamespace?: string;
  /** RFC 3339 creation time for the Created annotation. */
  created: string;
  /** CDI devices the container asked for, resolved from cdi_spec_dirs; their edits are applied last. */
  cdiDevices?: readonly CdiResolved[];
  defaults: SpecDefaults;
  host: SpecHost;
  io: SpecIo;
}

/** A file the caller must write (mode, content) before starting the container; the spec mounts it. */
export interface GeneratedFile {
  path: string;
  content: string;
  mode: number;
}

/** What buildContainerSpec returns. */
export interface ContainerSpecResult {
  spec: Spec;
  /** Things adjusted with a reason (oom_score_adj clamped, hugetlb ignored, …): log them. */
  warnings: string[];
  files: GeneratedFile[];
  /** Host directories to create before starting (CRI bind-mount sources that do not exist; CRI-O creates them). */
  mkdirs: string[];
  /** The stop signal name ("SIGTERM" unless the CRI or the image says otherwise). */
  stopSignal: string;
  /** The resolved user, for ContainerStatus. */
  user: { uid: number; gid: number; additionalGids: number[] };
  /** "RuntimeDefault", "Unconfined" or the localhost profile path. */
  seccompRef: string;
}
