import { precondition } from "../errors.ts";
import type { ContainerCtx } from "./context.ts";
import { can } from "./state.ts";

/** ReopenContainerLog: the monitor reopens the log file (after the kubelet rotated it). */
export async function reopenLog(c: ContainerCtx, id: string): Promise<void> {
  const rec = c.index.get("container", id);
  if (!can.reopenLog(rec.status.state)) throw precondition(`container "${rec.meta.id}" is not running`);
  await c.d.monitors.reopenLog(rec.meta.id);
}
