/**
 * The runtime handlers of the configuration, one RuntimeHandler each, built on first use. A
 * reload (SIGHUP) that changes a handler's runtime path or root, or its monitor's path or
 * environment, replaces the handler on its next use: the old one's waiting monitors, which run the
 * old runtime, are killed. Monitors of containers already created keep running as they are.
 */
import { invalid, RuntimeError } from "../errors.ts";
import { MonitorFiles, type StandbyStats } from "../monitor/index.ts";
import { RuntimeHandler, type HandlerContext, type HandlerFeatures } from "./handler.ts";

/** How the registry finds a runtime binary named like its handler when runtime_path is empty. */
export type LookPath = (name: string) => string | undefined;

/** Every configured runtime handler, by name. */
export class RuntimeHandlers {
  /** The monitor dirs and exit files of every container, whichever handler created it. */
  readonly monitorFiles: MonitorFiles;
  readonly #byName = new Map<string, { key: string; handler: RuntimeHandler }>();

  constructor(
    readonly ctx: HandlerContext,
    readonly lookPath: LookPath,
  ) {
    this.monitorFiles = new MonitorFiles({ socketDir: ctx.paths.monitors, exitDir: ctx.paths.exits });
  }

  /**
   * Handler `name`: invalid-argument when it is not configured, failed-precondition when its
   * runtime binary is nowhere (neither runtime_path nor $PATH).
   */
  get(name: string): RuntimeHandler {
    const h = this.ctx.settings().runtimes[name];
    if (!h) throw invalid(`runtime handler "${name}" is not configured`);
    const path = h.runtimePath || this.lookPath(name) || "";
    const key = JSON.stringify([path, h.runtimeRoot, h.monitorPath, h.monitorEnv]);
    const cur = this.#byName.get(name);
    if (cur?.key === key) return cur.handler;
    if (!path) throw new RuntimeError("failed-precondition", `runtime "${name}" not found: set runtime_path or install it in $PATH`);
    cur?.handler.close(); // its warm monitors run the old runtime
    const handler = new RuntimeHandler(name, path, h, this.ctx);
    this.#byName.set(name, { key, handler });
    return handler;
  }

  /** The default_runtime's handler. */
  default(): RuntimeHandler {
    return this.get(this.ctx.settings().defaultRuntime);
  }

  /** Each configured handler as Status lists it; the default handler comes first, named "". */
  async status(): Promise<HandlerFeatures[]> {
    const c = this.ctx.settings();
    const none = (name: string): HandlerFeatures => ({ name, recursiveReadOnlyMounts: false, userNamespaces: false });
    const one = (name: string) =>
      Promise.resolve()
        .then(() => this.get(name).status())
        .catch(() => none(name));
    const list = await Promise.all(Object.keys(c.runtimes).map(one));
    const def = list.find((h) => h.name === c.defaultRuntime) ?? none("");
    return [{ ...def, name: "" }, ...list];
  }

  /** Warm standby monitors per handler built so far (used, started cold, waiting): the debug dump. */
  standbyStats(): Record<string, { execSync: StandbyStats; exec: StandbyStats; create: StandbyStats }> {
    return Object.fromEntries(
      [...this.#byName].map(
        ([
          name,
          {
            handler: { monitors: m },
          },
        ]) => [name, { execSync: m.standby.stats(), exec: m.execStandby.stats(), create: m.createStandby.stats() }],
      ),
    );
  }

  /** Kills every handler's waiting monitors (daemon shutdown). */
  close(): void {
    for (const { handler } of this.#byName.values()) handler.close();
  }
}
