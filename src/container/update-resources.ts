import { precondition } from "../errors.ts";
import type { LinuxContainerResources } from "../gen/runtime/v1/api_pb.ts";
import type { ContainerCtx } from "./context.ts";
import { containerResources } from "./spec/resources.ts";
import { can } from "./state.ts";

/** UpdateContainerResources: `runtime update` on a created or running container, then recorded. */
export async function updateResources(c: ContainerCtx, id: string, resources: LinuxContainerResources | undefined, resourcesJson: unknown): Promise<void> {
  const rec = c.index.get("container", id);
  if (!can.update(rec.status.state)) throw precondition(`container "${rec.meta.id}" is ${rec.status.state}: only created or running containers can be updated`);
  const st = c.d.settings();
  const oci = containerResources({
    resources,
    minMemory: st.defaults.containerMinMemory,
    minOomScoreAdj: c.d.host.minOomScoreAdj,
    cgroup: c.d.host.cgroup,
    pidsLimit: st.defaults.pidsLimit,
  });
  for (const w of oci.warnings) c.d.log.withTag("container").warn(w, { id: rec.meta.id });
  await c.d.handlers.get(rec.meta.runtimeHandler).runtime.update(rec.meta.id, oci.resources);
  await rec.update((s) => ({ ...s, resources: resourcesJson }));
}
