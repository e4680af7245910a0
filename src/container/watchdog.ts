import { messageOf } from "../errors.ts";
import type { ContainerCtx } from "./context.ts";
import { settleExit } from "./exit.ts";

/**
 * Watches for running containers whose monitor died (killed, OOM-killed, crashed): nothing would
 * record their exit. Every interval each running container's monitor is checked; when it is gone,
 * an exit file it left wins; else a container the runtime reports stopped (or no longer knows) is
 * EXITED with code 255 and a message saying why; one still running is logged once (its output is
 * no longer logged) and checked again until it ends.
 */
export class Watchdog {
  readonly #c: ContainerCtx;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Running containers already reported as running without their monitor. */
  readonly #unmonitored = new Set<string>();

  constructor(c: ContainerCtx) {
    this.#c = c;
  }

  /** Checks every `intervalMs` (restarts the timer when already running). */
  start(intervalMs = WATCHDOG_MS): void {
    this.stop();
    this.#timer = setInterval(
      () => void this.check().catch((e) => this.#c.d.log.withTag("container").warn(`monitor check failed: ${messageOf(e)}`)),
      intervalMs,
    );
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One pass. */
  async check(): Promise<void> {
    const c = this.#c;
    const log = c.d.log.withTag("container");
    for (const rec of [...c.index.values()]) {
      if (rec.status.state !== "running" || (await c.d.monitors.alive(rec.meta.id))) {
        this.#unmonitored.delete(rec.meta.id);
        continue;
      }
      const r = await settleExit(c, rec, (st) => {
        if (st && st.status !== "stopped") return undefined;
        log.warn(`container ${rec.meta.id} exited after its monitor died: exit code unknown, reporting 255`, { id: rec.meta.id });
        return { exitCode: 255, exitedAt: Date.now(), message: "the container's monitor died before the container exited: its exit code is unknown" };
      });
      if (r.exited) this.#unmonitored.delete(rec.meta.id);
      else if (!this.#unmonitored.has(rec.meta.id)) {
        this.#unmonitored.add(rec.meta.id);
        log.warn(`container ${rec.meta.id} is running without its monitor (it died): its output is no longer logged and its exit code will be unknown`, {
          id: rec.meta.id,
        });
      }
    }
  }
}

// --- internal ---

/** How often the watchdog checks the monitors of running containers. */
const WATCHDOG_MS = 5000;
