import type { ContainerCtx, Rec } from "./context.ts";
import type { ExitInfo } from "./deps.ts";

/** The runtime's view of a container (`runtime state`); undefined when it does not know it. */
export type RuntimeState = { status: string; pid: number } | undefined;

/** How a container ended, when no exit file says so. */
export interface ExitVerdict {
  exitCode: number;
  exitedAt: number;
  oomKilled?: boolean;
  /** Why the code is not the process's own (the container's status message). */
  message?: string;
}

/** Callers waiting for containers to exit, woken when an exit is recorded. */
export class ExitWaiters {
  readonly #waiters = new Map<string, Set<() => void>>();

  /** Resolves when container `id`'s exit is recorded, or after `ms`. */
  wait(id: string, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const set = this.#waiters.get(id) ?? new Set();
      this.#waiters.set(id, set);
      const done = () => {
        clearTimeout(t);
        set.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      set.add(done);
    });
  }

  /** Wakes every waiter of container `id`. */
  wake(id: string): void {
    for (const w of this.#waiters.get(id) ?? []) w();
  }
}

/** True once the container is EXITED. */
export function isExited(rec: { status: { state: string } }): boolean {
  return rec.status.state === "exited";
}

/** Records an exit the monitor wrote (exits directory watcher); a no-op for an unknown or exited container. */
export async function recordExit(c: ContainerCtx, id: string, info: ExitInfo): Promise<void> {
  const rec = c.index.find(id);
  if (!rec || isExited(rec)) {
    c.exits.wake(id);
    return;
  }
  await markExited(c, rec, { exitCode: info.exitCode, exitedAt: info.exitedAt, oomKilled: info.oomKilled });
}

/**
 * Concludes a container whose exit went unnoticed: the exit file its monitor wrote wins; else the
 * runtime's state is read, and `verdict` says from it whether (and how) the container ended. The
 * one path of the watchdog, of recovery and of a stop waiting for the exit. Returns whether the
 * container is now EXITED, with the runtime's state when it is not.
 */
export async function settleExit(
  c: ContainerCtx,
  rec: Rec,
  verdict: (st: RuntimeState) => ExitVerdict | undefined,
  o: { announce?: boolean } = {},
): Promise<{ exited: true } | { exited: false; state: RuntimeState }> {
  const exit = await c.d.monitors.readExit(rec.meta.id).catch(() => undefined);
  if (exit) {
    await recordExit(c, rec.meta.id, exit);
    return { exited: true };
  }
  const state = await c.d.handlers
    .get(rec.meta.runtimeHandler)
    .runtime.state(rec.meta.id)
    .catch(() => undefined);
  if (isExited(rec)) return { exited: true }; // ended meanwhile through the usual path
  const end = verdict(state);
  if (!end) return { exited: false, state };
  await markExited(c, rec, end, o.announce ?? true);
  return { exited: true };
}

// --- internal ---

/** Marks the container EXITED, wakes its waiters and (unless `announce` is false: recovery) announces it. */
async function markExited(c: ContainerCtx, rec: Rec, end: ExitVerdict, announce = true): Promise<void> {
  await rec.update((s) => ({
    ...s,
    state: "exited",
    finishedAt: end.exitedAt,
    exitCode: end.exitCode,
    ...(end.oomKilled !== undefined ? { oomKilled: end.oomKilled } : {}),
    ...(end.message !== undefined ? { message: end.message } : {}),
  }));
  c.d.log.withTag("container").info(`Container ${rec.meta.id} exited with code ${end.exitCode}${end.oomKilled ? " (OOM killed)" : ""}`, { id: rec.meta.id });
  c.exits.wake(rec.meta.id);
  if (announce) c.emit("stopped", rec);
}
