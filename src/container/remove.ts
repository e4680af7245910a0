import { rm } from "node:fs/promises";
import { RuntimeError, wrap } from "../errors.ts";
import type { ContainerCtx } from "./context.ts";
import { stopContainer } from "./stop.ts";

/** RemoveContainer: force-stops a running container, then removes every trace. Idempotent. */
export async function removeContainer(c: ContainerCtx, id: string): Promise<void> {
  const rec = c.index.find(id);
  // RemoveContainer is idempotent (api.proto, rpc RemoveContainer).
  if (!rec) return;
  await stopContainer(c, rec, 0);
  await c.serial.run(rec.meta.id, async () => {
    const rt = c.d.handlers.get(rec.meta.runtimeHandler).runtime;
    await rt.delete(rec.meta.id, true).catch((e) => {
      if (!(e instanceof RuntimeError && e.kind === "not-found")) throw wrap(e, `runtime delete "${rec.meta.id}"`);
    });
    await c.d.rootfs.remove(rec.meta.id);
    await c.d.monitors.remove(rec.meta.id);
    await rm(rec.meta.bundle, { recursive: true, force: true });
    await c.d.records.remove(rec.meta.id);
    c.index.delete(rec.meta.id);
    c.d.names.release(rec.meta.name, rec.meta.id);
    c.d.log.withTag("container").info(`Removed container ${rec.meta.id}`, { id: rec.meta.id });
  });
  c.emit("deleted", rec);
}
