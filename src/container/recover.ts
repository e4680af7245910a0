import { messageOf } from "../errors.ts";
import type { ContainerCtx, Rec } from "./context.ts";
import { settleExit } from "./exit.ts";
import { removeContainerLeftovers } from "./leftovers.ts";

/**
 * Loads the container records and reconciles them with the runtime and the exit files written
 * while the daemon was down; removes the leftovers of creations that never got a record.
 */
export async function recoverContainers(c: ContainerCtx): Promise<void> {
  const log = c.d.log.withTag("container");
  // idmapped mounts staged by a creation the daemon did not live to finish
  try {
    c.d.idmap?.clearAll();
  } catch (e) {
    log.warn(`detaching leftover idmapped mounts: ${messageOf(e)}`);
  }
  const loaded = await c.d.records.loadAll((id, why) => log.warn(`removing unfinished container record ${id}: ${why}`));
  // A record whose pod has none (a crash between the infra container's record and its pod's) is
  // half-made work: undone with the other leftovers, never listed.
  const recs: Rec[] = [];
  for (const rec of loaded) {
    if (c.d.sandboxes.find(rec.meta.sandboxId)) recs.push(rec);
    else {
      log.info(`container ${rec.meta.id} belongs to pod sandbox ${rec.meta.sandboxId}, which has no record: removing it`, { id: rec.meta.id });
      await c.d.records.remove(rec.meta.id);
    }
  }
  await removeContainerLeftovers(c.d, new Set(recs.map((r) => r.meta.id)));
  for (const rec of recs) {
    c.index.add(rec.meta.id, rec);
    c.d.names.reserve(rec.meta.name, rec.meta.id);
    if (rec.status.state === "exited") continue;
    // Gone without an exit file (reboot, or the monitor was killed): EXITED, code unknown.
    const r = await settleExit(
      c,
      rec,
      (st) =>
        st && st.status !== "stopped"
          ? undefined
          : {
              exitCode: rec.status.exitCode ?? 255,
              exitedAt: rec.status.finishedAt ?? Date.now(),
              message: "the container was not found after a restart of the runtime",
            },
      { announce: false },
    );
    if (!r.exited && r.state?.status === "running" && rec.status.state === "created")
      await rec.update((s) => ({ ...s, state: "running", startedAt: s.startedAt ?? Date.now() }));
  }
}
