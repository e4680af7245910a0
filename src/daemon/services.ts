import { readFileSync, statSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import type { Config } from "../config/schema.ts";
import { disallowedAnnotations, monitorCgroupOf, parseDuration } from "../config/validate.ts";
import { CdiRegistry, ContainerService, type ContainerSettings, type ImagePort, type MonitorPort, type RuntimePort } from "../container/index.ts";
import { buildContainerSpec, configuredHost, detectSpecHost, parseDeviceSpec, parseSeccompProfile, realSpecIo, type SeccompProfile, type SpecHost } from "../container/spec/index.ts";
import type { ContainerMeta, ContainerRunState } from "../container/record.ts";
import { readMountsFile } from "../container/node-files.ts";
import { parseStorageOptions } from "../config/storage-options.ts";
import { RuntimeError, invalid, messageOf } from "../errors.ts";
import { ImageService, imageOptions } from "../image/index.ts";
import type { Logger } from "../log/index.ts";
import { monitorPidOfAsync, Monitors, selfCommand, type StandbyStats } from "../monitor/index.ts";
import { CniManager } from "../network/index.ts";
import { OciRuntime } from "../oci/index.ts";
import type { Paths } from "../paths.ts";
import { SandboxService, type SandboxMeta, type SandboxState } from "../sandbox/index.ts";
import { buildInfraSpec } from "../sandbox/spec.ts";
import { createRootfs, diskUsage, mountImageVolume, removeRootfs, rootfsPaths } from "../storage/index.ts";
import { ContainerEvents, StatsService } from "../stats/index.ts";
import { NameIndex, RecordDir } from "../store/index.ts";
import { mountShm, unmount } from "../sys/mount.ts";
import { isNamespacePinned, listPinned, pinNamespaces, unpinNamespaces } from "../sys/namespaces.ts";
import { clearStaging, releaseStaged, stageIdmapped } from "../sys/idmap.ts";
import { usernsSupport, usernsSupported } from "./userns-support.ts";
import { lookPathSync } from "./look-path.ts";
import { JOURNAL_SOCKET } from "../sys/journal.ts";

/** Everything the daemon runs, built from the configuration. */
export interface Built {
  images: ImageService;
  sandboxes: SandboxService;
  containers: ContainerService;
  network: CniManager;
  monitors: (handler: string) => Monitors;
  runtimes: Map<string, OciRuntime>;
  host: SpecHost;
  /** Container/pod stats and CRI metrics (src/stats). */
  stats: StatsService;
  /** GetContainerEvents broadcaster (src/stats). */
  events: ContainerEvents;
  /** Stops watchers. */
  close(): void;
  /** Warm standby monitors per runtime handler (used, started cold, waiting): the debug dump. */
  standbyStats(): Record<string, { execSync: StandbyStats; exec: StandbyStats; create: StandbyStats }>;
  /** Each configured runtime handler's Status features; the default handler comes first, named "". */
  handlers(): Promise<HandlerFeatures[]>;
}

/** A runtime handler as the Status RPC lists it. */
export interface HandlerFeatures {
  name: string;
  /** The runtime knows "rro" (`features`, or a static record by version) and the kernel has mount_setattr (≥ 5.12). */
  recursiveReadOnlyMounts: boolean;
  /** Pods in user namespaces of their own: the node and the handler's runtime support them (daemon/userns-support.ts). */
  userNamespaces: boolean;
}

/**
 * The composition root's wiring: adapters from the domain's ports to the image store, the
 * monitor, the OCI runtimes, storage, namespaces and CNI. `config()` is read on every call, so
 * SIGHUP changes apply to the next request.
 */
export async function buildServices(config: () => Config, paths: Paths, cgroupManager: "systemd" | "cgroupfs", log: Logger, o: { repairImages?: boolean } = {}): Promise<Built> {
  const c0 = config();
  const runtimes = new Map<string, OciRuntime>();
  const runtimeFor = (name: string): OciRuntime => {
    const h = config().runtime.runtimes[name];
    if (!h) throw invalid(`runtime handler "${name}" is not configured`);
    let rt = runtimes.get(name);
    const path = h.runtimePath || lookPathSync(name) || "";
    if (!rt || rt.path !== path || rt.root !== h.runtimeRoot) {
      if (!path) throw new RuntimeError("failed-precondition", `runtime "${name}" not found: set runtime_path or install it in $PATH`);
      rt = new OciRuntime({ name, path, root: h.runtimeRoot, systemdCgroup: cgroupManager === "systemd" });
      runtimes.set(name, rt);
    }
    return rt;
  };
  // Status reports every handler's features: ask the other handlers' runtimes now, in parallel
  for (const name of Object.keys(c0.runtime.runtimes)) if (name !== c0.runtime.defaultRuntime) void Promise.resolve().then(() => runtimeFor(name).features()).catch(() => {});
  const features = await runtimeFor(c0.runtime.defaultRuntime).features().catch(() => undefined);
  const detected = detectSpecHost({ rro: features?.mountOptions.includes("rro") ?? false });
  // selinux (CRI-O): labels are applied only when the key is on and the host has SELinux enabled
  const host = configuredHost(detected, c0.runtime);

  const images = new ImageService(imageOptions(c0, paths));
  await images.init({ repair: o.repairImages });

  const monitorsByHandler = new Map<string, Monitors>();
  const monitors = (handler: string): Monitors => {
    const rt = runtimeFor(handler);
    let m = monitorsByHandler.get(handler);
    if (!m || m.config.runtime.join("\0") !== rt.command.prefix.join("\0")) {
      m?.close(); // its warm exec-sync monitor runs the old runtime
      const h = config().runtime.runtimes[handler]!;
      m = new Monitors({
        selfCommand: h.monitorPath ? [h.monitorPath] : selfCommand(),
        runtime: rt.command.prefix,
        socketDir: paths.monitors,
        exitDir: paths.exits,
        env: {
          ...Object.fromEntries(h.monitorEnv.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)])),
          // log_to_journald: container monitors also send each log record to the journal
          // (CRIO_JOURNAL_SOCKET overrides the socket, for tests)
          ...(c0.runtime.logToJournald ? { CRIO_MONITOR_JOURNAL: process.env.CRIO_JOURNAL_SOCKET || JOURNAL_SOCKET } : {}),
          // no_pivot: `runtime create --no-pivot` (for a root on a ramdisk, where pivot_root fails)
          ...(c0.runtime.noPivot ? { CRIO_MONITOR_NO_PIVOT: "1" } : {}),
        },
      });
      monitorsByHandler.set(handler, m);
    }
    return m;
  };
  const monitorPort: MonitorPort = {
    create: async (o) => {
      const h = config().runtime.runtimes[o.runtime.name];
      const cgroup = { manager: cgroupManager, setting: h ? monitorCgroupOf(config(), h) : "", parent: o.cgroupParent, id: o.id };
      // container_create_timeout of the pod's own handler (settings() carries the default handler's)
      const r = await monitors(o.runtime.name).spawn({ id: o.id, bundle: o.bundle, logPath: o.logPath, terminal: o.terminal, stdin: o.stdin, stdinOnce: o.stdinOnce, logSizeMax: o.logSizeMax, timeoutMs: h ? h.containerCreateTimeout * 1000 : o.timeoutMs, noSyncLog: h?.noSyncLog, cgroup });
      if (r.cgroupWarning) log.warn(r.cgroupWarning, { id: o.id });
      return r;
    },
    execSync: (o) => monitors(o.runtime.name).execSync({ containerId: o.id, process: o.process as object, timeoutMs: o.timeoutMs }),
    reopenLog: (id) => monitors(config().runtime.defaultRuntime).reopenLog(id),
    readExit: (id) => monitors(config().runtime.defaultRuntime).readExit(id),
    alive: async (id) => (await monitorPidOfAsync(paths.monitors, id)) !== undefined,
    cleanup: (id) => monitors(config().runtime.defaultRuntime).remove(id),
    abandon: (id) => monitors(config().runtime.defaultRuntime).abandon(id),
  };
  const runtimePort = (name: string): RuntimePort => {
    const rt = runtimeFor(name);
    return {
      name, path: rt.path, root: rt.root,
      start: (id) => rt.start(id),
      kill: (id, sig, all) => rt.kill(id, sig, all),
      delete: (id, force) => rt.delete(id, force),
      state: async (id) => {
        const s = await rt.state(id);
        return s ? { status: s.status, pid: s.pid } : undefined;
      },
      update: (id, res) => rt.update(id, res as never),
      list: async () => (await rt.list()).map((x) => x.id),
    };
  };
  const imagePort: ImagePort = {
    forCreate: async (ref) => {
      const rec = images.status(ref);
      if (!rec) return undefined;
      return { id: rec.id, name: rec.repoTags[0] ?? rec.repoDigests[0] ?? "", config: (rec.config.config ?? {}) as never, layers: images.layers(rec.id) };
    },
    checkPolicy: (name, namespace) => images.checkPolicyFor(name, namespace),
    ensure: async (ref, authFile, signal) => {
      let rec = images.status(ref);
      if (!rec) {
        log.info(`Pulling image ${ref}`, { authFile: authFile || undefined });
        rec = await images.pull(ref, { signal, authFile: authFile || undefined });
      }
      return { id: rec.id, name: rec.repoTags[0] ?? ref, config: (rec.config.config ?? {}) as never, layers: images.layers(rec.id) };
    },
  };

  const network = new CniManager({
    networkDir: c0.network.networkDir,
    pluginDirs: c0.network.pluginDirs,
    defaultNetwork: c0.network.cniDefaultNetwork || undefined,
    cacheDir: join(paths.root, "cni-cache"),
    log: log.withTag("network"),
  });

  const names = new NameIndex();
  const sandboxes = new SandboxService({
    paths, log, names,
    records: new RecordDir<SandboxMeta, SandboxState>(paths.sandboxes),
    namespaces: { pin: pinNamespaces, unpin: unpinNamespaces, isPinned: isNamespacePinned, list: listPinned },
    usernsSupport: async (handler) => usernsSupport(paths, await runtimeFor(handler).features().catch(() => undefined)),
    shm: { mount: (p, size, owner) => mountShm(p, size, owner), unmount: async (p) => void unmount(p, { detach: true }) },
    network: {
      waitReady: (ms, signal) => network.waitReady(ms, signal),
      // disable_hostport_mapping: the runtime sets up no hostPort mapping (the CNI portmap plugin gets none)
      setUp: async (pod, signal) => ({ ips: (await network.setUp({ ...pod, portMappings: config().runtime.disableHostportMapping ? [] : pod.portMappings }, signal)).ips }),
      tearDown: (pod) => network.tearDown({ id: pod.id, netns: pod.netns }),
      hostAddresses: () => network.hostAddresses(),
      attachedPods: () => network.attachedPods(),
    },
    infra: { start: (sb, cfg, signal) => containers.infra.start(sb, cfg, signal), stop: (sb) => containers.infra.stop(sb), remove: (sb) => containers.infra.remove(sb) },
    settings: () => {
      const c = config();
      return {
        dropInfraCtr: c.runtime.dropInfraCtr,
        defaultSysctls: c.runtime.defaultSysctls,
        runtimeHandlers: Object.keys(c.runtime.runtimes),
        defaultRuntime: c.runtime.defaultRuntime,
        networkWaitMs: Math.max(parseDuration(c.network.cniStatusGracePeriod) ?? 0, 10_000),
        handlerAnnotations: Object.fromEntries(Object.entries(c.runtime.runtimes).map(([name, h]) => [name, { defaults: h.defaultAnnotations, disallowed: disallowedAnnotations(h.allowedAnnotations) }])),
      };
    },
  });
  // seccomp_profile: loaded at start (a missing or invalid file stops the daemon, as in CRI-O); a
  // reload that names a file which fails to load is logged and the previous profile stays.
  const loadSeccomp = (path: string) => {
    const stamp = seccompStamp(path);
    return { path, stamp, profile: parseSeccompProfile(readFileSync(path, "utf8"), path) };
  };
  let seccomp: { path: string; stamp: string; profile: SeccompProfile } | undefined;
  let seccompRefused = "";
  if (c0.runtime.seccompProfile) {
    try {
      seccomp = loadSeccomp(c0.runtime.seccompProfile);
    } catch (e) {
      throw invalid(`invalid seccomp_profile "${c0.runtime.seccompProfile}": ${messageOf(e)}`);
    }
    log.info(`Using seccomp profile "${seccomp.path}" for RuntimeDefault`);
  }
  // additional_devices must name host devices (CRI-O's LoadDevices at start): a typo stops the
  // daemon instead of failing every container.
  for (const entry of c0.runtime.additionalDevices) {
    try {
      if (realSpecIo.devicesAt(parseDeviceSpec(entry).hostPath).length === 0) throw new Error("no device nodes found");
    } catch (e) {
      throw invalid(`invalid additional_devices entry "${entry}": ${messageOf(e)}`);
    }
  }
  const seccompProfile = (path: string): SeccompProfile | undefined => {
    if (!path) return undefined;
    const stamp = seccompStamp(path);
    if (seccomp?.path === path && seccomp.stamp === stamp) return seccomp.profile;
    if (seccompRefused === `${path}@${stamp}`) return seccomp?.profile;
    try {
      seccomp = loadSeccomp(path);
      seccompRefused = "";
      log.info(`Using seccomp profile "${path}" for RuntimeDefault`);
    } catch (e) {
      seccompRefused = `${path}@${stamp}`;
      log.error(`invalid seccomp_profile "${path}", keeping the previous profile: ${messageOf(e)}`);
    }
    return seccomp?.profile;
  };
  // storage_option (validated at load): overlay mount options of every container's root filesystem
  const storageOptions = parseStorageOptions(c0.crio.storageOption);
  // default_mounts_file: read once at start (a missing or malformed file stops the daemon: validate.ts)
  const defaultMounts = readMountsFile(c0.runtime.defaultMountsFile);
  const containers: ContainerService = new ContainerService({
    paths, log, names, sandboxes,
    records: new RecordDir<ContainerMeta, ContainerRunState>(paths.containers),
    images: imagePort,
    rootfs: {
      create: (id, lower, m) => createRootfs(paths.storage, id, lower, { mountOptions: storageOptions.mountOptions, ...(m ? { idmap: { ...m, stagingBase: paths.idmap, stagingKey: `${id}-rootfs` } } : {}) }),
      mountImage: (id, n, lower, m) => mountImageVolume(paths.storage, id, n, lower, m ? { ...m, stagingBase: paths.idmap, stagingKey: `${id}-iv${n}` } : undefined),
      remove: (id) => removeRootfs(paths.storage, id),
    },
    runtime: runtimePort,
    monitor: monitorPort,
    idmap: {
      stage: (id, usernsPath, items) => stageIdmapped(paths.idmap, id, usernsPath, items),
      clear: (id) => releaseStaged(paths.idmap, id),
      clearAll: () => clearStaging(paths.idmap),
    },
    buildSpec: buildContainerSpec,
    buildInfraSpec,
    host,
    io: realSpecIo,
    cdi: new CdiRegistry(() => config().runtime.cdiSpecDirs, log.withTag("cdi")),
    settings: (): ContainerSettings => {
      const c = config();
      const h = c.runtime.runtimes[c.runtime.defaultRuntime];
      return {
        defaults: {
          capabilities: c.runtime.defaultCapabilities,
          addInheritableCapabilities: c.runtime.addInheritableCapabilities,
          env: c.runtime.defaultEnv,
          ulimits: c.runtime.defaultUlimits,
          sysctls: c.runtime.defaultSysctls,
          containerMinMemory: h?.containerMinMemory ?? 12 * 1024 * 1024,
          pidsLimit: c.runtime.pidsLimit > 0 ? c.runtime.pidsLimit : undefined,
          readOnly: c.runtime.readOnly,
          apparmorProfile: c.runtime.apparmorProfile,
          seccompProfile: seccompProfile(c.runtime.seccompProfile),
          seccompUseDefaultWhenEmpty: c.runtime.seccompUseDefaultWhenEmpty,
          additionalDevices: c.runtime.additionalDevices,
          allowedDevices: c.runtime.allowedDevices,
          deviceOwnershipFromSecurityContext: c.runtime.deviceOwnershipFromSecurityContext,
          privilegedWithoutHostDevices: Object.entries(c.runtime.runtimes).filter(([, rh]) => rh.privilegedWithoutHostDevices).map(([name]) => name),
          bindMountPrefix: c.runtime.bindMountPrefix || undefined,
          absentMountSourcesToReject: c.runtime.absentMountSourcesToReject,
          hostnetworkDisableSelinux: c.runtime.hostnetworkDisableSelinux,
        },
        timezone: c.runtime.timezone || undefined,
        containerMinMemoryByHandler: Object.fromEntries(Object.entries(c.runtime.runtimes).map(([name, rh]) => [name, rh.containerMinMemory])),
        defaultMounts,
        cgroupManager,
        logSizeMax: c.runtime.logSizeMax,
        logDir: c.crio.logDir,
        ctrStopTimeoutS: c.runtime.ctrStopTimeout,
        pauseImage: c.image.pauseImage,
        pauseCommand: c.image.pauseCommand,
        pauseImageAuthFile: c.image.pauseImageAuthFile,
        infraCtrCpuset: c.runtime.infraCtrCpuset,
        containerCreateTimeoutS: h?.containerCreateTimeout ?? 240,
        hooksDir: c.runtime.hooksDir,
        runtimeHandlers: Object.keys(c.runtime.runtimes),
      };
    },
  });
  sandboxes.setContainers(containers);
  // --- stats and events (src/stats) ---
  const stats = new StatsService({
    containers, sandboxes,
    layerUsage: async (id) => ({ ...(await diskUsage(paths.storage, id)), mountpoint: rootfsPaths(paths.storage, id).merged }),
    storageDir: paths.storage,
    settings: () => ({ collectionPeriodS: config().stats.collectionPeriod || config().stats.statsCollectionPeriod, includedPodMetrics: config().stats.includedPodMetrics }),
    log: log.withTag("stats"),
  });
  const events = new ContainerEvents({ enabled: () => config().runtime.enablePodEvents, log: log.withTag("events") });
  events.attach({ containers, sandboxes });
  // --- end stats and events ---
  return {
    images, sandboxes, containers, network, monitors, runtimes, host, stats, events,
    standbyStats: () => Object.fromEntries([...monitorsByHandler].map(([h, m]) => [h, { execSync: m.standby.stats(), exec: m.execStandby.stats(), create: m.createStandby.stats() }])),
    handlers: async () => {
      const c = config();
      const one = async (name: string): Promise<HandlerFeatures> => {
        const f = await Promise.resolve().then(() => runtimeFor(name).features()).catch(() => undefined);
        const userNamespaces = usernsSupported(paths, f);
        return { name, recursiveReadOnlyMounts: kernelAtLeast(release(), 5, 12) && (f?.rro ?? false), userNamespaces };
      };
      const list = await Promise.all(Object.keys(c.runtime.runtimes).map(one));
      const def = list.find((h) => h.name === c.runtime.defaultRuntime) ?? { recursiveReadOnlyMounts: false, userNamespaces: false };
      return [{ ...def, name: "" }, ...list];
    },
    close: () => {
      containers.stopWatchdog();
      for (const m of monitorsByHandler.values()) m.close(); // kills the warm exec-sync monitors
      network.close();
      stats.close();
      events.close();
    },
  };
}

/** A file's size and mtime, to notice a changed seccomp profile; "" when it cannot be read. */
function seccompStamp(path: string): string {
  try {
    const st = statSync(path);
    return `${st.size}/${st.mtimeMs}`;
  } catch {
    return "";
  }
}

/** The kernel release ("6.1.0-18-amd64") is at least major.minor. */
function kernelAtLeast(rel: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = rel.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  return a > major || (a === major && b >= minor);
}
