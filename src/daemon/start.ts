import { access, constants, mkdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import { loadConfig, type LoadOptions } from "../config/load.ts";
import { renderConfig } from "../config/render.ts";
import { noEffectWarnings, type Config } from "../config/schema.ts";
import type { CriServer } from "../cri/server.ts";
import type { Condition, Services } from "../cri/runtime-service.ts";
import { RuntimeError, messageOf } from "../errors.ts";
import { log, setLogFilter, setLogFormat, setLogLevel, type LogFormat, type LogLevelName } from "../log/index.ts";
import { COMMIT, VERSION } from "../version.ts";
import { applyReloadable, reloadableChanges } from "./reload.ts";
import { installDebugDump } from "./debug-dump.ts";
import { buildServices, type Built } from "./services.ts";
import { Settler } from "./settle.ts";
import { imageOptions } from "../image/index.ts";
import { pathsOf } from "../paths.ts";
import { dirUsage } from "../storage/usage.ts";
import { StreamingServer } from "../streaming/index.ts";
import { streamingBackend } from "./streaming-backend.ts";
import { parseDuration, tracingUrl } from "../config/validate.ts";
import { currentTracer, setTracer } from "../log/trace.ts";
import { watchRegistries } from "./registries-watch.ts";
import { planWipe, wipeObjects } from "./wipe.ts";
import { OperatorSide } from "./operator.ts";
import { ensureDefaultProfile } from "../sys/apparmor.ts";
import { clearCleanShutdown, markCleanShutdown, shutdownWasUnclean } from "../sys/clean-shutdown.ts";
import { releaseIdlePinDir } from "../sys/namespaces.ts";
import { offloadSpawns } from "../sys/exec.ts";
import { lookPath } from "../sys/look-path.ts";

export interface DaemonOptions {
  load: LoadOptions;
  logFormat: LogFormat;
}

/**
 * The composition root: loads the configuration, builds the services, recovers state, serves
 * the CRI socket, and handles SIGHUP (reload) and SIGTERM/SIGINT (graceful stop). Resolves with
 * the process exit code when the daemon has stopped.
 */
export async function runDaemon(o: DaemonOptions): Promise<number> {
  // The gRPC layer (protobuf descriptors, HTTP/2: the largest part of start-up's code) loads while
  // the configuration is read and the runtime is asked for its features, not before.
  const cri = import("../cri/server.ts");
  cri.catch(() => {}); // awaited below; an unhandled rejection must not end the process first
  setLogFormat(o.logFormat);
  let loaded;
  try {
    loaded = await loadConfig(o.load);
  } catch (e) {
    log.fatal(`invalid configuration: ${messageOf(e)}`);
    return 1;
  }
  let config = loaded.config;
  applyLogConfig(config);
  const ops = new OperatorSide(log); // systemd notify + watchdog, metrics, info API

  log.info(`Starting crio, version: ${VERSION}, git commit: ${COMMIT}`);
  for (const f of loaded.files) log.info(`Loaded configuration file "${f}"`);
  if (loaded.files.length === 0) log.info(`No configuration file found at "${o.load.configFile}"; using defaults`);
  for (const w of loaded.warnings) log.warn(w);
  for (const w of noEffectWarnings(config)) log.warn(w);

  if (config.tracing.enableTracing) {
    try {
      await startTracing(config);
    } catch (e) {
      log.fatal(`cannot start: tracing: ${messageOf(e)}`);
      return 1;
    }
  }

  const cgroupDriver = pickCgroupDriver(config);
  // internal_wipe (CRI-O 1.26's wipeIfAppropriate): decided from the version files before this
  // start rewrites them; acted on once the state is recovered
  const wipePlan = config.crio.internalWipe ? planWipe(config, false) : undefined;
  const paths = pathsOf(config);
  let ready = false;
  let built: Built;
  try {
    await mkdir(config.crio.root, { recursive: true, mode: 0o711 });
    await mkdir(config.crio.runroot, { recursive: true, mode: 0o711 });
    // clean_shutdown_file: read before it is cleared; internal_repair checks the store after an unclean stop
    const unclean = shutdownWasUnclean(config.crio.cleanShutdownFile);
    if (unclean) log.warn(`clean shutdown file "${config.crio.cleanShutdownFile}" not found: the last stop was unclean`);
    clearCleanShutdown(config.crio.cleanShutdownFile);
    built = await buildServices(() => config, paths, cgroupDriver, log, { repairImages: unclean && config.crio.internalRepair });
  } catch (e) {
    log.fatal(`cannot start: ${messageOf(e)}`);
    return 1;
  }
  if (!built.host.apparmor) log.info("AppArmor is disabled by the system or at CRI-O build-time");
  else {
    try {
      await ensureDefaultProfile(config.runtime.apparmorProfile, { enabled: true, log });
    } catch (e) {
      log.fatal(`cannot start: ${messageOf(e)}`);
      built.close();
      return 1;
    }
  }
  const streaming = new StreamingServer({
    backend: streamingBackend(built, log),
    address: config.api.streamAddress || "127.0.0.1",
    port: Number(config.api.streamPort),
    tls: config.api.streamEnableTls ? { cert: config.api.streamTlsCert, key: config.api.streamTlsKey, ca: config.api.streamTlsCa || undefined } : undefined,
    idleTimeoutMs: config.api.streamIdleTimeout ? parseDuration(config.api.streamIdleTimeout) : undefined,
    minTlsVersion: TLS_VERSIONS[config.api.tlsMinVersion],
  });
  try {
    await streaming.start();
  } catch (e) {
    log.fatal(`cannot start the streaming server: ${messageOf(e)}`);
    built.close();
    return 1;
  }
  log.info(`Streaming server listening on ${streaming.url}`);
  if (!config.runtime.seccompProfile) log.info("no seccomp profile specified, using the internal default");
  const services: Services = {
    sandboxes: built.sandboxes,
    containers: built.containers,
    images: built.images,
    streaming,
    containerFs: () => dirUsage(paths.storage),
    stats: built.stats,
    events: built.events,
    conditions: async () => [await runtimeCondition(config), await networkCondition(built)],
    handlers: () => built.handlers.status(),
    configJson: () => JSON.stringify(config),
    cgroupDriver: () => cgroupDriver,
    setPodCidr: (cidr) => {
      if (cidr !== built.network.podCidr) log.info(`pod CIDR set to "${cidr}"`);
      built.network.podCidr = cidr;
    },
  };

  // Once serve() listens a client can reach the socket, but the graceful stop is wired only once the state is
  // recovered: a SIGTERM or SIGINT arriving meanwhile is kept and acted on then (it ended the
  // process at once, with the socket left behind).
  // A SIGHUP meanwhile (the default action would end the process) is kept too: the reload runs
  // once it is wired.
  let earlySignal: string | undefined;
  let earlyReload = false;
  const onEarlyTerm = () => void (earlySignal ??= "SIGTERM");
  const onEarlyInt = () => void (earlySignal ??= "SIGINT");
  const onEarlyHup = () => void (earlyReload = true);
  process.on("SIGTERM", onEarlyTerm);
  process.on("SIGINT", onEarlyInt);
  process.on("SIGHUP", onEarlyHup);
  const settler = new Settler({ quietMs: SETTLE_QUIET_MS, minIntervalMs: SETTLE_MIN_INTERVAL_MS });
  const metricsObserver = ops.instrument(config, built);
  // SIGUSR1's default action ends the process: the dump handler is in place before a client can
  // reach the socket (a dump asked for during recovery counts what is recovered so far).
  installDebugDump(log, () => ({
    sandboxes: built.sandboxes.list().length,
    containers: built.containers.list().length,
    standbyMonitors: built.handlers.standbyStats(),
    memorySettles: settler.count,
  }));
  let server: CriServer;
  let SHUTDOWN_GRACE_MS: number;
  try {
    const { serve, SHUTDOWN_GRACE_MS: grace } = await cri;
    SHUTDOWN_GRACE_MS = grace;
    server = await serve({
      socket: config.api.listen,
      maxSendBytes: config.api.grpcMaxSendMsgSize,
      maxRecvBytes: config.api.grpcMaxRecvMsgSize,
      services,
      gate: (method) =>
        ready || method === "Version" ? undefined : new RuntimeError("unavailable", "the runtime is starting: state recovery is not finished"),
      observe: (method, seconds, error) => {
        settler.observe(method);
        metricsObserver?.(method, seconds, error);
      },
    });
    await ops
      .serve(() => config, built, cgroupDriver, paths)
      .catch(async (e) => {
        await server.stop(1000);
        throw e;
      });
  } catch (e) {
    log.fatal(`cannot start: ${messageOf(e)}`);
    return 1;
  }
  log.info(`Listening on "${config.api.listen}"`);
  const regWatch = config.image.autoReloadRegistries
    ? (() => {
        const io = imageOptions(config, paths);
        return watchRegistries({ file: io.registriesConfPath!, dir: io.registriesConfDir!, reload: () => built.images.reload(), log });
      })()
    : undefined;
  const exits = built.handlers.monitorFiles.watchExits(
    (id, exit) => void built.containers.onExit(id, exit).catch((e) => log.warn(`recording the exit of ${id}: ${messageOf(e)}`)),
  );
  try {
    await built.sandboxes.recover();
    await built.containers.recover();
    await exits.start();
    if (
      wipePlan?.containers &&
      (built.sandboxes.list().length > 0 || built.containers.list().length > 0 || (wipePlan.images && built.images.list().length > 0))
    ) {
      for (const r of wipePlan.reasons) log.info(`internal_wipe: ${r}`);
      const result = { ...wipePlan, removedPods: 0, removedContainers: 0, removedImages: 0, failures: 0 };
      await wipeObjects(built, wipePlan, log, result);
      log.info(`internal_wipe: removed ${result.removedPods} pods, ${result.removedContainers} containers and ${result.removedImages} images`);
    }
  } catch (e) {
    log.fatal(`state recovery failed: ${messageOf(e)}`);
    await server.stop(1000);
    return 1;
  }
  await built.hostKnown; // the default runtime's features, asked since buildServices
  ready = true;
  // Start-up ran under a raised JIT threshold (build.ts: jitPolicy): run-once code stayed in the
  // interpreter instead of keeping the JIT threads busy; the serving daemon compiles as usual.
  Bun.unsafe.setJITPolicy(1);
  // From here on programs (runc, CNI plugins, …) start on a spawner thread, off the event loop.
  offloadSpawns();
  log.info("State recovery finished: serving every RPC");
  await ops.ready(config);
  built.stats.start();
  built.containers.startWatchdog();
  void built.sandboxes.retryPendingTeardowns();
  // Status reports user namespace support once the node's probe (helper processes) is done: start it now.
  void built.handlers.status().catch(() => {});
  // Start-up (configuration, recovery, module evaluation) ran a lot of code once and left garbage:
  // drop that code, collect, unmap its pages (measured idle: JS heap 9 → 5 MB, anonymous memory
  // 19 → 16 MB, RSS 65 → 30 MB); again once the node is quiet after a burst of changes (settle.ts).
  settler.poke({ afterMs: 1000, shrink: true });

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (sig: string) => {
      if (stopping) return;
      stopping = true;
      ops.stopping();
      log.info(`Received ${sig}: shutting down`);
      built.events.close(); // ends GetContainerEvents streams, which would hold the graceful stop
      // Both servers at once, each bounded: calls in flight get SHUTDOWN_GRACE_MS, sessions are closed.
      await Promise.all([server.stop(SHUTDOWN_GRACE_MS), streaming.stop(SHUTDOWN_GRACE_MS)]);
      exits.close();
      regWatch?.close();
      settler.close();
      built.close();
      await releaseIdlePinDir(paths.namespaces).catch((e) => log.warn(`releasing the namespaces dir mount: ${messageOf(e)}`));
      // and the idmapped staging dir's (user-namespaced pods), once nothing is staged in it
      await releaseIdlePinDir(paths.idmap).catch((e) => log.warn(`releasing the idmap staging dir mount: ${messageOf(e)}`));
      await ops.close();
      await stopTracing();
      try {
        markCleanShutdown(config.crio.cleanShutdownFile, config.crio.root);
      } catch (e) {
        log.error(`writing the clean shutdown file "${config.crio.cleanShutdownFile}": ${messageOf(e)}`);
      }
      log.info("Stopped");
      resolve(0);
    };
    process.off("SIGTERM", onEarlyTerm);
    process.off("SIGINT", onEarlyInt);
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
    if (earlySignal) void stop(earlySignal);
    const reload = () => {
      void (async () => {
        log.info(`reloading configuration "${o.load.configFile}"`);
        ops.notify.reloading();
        try {
          const next = await loadConfig(o.load);
          for (const w of next.warnings) log.warn(w);
          const changes = reloadableChanges(config, next.config);
          if (built.host.apparmor && next.config.runtime.apparmorProfile !== config.runtime.apparmorProfile) {
            await ensureDefaultProfile(next.config.runtime.apparmorProfile, { enabled: true, log });
          }
          config = applyReloadable(config, next.config);
          applyLogConfig(config);
          built.images.reload(imageOptions(config, paths));
          for (const c of changes) log.info(`set config ${c.key} to ${JSON.stringify(c.value)}`);
          if (changes.length === 0) log.info("configuration reloaded: no reloadable option changed");
        } catch (e) {
          log.error(`configuration reload failed; keeping the running configuration: ${messageOf(e)}`);
        }
        ops.notify.ready();
      })();
    };
    process.off("SIGHUP", onEarlyHup);
    process.on("SIGHUP", reload);
    if (earlyReload && !earlySignal) reload();
  });
}

/** Prints the effective configuration (or the defaults) as commented TOML. */
export async function printConfig(load: LoadOptions): Promise<number> {
  try {
    const { config } = await loadConfig(load);
    process.stdout.write(renderConfig(config));
    return 0;
  } catch (e) {
    process.stderr.write(`crio config: ${messageOf(e)}\n`);
    return 1;
  }
}

// --- internal ---

/**
 * enable_tracing: the OpenTelemetry SDK is imported here and only here, so a daemon with tracing
 * off never loads or evaluates it (its code is a separate chunk of the compiled binary).
 */
async function startTracing(c: Config): Promise<void> {
  const url = tracingUrl(c.tracing.tracingEndpoint)!;
  const { createTracer } = await import("./tracing.ts");
  setTracer(createTracer({ url, samplingRatePerMillion: c.tracing.tracingSamplingRatePerMillion, log: log.withTag("tracing") }));
  log.info(`Tracing: exporting OTLP/HTTP to ${url}, sampling ${c.tracing.tracingSamplingRatePerMillion} per million`);
  if (new URL(url).port === "4317")
    log.warn(`tracing_endpoint "${c.tracing.tracingEndpoint}": port 4317 is OTLP/gRPC's; this runtime exports OTLP over HTTP/protobuf (usually port 4318)`);
}

/** Flushes the spans still buffered, waiting at most 3 s (an unreachable collector must not hold the stop). */
async function stopTracing(): Promise<void> {
  const tracer = currentTracer();
  if (!tracer) return;
  setTracer(undefined);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>(
    (resolve) =>
      (timer = setTimeout(() => {
        log.warn("tracing: spans still unexported after 3 s at shutdown; dropped");
        resolve();
      }, 3000)),
  );
  await Promise.race([tracer.shutdown(), late]);
  clearTimeout(timer);
}
/** A burst of changes is over once no pod, container or image changed for this long: settle then. */
const SETTLE_QUIET_MS = 10_000;
/** Settles at most this often (a node whose pods churn all the time). */
const SETTLE_MIN_INTERVAL_MS = 60_000;

/** tls_min_version (Go's crypto/tls names, as CRI-O takes them) → Node's. */
const TLS_VERSIONS: Record<string, "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3"> = {
  VersionTLS10: "TLSv1",
  VersionTLS11: "TLSv1.1",
  VersionTLS12: "TLSv1.2",
  VersionTLS13: "TLSv1.3",
};

function applyLogConfig(c: Config): void {
  const level = (c.runtime.logLevel === "warning" ? "warn" : c.runtime.logLevel) as LogLevelName;
  setLogLevel(level);
  setLogFilter(c.runtime.logFilter);
}

function pickCgroupDriver(c: Config): "systemd" | "cgroupfs" {
  if (c.runtime.cgroupManager === "cgroupfs") return "cgroupfs";
  if (existsSync("/run/systemd/system")) return "systemd";
  log.warn('cgroup_manager is "systemd" but systemd is not running as PID 1; falling back to "cgroupfs"');
  return "cgroupfs";
}

async function runtimeCondition(c: Config): Promise<Condition> {
  const name = c.runtime.defaultRuntime;
  const h = c.runtime.runtimes[name];
  const path = h?.runtimePath || lookPath(name);
  if (!path) return { type: "RuntimeReady", status: false, reason: "RuntimeNotFound", message: `runtime "${name}" not found in $PATH` };
  try {
    await access(path, constants.X_OK);
  } catch {
    return { type: "RuntimeReady", status: false, reason: "RuntimeNotExecutable", message: `runtime "${name}" at "${path}" is not executable` };
  }
  return { type: "RuntimeReady", status: true, reason: "", message: "" };
}

async function networkCondition(b: Built): Promise<Condition> {
  const st = await b.network.status();
  if (st.ready) return { type: "NetworkReady", status: true, reason: "", message: "" };
  return {
    type: "NetworkReady",
    status: false,
    reason: st.reason ?? "NetworkPluginNotReady",
    message: `Network plugin returns error: ${st.message ?? "cni plugin not initialized"}`,
  };
}
