/**
 * CRI ContainerConfig → OCI runtime spec. Pure: every input (image config, pod paths, node facts,
 * file reads) comes in through ContainerSpecInput, so golden tests pin the output. One concern per
 * file: process.ts, user.ts, mounts.ts, namespaces.ts, security.ts, seccomp.ts, resources.ts,
 * devices.ts, annotations.ts; infra.ts builds a pod's infra (pause) container; host.ts reads the
 * node facts once at start.
 */
import { invalid } from "../../errors.ts";
import { OCI_VERSION, type Spec } from "../../oci/spec-types.ts";
import { containerAnnotations } from "./annotations.ts";
import { applyCdiEdits } from "./cdi.ts";
import { containerDevices, DEVICES_ANNOTATION } from "./devices.ts";
import { containerMounts } from "./mounts.ts";
import { containerNamespaces, NS_MODE, podSysctls } from "./namespaces.ts";
import { parseUlimits, processArgs, processCwd, processEnv, stopSignalName } from "./process.ts";
import { cgroupsPath, containerResources } from "./resources.ts";
import { apparmorProfile, containerCapabilities, maskedPaths, readonlyPaths, selinuxLabels } from "./security.ts";
import { containerSeccomp } from "./seccomp.ts";
import type { ContainerSpecInput, ContainerSpecResult } from "./types.ts";
import { resolveContainerUser } from "./user.ts";

export type * from "./types.ts";
export { cgroupsPath, clampOom, DEFAULT_MIN_MEMORY } from "./resources.ts";
export {
  apparmorProfile,
  configuredHost,
  containerCapabilities,
  CRIO_DEFAULT_CAPABILITIES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
  maskedPaths,
  readonlyPaths,
  selinuxLabels,
} from "./security.ts";
export { detectSpecHost, realSpecIo } from "./host.ts";
export { parseSeccompProfile, type SeccompProfile } from "./seccomp-profile.ts";
export { SeccompProfileFile } from "./seccomp-file.ts";
export { DEFAULT_SECCOMP_PROFILE } from "./seccomp-default.ts";
export { containerSeccomp } from "./seccomp.ts";
export { ANN, sorted } from "./annotations.ts";
export { checkAdditionalDevices, parseDeviceSpec } from "./devices.ts";
export { defaultMounts } from "./mounts.ts";
export { infraNamespaces, podSysctls } from "./namespaces.ts";
export { parseUlimits, processEnv, stopSignalName } from "./process.ts";
export { buildInfraSpec, INFRA_CPU_SHARES, INFRA_OOM_SCORE_ADJ, type InfraSpecInput } from "./infra.ts";
export { applyCdiEdits, cdiRequests, parseCdiSpec, CDI_ANNOTATION_PREFIX, CDI_VERSIONS, type CdiResolved, type CdiSpec } from "./cdi.ts";

/**
 * Builds a container's OCI spec the way CRI-O's CreateContainer does. Throws invalid-argument for
 * a bad config (no command, unknown capability, memory below the minimum, net sysctls on a host
 * network pod, a missing Localhost seccomp profile, …) and failed-precondition when the pod cannot
 * host it (privileged container in an unprivileged pod, pod PID namespace not shared).
 */
export function buildContainerSpec(input: ContainerSpecInput): ContainerSpecResult {
  const { config: cfg, sandbox: sb, defaults, host, io } = input;
  const sc = cfg.linux?.securityContext;
  const podSc = sb.config.linux?.securityContext;
  const warnings: string[] = [];
  const privileged = sc?.privileged ?? false;
  if (privileged && !podSc?.privileged) throw invalid("no privileged container allowed in sandbox");

  const nsOpts = sc?.namespaceOptions;
  const hostNetwork = sb.namespaces.network === "host" || nsOpts?.network === NS_MODE.NODE;
  const hostIpc = sb.namespaces.ipc === "host" || nsOpts?.ipc === NS_MODE.NODE;
  const namespaces = containerNamespaces({
    pod: sb.namespaces,
    options: nsOpts,
    targetPid: input.targetPidNamespace,
    cgroupNs: host.cgroup.v2 && !privileged,
  });

  const args = processArgs(cfg.command, cfg.args, input.image.config);
  const env = processEnv({ tty: cfg.tty, hostname: sb.hostname, defaults: defaults.env, image: input.image.config.Env ?? [], cri: cfg.envs });
  const cwd = processCwd(cfg.workingDir, input.image.config);

  const caps = containerCapabilities({
    caps: sc?.capabilities,
    defaults: defaults.capabilities,
    host: host.capabilities,
    addInheritable: defaults.addInheritableCapabilities ?? false,
    privileged,
  });
  warnings.push(...caps.warnings);

  const home = env.find((e) => e.startsWith("HOME="))?.slice(5) ?? "";
  if (/[\n\r]/.test(home)) throw invalid("invalid HOME environment; newline not allowed");
  const mountedPaths = new Set(cfg.mounts.map((m) => m.containerPath.replace(/\/+$/, "") || "/"));
  const u = resolveContainerUser({
    securityContext: sc,
    imageUser: input.image.config.User ?? "",
    etcPasswd: input.etcPasswd,
    etcGroup: input.etcGroup,
    home: home || cwd,
    runDir: input.runDir,
    mountedPaths,
  });

  const readonlyRootfs = (sc?.readonlyRootfs ?? false) || (defaults.readOnly ?? false);
  const m = containerMounts({
    cri: cfg.mounts,
    pod: { shmPath: sb.shmPath, hostIpc, hostnamePath: sb.hostnamePath, resolvConfPath: sb.resolvConfPath, hostsPath: sb.hostsPath },
    privileged,
    readonlyRootfs,
    tmpfsDirs: defaults.readOnly ?? false,
    generated: u.mounts,
    rro: host.rro,
    realpath: io.realpath,
    userns: !!sb.namespaces.user,
    imageVolume: (c) => input.imageVolumes?.get(cfg.mounts.indexOf(c as (typeof cfg.mounts)[number])),
    bindMountPrefix: defaults.bindMountPrefix,
    absentSourcesToReject: defaults.absentMountSourcesToReject,
  });

  const hostDevices = privileged && !(defaults.privilegedWithoutHostDevices ?? []).includes(sb.runtimeHandler ?? "");
  const dev = containerDevices({
    cri: cfg.devices,
    additional: defaults.additionalDevices,
    privileged: hostDevices,
    devicesAt: io.devicesAt,
    hostDevices: io.hostDevices,
    annotation: sb.config.annotations[DEVICES_ANNOTATION] ?? sb.config.annotations["devices.crio.io"],
    allowed: defaults.allowedDevices ?? [],
    owner: defaults.deviceOwnershipFromSecurityContext && !privileged ? { uid: u.user.uid, gid: u.user.gid } : undefined,
  });
  const r = containerResources({
    resources: cfg.linux?.resources,
    minMemory: defaults.containerMinMemory,
    minOomScoreAdj: host.minOomScoreAdj,
    cgroup: host.cgroup,
    pidsLimit: defaults.pidsLimit,
  });
  warnings.push(...r.warnings);

  const seccomp = containerSeccomp({
    profile: sc?.seccomp,
    deprecatedPath: sc?.seccompProfilePath ?? "",
    privileged,
    enabled: host.seccomp,
    capabilities: caps.capabilities.bounding ?? [],
    arch: host.arch,
    kernel: host.kernel,
    defaultProfile: defaults.seccompProfile,
    useDefaultWhenEmpty: defaults.seccompUseDefaultWhenEmpty,
    readFile: io.readFile,
  });
  const apparmor = apparmorProfile(sc?.apparmor, sc?.apparmorProfile ?? "", {
    enabled: host.apparmor,
    privileged,
    defaultProfile: defaults.apparmorProfile || "crio-default",
    loaded: io.apparmorLoaded,
  });
  // hostnetwork_disable_selinux (CRI-O): a host-network pod's containers run without SELinux separation
  const selinux = selinuxLabels(sc?.selinuxOptions, host.selinux, privileged || (hostNetwork && (defaults.hostnetworkDisableSelinux ?? true)));
  const sysctls = podSysctls(defaults.sysctls, sb.config.linux?.sysctls ?? {}, { network: hostNetwork, ipc: hostIpc });
  warnings.push(...sysctls.warnings);

  const stopSignal = stopSignalName(cfg.stopSignal, input.image.config.StopSignal);
  const meta = sb.config.metadata;
  const annotations = containerAnnotations({
    id: input.id,
    name: input.name,
    config: cfg,
    sandbox: {
      id: sb.id,
      name: sb.name,
      podName: meta?.name ?? "",
      podNamespace: meta?.namespace ?? "",
      podUid: meta?.uid ?? "",
      annotations: sb.config.annotations,
      ips: sb.ips ?? [],
      resolvConfPath: sb.resolvConfPath,
    },
    image: input.image,
    logPath: input.logPath ?? cfg.logPath,
    rootfs: input.rootfs,
    seccompRef: seccomp.ref,
    created: input.created,
    stopSignal: input.image.config.StopSignal ? stopSignal : undefined,
  });

  const utsShared = sb.namespaces.uts === "host";
  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: cfg.tty,
      user: { uid: u.user.uid, gid: u.user.gid, additionalGids: u.user.additionalGids },
      args,
      env,
      cwd,
      capabilities: caps.capabilities,
      rlimits: parseUlimits(defaults.ulimits),
      noNewPrivileges: sc?.noNewPrivs ?? false,
      ...(apparmor ? { apparmorProfile: apparmor } : {}),
      ...(r.oomScoreAdj !== undefined ? { oomScoreAdj: r.oomScoreAdj } : {}),
      ...(selinux.process ? { selinuxLabel: selinux.process } : {}),
    },
    root: { path: input.rootfs, readonly: readonlyRootfs },
    ...(utsShared ? {} : { hostname: sb.hostname }),
    mounts: m.mounts,
    annotations,
    linux: {
      ...(Object.keys(sysctls.sysctl).length ? { sysctl: sysctls.sysctl } : {}),
      resources: { devices: dev.rules, ...r.resources },
      cgroupsPath: cgroupsPath(input.cgroupManager, sb.cgroupParent, input.id),
      namespaces,
      ...(sb.namespaces.user ? { uidMappings: sb.namespaces.user.uidMappings, gidMappings: sb.namespaces.user.gidMappings } : {}),
      devices: dev.devices,
      ...(seccomp.seccomp ? { seccomp: seccomp.seccomp } : {}),
      ...(m.rootfsPropagation ? { rootfsPropagation: m.rootfsPropagation } : {}),
      maskedPaths: maskedPaths(sc?.maskedPaths ?? [], privileged, host.extraMaskedPaths),
      readonlyPaths: readonlyPaths(sc?.readonlyPaths ?? [], privileged),
      ...(selinux.mount ? { mountLabel: selinux.mount } : {}),
    },
  };
  // CDI edits last, as CRI-O injects them after every other device (and with the process user set).
  if (input.cdiDevices?.length) {
    applyCdiEdits(spec, input.cdiDevices, (p) => {
      const found = io.devicesAt(p);
      if (found.length !== 1 || found[0]!.path !== p) throw new Error(`"${p}" is not a device node`);
      return found[0]!;
    });
  }
  return {
    spec,
    warnings,
    files: u.files,
    mkdirs: m.mkdirs,
    stopSignal,
    seccompRef: seccomp.ref,
    user: { uid: u.user.uid, gid: u.user.gid, additionalGids: spec.process?.user.additionalGids ?? u.user.additionalGids },
  };
}
