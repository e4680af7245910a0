import type { Config } from "../config/schema.ts";
import { RuntimeError, messageOf } from "../errors.ts";
import type { Logger } from "../log/index.ts";
import { CrioMetrics, instrumentPulls, selectCollectors, serveMetrics, type MetricsServer } from "../metrics/index.ts";
import type { Paths } from "../paths.ts";
import { createNotifier, type Notifier } from "../sys/notify.ts";
import { infoSocketPath, serveInfo, type InfoServer } from "./info-api.ts";
import type { Built } from "./services.ts";
import { writeVersionFiles } from "./wipe.ts";

/**
 * The daemon's operator-facing side, in the order runDaemon uses it: systemd notifications
 * (created first: it reads and unsets NOTIFY_SOCKET, and starts the watchdog), metrics wired
 * into the services, the info and metrics endpoints once the CRI socket listens, READY=1 and
 * the version files once recovery is done, STOPPING=1 and closing at shutdown.
 */
export class OperatorSide {
  readonly notify: Notifier;
  metrics: CrioMetrics | undefined;
  #log: Logger;
  #stopWatchdog: () => void;
  #info?: InfoServer;
  #metricsServer?: MetricsServer;

  constructor(log: Logger) {
    this.#log = log;
    this.notify = createNotifier({ onError: (e) => log.warn(`systemd notification failed: ${e.message}`) });
    if (this.notify.socket) log.debug(`Notifying systemd on "${this.notify.socket}"`);
    this.#stopWatchdog = this.notify.startWatchdog();
    if (this.notify.watchdogIntervalMs) log.info(`systemd watchdog: pinging every ${this.notify.watchdogIntervalMs} ms`);
    this.notify.status("loading the configuration and the stores");
  }

  /**
   * With enable_metrics, creates the metrics, makes image pulls and OOM kills feed them, and
   * returns the per-RPC observer for the CRI server; undefined otherwise.
   */
  instrument(c: Config, built: Built): ((operation: string, seconds: number, error?: RuntimeError) => void) | undefined {
    if (!c.metrics.enableMetrics) return undefined;
    const { unknown } = selectCollectors(c.metrics.metricsCollectors);
    for (const n of unknown) this.#log.warn(`metrics_collectors: unknown collector "${n}" ignored`);
    const m = (this.metrics = new CrioMetrics({ collectors: c.metrics.metricsCollectors, eventsDropped: () => built.events.dropped() }));
    instrumentPulls(built.images, m);
    built.containers.onChange((kind, ctr) => {
      if (kind === "stopped" && ctr.status.oomKilled) m.containerOom(ctr.meta.name);
      if (kind === "deleted") m.containerRemoved(ctr.meta.name);
    });
    return (operation, seconds, error) => m.operation(operation, seconds, error !== undefined);
  }

  /** Starts the info API beside the CRI socket, and the metrics endpoint when enabled. Throws naming what failed. */
  async serve(config: () => Config, built: Built, cgroupDriver: string, paths: Paths): Promise<void> {
    const c = config();
    this.#info = await serveInfo(infoSocketPath(c.api.listen), {
      config,
      cgroupDriver: () => cgroupDriver,
      containers: built.containers,
      sandboxes: built.sandboxes,
      storageDir: paths.storage,
    }).catch((e) => {
      throw new RuntimeError(RuntimeError.from(e).kind, `info API on "${infoSocketPath(c.api.listen)}": ${messageOf(e)}`, { cause: e });
    });
    this.#log.info(`Serving the info API on "${this.#info.socket}"`);
    if (this.metrics) {
      const mc = c.metrics;
      this.#metricsServer = await serveMetrics({
        host: mc.metricsHost,
        port: mc.metricsPort,
        socket: mc.metricsSocket || undefined,
        cert: mc.metricsCert || undefined,
        key: mc.metricsKey || undefined,
        render: () => this.metrics!.render(),
      });
      this.#log.info(`Serving metrics on ${this.#metricsServer.url}${mc.metricsSocket ? ` and "${mc.metricsSocket}"` : ""}`);
    }
    this.notify.status("recovering pods and containers");
  }

  /** Recovery is done and every RPC is served: writes the version files, then READY=1. */
  async ready(c: Config): Promise<void> {
    await writeVersionFiles(c).catch((e) => this.#log.warn(`writing the version file: ${messageOf(e)}`));
    this.notify.ready(`serving CRI on ${c.api.listen}`);
  }

  /** STOPPING=1: the first thing a graceful stop does. */
  stopping(): void {
    this.notify.stopping("shutting down");
  }

  /** Stops the watchdog and the endpoints. */
  async close(): Promise<void> {
    this.#stopWatchdog();
    await Promise.all([this.#info?.stop(), this.#metricsServer?.stop()]);
  }
}
