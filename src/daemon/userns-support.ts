import type { RuntimeFeatures } from "../oci/index.ts";
import type { Paths } from "../paths.ts";
import { join } from "node:path";
import { probeUserns } from "../sys/userns-probe.ts";

/**
 * Why a runtime handler cannot run pods in user namespaces of their own on this node, or
 * undefined when it can: the runtime must know user namespaces (its `features`, or the static
 * record of runc/crun), and the node must pass sys/userns-probe.ts (kernel, tools, idmapped mounts
 * on the filesystems of the layers, the storage and the runroot, overlay over idmapped layers).
 */
export async function usernsSupport(paths: Paths, features: RuntimeFeatures | undefined): Promise<string | undefined> {
  if (!features) return "the runtime could not be found or queried";
  if (!features.namespaces.includes("user")) return "the runtime does not support user namespaces";
  return probeUserns({ layers: join(paths.images, "layers"), storage: paths.storage, runroot: paths.runroot, staging: paths.idmap });
}
