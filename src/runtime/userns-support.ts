import type { RuntimeFeatures } from "../oci/index.ts";
import type { Paths } from "../paths.ts";
import { join } from "node:path";
import { probedUserns, probeUserns, type ProbeDirs } from "../sys/userns-probe.ts";

/**
 * Why a runtime handler cannot run pods in user namespaces of their own on this node, or
 * undefined when it can: the runtime must know user namespaces (its `features`, or the static
 * record of runc/crun), and the node must pass sys/userns-probe.ts (kernel, tools, idmapped mounts
 * on the filesystems of the layers, the storage and the runroot, overlay over idmapped layers).
 */
export async function usernsSupport(paths: Paths, features: RuntimeFeatures | undefined): Promise<string | undefined> {
  return runtimeMissing(features) ?? probeUserns(probeDirs(paths));
}

/**
 * The same without waiting, for Status (its first answer must not wait for the probe's helper
 * processes): false while the node is still being probed (the probe is started then); the kubelet
 * asks again within seconds.
 */
export function usernsSupported(paths: Paths, features: RuntimeFeatures | undefined): boolean {
  if (runtimeMissing(features)) return false;
  const r = probedUserns(probeDirs(paths));
  return r !== undefined && r.result === undefined;
}

// --- internal ---

function runtimeMissing(features: RuntimeFeatures | undefined): string | undefined {
  if (!features) return "the runtime could not be found or queried";
  if (!features.namespaces.includes("user")) return "the runtime does not support user namespaces";
  return undefined;
}

function probeDirs(paths: Paths): ProbeDirs {
  return { layers: join(paths.images, "layers"), storage: paths.storage, runroot: paths.runroot, staging: paths.idmap };
}
