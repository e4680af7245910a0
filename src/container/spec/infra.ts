/**
 * The OCI spec of a pod's infra (pause) container, as CRI-O's RunPodSandbox builds it: the pause
 * command, the pod's namespaces (it creates the pod's PID namespace), a read-only rootfs, no new
 * privileges, the default capabilities and seccomp profile, oom_score_adj -998 (when the daemon may
 * set it), cpu shares 2, and the pod's cgroup parent.
 */
import type { PodSandboxConfig } from "../../gen/runtime/v1/api_pb.ts";
import { invalid } from "../../errors.ts";
import { OCI_VERSION, type Mount, type Spec } from "../../oci/spec-types.ts";
import { ANN, sorted } from "./annotations.ts";
import { defaultMounts } from "./mounts.ts";
import { infraNamespaces, podSysctls } from "./namespaces.ts";
import { parseUlimits, processEnv, stopSignalName } from "./process.ts";
import { cgroupsPath, clampOom } from "./resources.ts";
import { apparmorProfile, containerCapabilities, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, maskedPaths, readonlyPaths, selinuxLabels } from "./security.ts";
import { containerSeccomp } from "./seccomp.ts";
import type { ImageConfig, PodNamespaces, SpecDefaults, SpecHost, SpecIo } from "./types.ts";

/** CRI-O's PodInfraOOMAdj. */
export const INFRA_OOM_SCORE_ADJ = -998;
/** CRI-O's PodInfraCPUshares. */
export const INFRA_CPU_SHARES = 2;

/** Everything buildInfraSpec needs. */
export interface InfraSpecInput {
  /** The sandbox id (the infra container has the same id). */
  id: string;
  /** CRI-O style name: k8s_POD_<name>_<namespace>_<uid>_<attempt>. */
  name: string;
  config: PodSandboxConfig;
  /** The pause image: its config (Entrypoint/Cmd when pause_command is empty) and names. */
  image: { config: ImageConfig; id: string; name: string; userRequested: string };
  /** pause_command; "" = the image's Entrypoint + Cmd. */
  pauseCommand: string;
  rootfs: string;
  hostname: string;
  namespaces: PodNamespaces;
  shmPath?: string;
  hostnamePath?: string;
  resolvConfPath?: string;
  cgroupParent: string;
  cgroupManager: "cgroupfs" | "systemd";
  /** infra_ctr_cpuset. */
  cpuset?: string;
  logPath?: string;
  created: string;
  runtimeHandler?: string;
  defaults: SpecDefaults;
  host: SpecHost;
  io: Pick<SpecIo, "readFile">;
}

/** The infra container's spec plus what was adjusted (oom_score_adj clamped, …). */
export function buildInfraSpec(i: InfraSpecInput): { spec: Spec; warnings: string[]; seccompRef: string; stopSignal: string } {
  const warnings: string[] = [];
  const sc = i.config.linux?.securityContext;
  const privileged = sc?.privileged ?? false;
  const args = i.pauseCommand ? [i.pauseCommand] : [...(i.image.config.Entrypoint ?? []), ...(i.image.config.Cmd ?? [])];
  if (args.length === 0) throw invalid(`unable to run pause image "${i.image.userRequested}": neither Cmd nor Entrypoint specified`);

  const caps = containerCapabilities({ defaults: i.defaults.capabilities, host: i.host.capabilities, addInheritable: false, privileged: false });
  warnings.push(...caps.warnings);
  const seccomp = containerSeccomp({
    // The infra container gets RuntimeDefault unless the pod asks otherwise.
    profile: sc?.seccomp ?? ({ profileType: 0, localhostRef: "" } as NonNullable<typeof sc>["seccomp"]),
    deprecatedPath: "",
    privileged,
    enabled: i.host.seccomp,
    capabilities: caps.capabilities.bounding ?? [],
    arch: i.host.arch,
    kernel: i.host.kernel,
    defaultProfile: i.defaults.seccompProfile,
    readFile: i.io.readFile,
  });
  const apparmor = apparmorProfile(sc?.apparmor, "", { enabled: i.host.apparmor, privileged, defaultProfile: i.defaults.apparmorProfile ?? "crio-default" });
  const selinux = selinuxLabels(sc?.selinuxOptions, i.host.selinux, privileged);
  const hostNetwork = i.namespaces.network === "host";
  const hostIpc = i.namespaces.ipc === "host";
  const sysctls = podSysctls(i.defaults.sysctls, i.config.linux?.sysctls ?? {}, { network: hostNetwork, ipc: hostIpc });
  warnings.push(...sysctls.warnings);

  const mounts: Mount[] = defaultMounts().filter((m) => m.destination !== "/dev/shm");
  const shm = i.shmPath ?? (hostIpc ? "/dev/shm" : undefined);
  if (shm) mounts.push({ destination: "/dev/shm", type: "bind", source: shm, options: ["rw", "bind"] });
  else mounts.push(...defaultMounts().filter((m) => m.destination === "/dev/shm"));
  const ro = ["ro", "bind", "nodev", "nosuid", "noexec"];
  if (i.resolvConfPath) mounts.push({ destination: "/etc/resolv.conf", type: "bind", source: i.resolvConfPath, options: ro });
  if (i.hostnamePath) mounts.push({ destination: "/etc/hostname", type: "bind", source: i.hostnamePath, options: ro });

  const cpu: { shares: number; cpus?: string } = { shares: INFRA_CPU_SHARES };
  if (i.cpuset) cpu.cpus = i.cpuset;
  const stopSignal = stopSignalName(0, i.image.config.StopSignal);
  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: false,
      user: { uid: sc?.runAsUser ? Number(sc.runAsUser.value) : 0, gid: sc?.runAsGroup ? Number(sc.runAsGroup.value) : 0 },
      args,
      env: processEnv({ tty: false, hostname: i.hostname, defaults: [], image: i.image.config.Env ?? [], cri: [] }),
      cwd: "/",
      capabilities: caps.capabilities,
      rlimits: parseUlimits(i.defaults.ulimits),
      noNewPrivileges: true,
      oomScoreAdj: clampOom(INFRA_OOM_SCORE_ADJ, i.host.minOomScoreAdj, warnings),
      ...(apparmor ? { apparmorProfile: apparmor } : {}),
      ...(selinux.process ? { selinuxLabel: selinux.process } : {}),
    },
    root: { path: i.rootfs, readonly: true },
    ...(i.namespaces.uts === "host" ? {} : { hostname: i.hostname }),
    mounts,
    annotations: infraAnnotations(i, seccomp.ref, privileged, hostNetwork),
    linux: {
      ...(Object.keys(sysctls.sysctl).length ? { sysctl: sysctls.sysctl } : {}),
      resources: { devices: [{ allow: false, access: "rwm" }], cpu },
      cgroupsPath: cgroupsPath(i.cgroupManager, i.cgroupParent, i.id),
      namespaces: infraNamespaces(i.namespaces, i.host.cgroup.v2 && !privileged),
      ...(i.namespaces.user ? { uidMappings: i.namespaces.user.uidMappings, gidMappings: i.namespaces.user.gidMappings } : {}),
      ...(seccomp.seccomp ? { seccomp: seccomp.seccomp } : {}),
      // The infra container has no CRI lists: it always gets the defaults.
      maskedPaths: maskedPaths(DEFAULT_MASKED_PATHS, privileged, i.host.extraMaskedPaths),
      readonlyPaths: readonlyPaths(DEFAULT_READONLY_PATHS, privileged),
      ...(selinux.mount ? { mountLabel: selinux.mount } : {}),
    },
  };
  return { spec, warnings, seccompRef: seccomp.ref, stopSignal };
}

// --- internal ---

function infraAnnotations(i: InfraSpecInput, seccompRef: string, privileged: boolean, hostNetwork: boolean): Record<string, string> {
  const meta = i.config.metadata;
  const ns = i.config.linux?.securityContext?.namespaceOptions;
  const out: Record<string, string> = { ...i.config.annotations, ...i.config.labels };
  const res = i.config.linux?.resources;
  Object.assign(out, {
    [ANN.Annotations]: JSON.stringify(sorted(i.config.annotations)),
    [ANN.Labels]: JSON.stringify(sorted(i.config.labels)),
    [ANN.Metadata]: JSON.stringify({ name: meta?.name ?? "", uid: meta?.uid ?? "", namespace: meta?.namespace ?? "", attempt: meta?.attempt ?? 0 }),
    [ANN.ContainerType]: "sandbox",
    [ANN.ContainerID]: i.id,
    [ANN.ContainerName]: i.name,
    [ANN.Name]: i.name,
    [ANN.SandboxID]: i.id,
    [ANN.SandboxName]: i.name,
    [ANN.Namespace]: meta?.namespace ?? "",
    [ANN.KubeName]: meta?.name ?? "",
    [ANN.HostName]: i.hostname,
    [ANN.HostNetwork]: String(hostNetwork),
    [ANN.PrivilegedRuntime]: String(privileged),
    [ANN.RuntimeHandler]: i.runtimeHandler ?? "",
    [ANN.ResolvPath]: i.resolvConfPath ?? "",
    [ANN.HostnamePath]: i.hostnamePath ?? "",
    [ANN.ShmPath]: i.shmPath ?? "",
    [ANN.CgroupParent]: i.cgroupParent,
    [ANN.LogPath]: i.logPath ?? "",
    [ANN.MountPoint]: i.rootfs,
    [ANN.SeccompProfilePath]: seccompRef,
    [ANN.Image]: i.image.userRequested,
    [ANN.ImageName]: i.image.name,
    [ANN.ImageRef]: i.image.id,
    [ANN.Created]: i.created,
    [ANN.ContainerManager]: "cri-o",
    [ANN.CriContainerType]: "sandbox",
    [ANN.CriSandboxID]: i.id,
    [ANN.CriSandboxName]: meta?.name ?? "",
    [ANN.CriSandboxNamespace]: meta?.namespace ?? "",
    [ANN.CriSandboxUID]: meta?.uid ?? "",
    "io.kubernetes.cri-o.NamespaceOptions": JSON.stringify({ network: ns?.network ?? 0, pid: ns?.pid ?? 0, ipc: ns?.ipc ?? 0 }),
  });
  if (res) out["io.kubernetes.cri-o.PodLinuxResources"] = JSON.stringify(resourcesJson(res));
  if (i.config.linux?.overhead) out["io.kubernetes.cri-o.PodLinuxOverhead"] = JSON.stringify(resourcesJson(i.config.linux.overhead));
  if (i.image.config.StopSignal) out[ANN.StopSignal] = stopSignalName(0, i.image.config.StopSignal);
  return sorted(out);
}

function resourcesJson(r: NonNullable<NonNullable<PodSandboxConfig["linux"]>["resources"]>): Record<string, unknown> {
  return {
    cpu_period: Number(r.cpuPeriod),
    cpu_quota: Number(r.cpuQuota),
    cpu_shares: Number(r.cpuShares),
    memory_limit_in_bytes: Number(r.memoryLimitInBytes),
    oom_score_adj: Number(r.oomScoreAdj),
    cpuset_cpus: r.cpusetCpus,
    cpuset_mems: r.cpusetMems,
  };
}
