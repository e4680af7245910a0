import { messageOf, precondition, wrap } from "../errors.ts";
import { traced } from "../log/trace.ts";
import type { ContainerCtx } from "./context.ts";
import { endFailedStart } from "./leftovers.ts";
import { can } from "./state.ts";

/** StartContainer: only a CREATED container starts; a failed `runtime start` leaves it EXITED (killed, should the start have taken effect). */
export async function startContainer(c: ContainerCtx, id: string): Promise<void> {
  const rec = c.index.get("container", id);
  await c.serial.run(rec.meta.id, async () => {
    if (!can.start(rec.status.state)) throw precondition(`container "${rec.meta.id}" is ${rec.status.state}, not created`);
    const rt = c.d.handlers.get(rec.meta.runtimeHandler).runtime;
    // Taken before `runtime start`: a process that exits at once must not end before it began.
    const startedAt = Date.now();
    try {
      await traced("runtime.start", () => rt.start(rec.meta.id), { kind: "client", attrs: { "container.id": rec.meta.id, runtime: rt.name } });
    } catch (e) {
      // the start may have taken effect all the same: nothing may run once it is reported failed
      if ((await endFailedStart(c.d, rec.meta.runtimeHandler, rec.meta.id)) === "running") await rec.update((s) => ({ ...s, state: "running", startedAt }));
      else await rec.update((s) => ({ ...s, state: "exited", finishedAt: Date.now(), exitCode: s.exitCode ?? 128, message: messageOf(e) }));
      throw wrap(e, `start container "${rec.meta.id}"`);
    }
    // An exit noticed meanwhile (a process that ended at once) wins over RUNNING.
    await rec.update((s) => (s.state === "created" ? { ...s, state: "running", startedAt } : { ...s, startedAt: s.startedAt ?? startedAt }));
    c.d.log.withTag("container").info(`Started container ${rec.meta.id}`, { id: rec.meta.id });
  });
  c.emit("started", rec);
}
