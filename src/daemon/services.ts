import { join } from "node:path";
import type { Config } from "../config/schema.ts";
import { disallowedAnnotations, monitorCgroupOf, parseDuration } from "../config/validate.ts";
import { CdiRegistry, ContainerService, IdmapStaging, type ContainerSettings } from "../container/index.ts";
import { checkAdditionalDevices, configuredHost, detectSpecHost, realSpecIo, SeccompProfileFile, type SpecHost } from "../container/spec/index.ts";
import type { ContainerMeta, ContainerRunState } from "../container/record.ts";
import { readMountsFile } from "../container/node-files.ts";
import { parseStorageOptions } from "../config/storage-options.ts";
import { ImageService, imageOptions } from "../image/index.ts";
import type { Logger } from "../log/index.ts";
import { CniManager } from "../network/index.ts";
import type { Paths } from "../paths.ts";
import { FeaturesCache, RuntimeHandlers, type HandlersSettings } from "../runtime/index.ts";
import { hostNamespaces, hostShm, SandboxService, type SandboxMeta, type SandboxState } from "../sandbox/index.ts";
import { diskUsage, RootfsStore, rootfsPaths } from "../storage/index.ts";
import { ContainerEvents, StatsService } from "../stats/index.ts";
import { NameIndex, RecordDir } from "../store/index.ts";
import { lookPathCached } from "../sys/look-path.ts";

/** Everything the daemon runs, built from the configuration. */
export interface Built {
  images: ImageService;
  sandboxes: SandboxService;
  containers: ContainerService;
  network: CniManager;
  /** The runtime handlers: OCI runtime, features, monitors and warm standbys of each. */
  handlers: RuntimeHandlers;
  host: SpecHost;
  /** Resolves once `host` holds what the default runtime's features say (rro); RPCs wait for it. */
  hostKnown: Promise<void>;
  /** Container/pod stats and CRI metrics (src/stats). */
  stats: StatsService;
  /** GetContainerEvents broadcaster (src/stats). */
  events: ContainerEvents;
  /** Stops watchers. */
  close(): void;
}

/**
 * The composition root's list of constructors: the runtime handlers, the image store, CNI, the
 * sandbox and container services, stats and events, each given the concrete objects it uses.
 * `config()` is read on every call, so SIGHUP changes apply to the next request.
 */
export async function buildServices(
  config: () => Config,
  paths: Paths,
  cgroupManager: "systemd" | "cgroupfs",
  log: Logger,
  o: { repairImages?: boolean } = {},
): Promise<Built> {
  const c0 = config();
  const handlers = new RuntimeHandlers(
    { settings: () => handlersSettings(config()), paths, cgroupManager, log, featuresCache: new FeaturesCache(paths.runroot) },
    lookPathCached,
  );
  // Status reports every handler's features: ask the other handlers' runtimes now, in parallel
  for (const name of Object.keys(c0.runtime.runtimes))
    if (name !== c0.runtime.defaultRuntime)
      void Promise.resolve()
        .then(() => handlers.get(name).features())
        .catch(() => {});
  // The default runtime's features (rro) are asked while the rest starts, not waited for here:
  // the daemon gates every RPC but Version until `hostKnown` (start.ts).
  const features = handlers
    .default()
    .features()
    .catch(() => undefined);
  // selinux (CRI-O): labels are applied only when the key is on and the host has SELinux enabled
  const host = configuredHost(detectSpecHost({ rro: false }), c0.runtime);
  const hostKnown = features.then((f) => {
    host.rro = f?.mountOptions.includes("rro") ?? false;
  });

  const images = new ImageService(imageOptions(c0, paths));
  await images.init({ repair: o.repairImages });

  const network = new CniManager({
    networkDir: c0.network.networkDir,
    pluginDirs: c0.network.pluginDirs,
    defaultNetwork: c0.network.cniDefaultNetwork || undefined,
    cacheDir: join(paths.root, "cni-cache"),
    log: log.withTag("network"),
  });

  const names = new NameIndex();
  const sandboxes = new SandboxService({
    paths,
    log,
    names,
    records: new RecordDir<SandboxMeta, SandboxState>(paths.sandboxes),
    namespaces: hostNamespaces,
    shm: hostShm,
    handlers,
    network,
    settings: () => {
      const c = config();
      return {
        dropInfraCtr: c.runtime.dropInfraCtr,
        defaultSysctls: c.runtime.defaultSysctls,
        runtimeHandlers: Object.keys(c.runtime.runtimes),
        defaultRuntime: c.runtime.defaultRuntime,
        networkWaitMs: Math.max(parseDuration(c.network.cniStatusGracePeriod) ?? 0, 10_000),
        disableHostportMapping: c.runtime.disableHostportMapping,
        handlerAnnotations: Object.fromEntries(
          Object.entries(c.runtime.runtimes).map(([name, h]) => [
            name,
            { defaults: h.defaultAnnotations, disallowed: disallowedAnnotations(h.allowedAnnotations) },
          ]),
        ),
      };
    },
  });
  const seccomp = new SeccompProfileFile(c0.runtime.seccompProfile, log);
  checkAdditionalDevices(c0.runtime.additionalDevices, realSpecIo);
  // storage_option (validated at load): overlay mount options of every container's root filesystem
  const storageOptions = parseStorageOptions(c0.crio.storageOption);
  // default_mounts_file: read once at start (a missing or malformed file stops the daemon: validate.ts)
  const defaultMounts = readMountsFile(c0.runtime.defaultMountsFile);
  const containers: ContainerService = new ContainerService({
    paths,
    log,
    names,
    sandboxes,
    records: new RecordDir<ContainerMeta, ContainerRunState>(paths.containers),
    images,
    rootfs: new RootfsStore({ storageDir: paths.storage, stagingDir: paths.idmap, mountOptions: storageOptions.mountOptions }),
    handlers,
    monitors: handlers.monitorFiles,
    idmap: new IdmapStaging(paths.idmap),
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
          seccompProfile: seccomp.profile(c.runtime.seccompProfile),
          seccompUseDefaultWhenEmpty: c.runtime.seccompUseDefaultWhenEmpty,
          additionalDevices: c.runtime.additionalDevices,
          allowedDevices: c.runtime.allowedDevices,
          deviceOwnershipFromSecurityContext: c.runtime.deviceOwnershipFromSecurityContext,
          privilegedWithoutHostDevices: Object.entries(c.runtime.runtimes)
            .filter(([, rh]) => rh.privilegedWithoutHostDevices)
            .map(([name]) => name),
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
    containers,
    sandboxes,
    layerUsage: async (id) => ({ ...(await diskUsage(paths.storage, id)), mountpoint: rootfsPaths(paths.storage, id).merged }),
    storageDir: paths.storage,
    settings: () => ({
      collectionPeriodS: config().stats.collectionPeriod || config().stats.statsCollectionPeriod,
      includedPodMetrics: config().stats.includedPodMetrics,
    }),
    log: log.withTag("stats"),
  });
  const events = new ContainerEvents({ enabled: () => config().runtime.enablePodEvents, log: log.withTag("events") });
  events.attach({ containers, sandboxes });
  // --- end stats and events ---
  return {
    images,
    sandboxes,
    containers,
    network,
    handlers,
    host,
    hostKnown,
    stats,
    events,
    close: () => {
      containers.stopWatchdog();
      handlers.close(); // kills the warm standby monitors
      network.close();
      stats.close();
      events.close();
    },
  };
}

// --- internal ---

/** What the runtime handlers read of the configuration (runtime/handler.ts). */
function handlersSettings(c: Config): HandlersSettings {
  return {
    runtimes: c.runtime.runtimes,
    defaultRuntime: c.runtime.defaultRuntime,
    logToJournald: c.runtime.logToJournald,
    noPivot: c.runtime.noPivot,
    monitorCgroupOf: (name) => {
      const h = c.runtime.runtimes[name];
      return h ? monitorCgroupOf(c, h) : "";
    },
  };
}
