import { RuntimeError, messageOf } from "../errors.ts";
import type { ContainerCtx, Rec } from "./context.ts";
import { isExited, settleExit } from "./exit.ts";
import { can } from "./state.ts";

/**
 * StopContainer's work: the stop signal, then SIGKILL after `timeoutS` (at once when 0); returns
 * when the process is gone. A container that is not running (or never started) is a no-op, or
 * its created init is killed and it is marked EXITED (137).
 */
export async function stopContainer(c: ContainerCtx, rec: Rec, timeoutS: number): Promise<void> {
  if (!can.signal(rec.status.state) && rec.status.state !== "created") return;
  const rt = c.d.handlers.get(rec.meta.runtimeHandler).runtime;
  const log = c.d.log.withTag("container");
  if (rec.status.state === "created") {
    // Never started: nothing to signal; kill the created init (runc waits in it) and mark it exited.
    await rt.kill(rec.meta.id, "KILL").catch(() => {});
    await waitExit(c, rec, 10_000);
    if (rec.status.state === "created") await rec.update((s) => ({ ...s, state: "exited", finishedAt: Date.now(), exitCode: 137 }));
    return;
  }
  if (timeoutS > 0) {
    await rt.kill(rec.meta.id, rec.meta.stopSignal).catch((e) => log.debug(`stop signal to ${rec.meta.id}: ${messageOf(e)}`));
    if (await waitExit(c, rec, timeoutS * 1000)) return;
    log.info(`Stopping container ${rec.meta.id} with SIGKILL: it did not stop within ${timeoutS}s`, { id: rec.meta.id });
  }
  await rt.kill(rec.meta.id, "KILL", true).catch((e) => log.debug(`SIGKILL to ${rec.meta.id}: ${messageOf(e)}`));
  const floor = Math.max(c.d.settings().ctrStopTimeoutS, 30) * 1000;
  const end = Date.now() + floor;
  if (await waitExit(c, rec, Math.min(floor, KILL_ALL_GRACE_MS))) return;
  // `kill --all` signals the processes its cgroup lists; a container whose processes are no
  // longer listed there (moved out of the cgroup runc recorded) is not reached by it, and would
  // run on with its runtime reporting it running. SIGKILL to its init process itself (`kill`
  // without --all: the runtime also thaws a frozen one) ends it, and with it every process of its
  // PID namespace; repeated until it is gone or the floor has passed.
  while (Date.now() < end) {
    const st = await rt.state(rec.meta.id).catch(() => undefined);
    if (isExited(rec)) return;
    // gone, or stopped without its exit recorded yet: waitExit concludes within seconds
    if (!st || st.status === "stopped") {
      if (await waitExit(c, rec, end - Date.now())) return;
      break;
    }
    log.warn(
      `container ${rec.meta.id} is still ${st?.status ?? "there"} after SIGKILL to the processes of its cgroup: sending SIGKILL to its init process${st?.pid ? ` (pid ${st.pid})` : ""}`,
      { id: rec.meta.id },
    );
    await rt.kill(rec.meta.id, "KILL", false).catch((e) => log.debug(`SIGKILL to the init of ${rec.meta.id}: ${messageOf(e)}`));
    if (await waitExit(c, rec, Math.min(end - Date.now(), KILL_INIT_RETRY_MS))) return;
  }
  throw new RuntimeError("deadline-exceeded", `container "${rec.meta.id}" did not exit after SIGKILL within ${floor / 1000}s`);
}

/**
 * Waits up to `ms` until the container is EXITED: an exit notification, an exit file found, or
 * the runtime no longer knowing it (or reporting it stopped for a few seconds: its monitor died
 * without writing an exit), then EXITED with code 137. False when the time ran out.
 */
export async function waitExit(c: ContainerCtx, rec: Rec, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  let stoppedSince: number | undefined;
  while (!isExited(rec)) {
    const left = end - Date.now();
    if (left <= 0) return false;
    await c.exits.wait(rec.meta.id, Math.min(left, 1000));
    if (isExited(rec)) break;
    // Safety net: an exit file may be there without a notification yet.
    await settleExit(c, rec, (st) => {
      if (st?.status === "stopped") stoppedSince ??= Date.now();
      if (st !== undefined && (stoppedSince === undefined || Date.now() - stoppedSince <= 3000)) return undefined;
      c.d.log.withTag("container").warn(`container ${rec.meta.id} is gone but its monitor recorded no exit; reporting exit code 137`, { id: rec.meta.id });
      return { exitCode: 137, exitedAt: Date.now(), oomKilled: false };
    });
  }
  return true;
}

// --- internal ---

/** How long a container may take to die after `kill --all KILL` before its init is killed directly. */
const KILL_ALL_GRACE_MS = 2000;
/** How often SIGKILL to the init process is repeated while the container lives on. */
const KILL_INIT_RETRY_MS = 5000;
