/**
 * Containers of a pod with its own user namespace (hostUsers: false): the pod's namespace and
 * mappings for the spec and the root filesystem, the user check, and the idmapped copies of the
 * spec's bind mount sources that runc binds into the container (runc 1.1 cannot idmap itself).
 * The copies are staged just before `runtime create` and detached right after it: the container's
 * mount namespace keeps its own.
 */
import type { Mount as CriMount } from "../gen/runtime/v1/api_pb.ts";
import { invalid, precondition } from "../errors.ts";
import type { Spec } from "../oci/index.ts";
import type { SandboxView } from "../sandbox/index.ts";
import { clearStaging, releaseStaged, stageIdmapped, type StageItem } from "../sys/idmap.ts";
import { hostIdOf } from "../sys/userns.ts";
import type { ContainerDeps, PodIdmap } from "./deps.ts";
import { normalize } from "node:path";

/** Idmapped copies of containers' bind mount sources, staged under `dir` (paths.idmap) for `runtime create`. */
export class IdmapStaging {
  constructor(readonly dir: string) {}

  /** Stages each item's source through the user namespace at `usernsPath` (or its own mappings); returns the staging paths. */
  stage(id: string, usernsPath: string, items: StageItem[]): Promise<string[]> {
    return stageIdmapped(this.dir, id, usernsPath, items);
  }

  /** Detaches and removes container `id`'s staged mounts (idempotent). */
  clear(id: string): void {
    releaseStaged(this.dir, id);
  }

  /** Detaches every staged mount (at start-up: no creation is in flight). */
  clearAll(): void {
    clearStaging(this.dir);
  }
}

/** The pod's user namespace for its containers; undefined when the pod uses the host's. */
export function podIdmap(sb: SandboxView): PodIdmap | undefined {
  const u = sb.meta.userns;
  if (!u) return undefined;
  const path = sb.status.namespaces.user;
  if (!path) throw precondition(`pod sandbox "${sb.meta.id}" has lost its user namespace`);
  return { usernsPath: path, uids: u.uids, gids: u.gids };
}

/** Refuses a process user or group outside the pod's mappings (runc would fail on setuid). */
export function checkMappedUser(pod: PodIdmap, user: { uid: number; gid: number; additionalGids?: number[] }): void {
  if (hostIdOf(pod.uids, user.uid) === undefined) throw invalid(`user ${user.uid} is not mapped in the pod's user namespace`);
  for (const g of [user.gid, ...(user.additionalGids ?? [])])
    if (hostIdOf(pod.gids, g) === undefined) throw invalid(`group ${g} is not mapped in the pod's user namespace`);
}

/**
 * Stages an idmapped copy of each bind mount source of `spec` (except `skip`: the pod's shm tmpfs,
 * already owned by the pod's root, and image volumes, whose layers are idmapped already) and
 * points the mounts at the copies. A CRI mount with uid/gid mappings of its own is mapped with
 * them. Undo with d.idmap.clear(id).
 */
export async function stageBindMounts(
  d: ContainerDeps,
  id: string,
  spec: Spec,
  pod: PodIdmap,
  skip: ReadonlySet<string>,
  cri: readonly CriMount[],
): Promise<void> {
  if (!d.idmap) throw precondition("idmapped mounts are not available");
  const own = new Map<string, StageItem["maps"]>();
  for (const c of cri) {
    if (c.uidMappings.length === 0) continue;
    const maps = {
      uids: c.uidMappings.map((m) => ({ containerId: m.containerId, hostId: m.hostId, length: m.length })),
      gids: c.gidMappings.map((m) => ({ containerId: m.containerId, hostId: m.hostId, length: m.length })),
    };
    if (!sameMaps(maps.uids, pod.uids) || !sameMaps(maps.gids, pod.gids)) own.set(clean(c.containerPath), maps);
  }
  const mounts = (spec.mounts ?? []).filter((m) => m.type === "bind" && m.source && !skip.has(m.source));
  if (mounts.length === 0) return;
  const items: StageItem[] = mounts.map((m) => ({
    source: m.source!,
    recursive: m.options?.includes("rbind") ?? false,
    slave: m.options?.some((o) => o === "rslave" || o === "slave") ?? false,
    ...(own.has(m.destination) ? { maps: own.get(m.destination) } : {}),
  }));
  const staged = await d.idmap.stage(id, pod.usernsPath, items);
  mounts.forEach((m, i) => {
    m.source = staged[i];
  });
}

// --- internal ---

function sameMaps(
  a: readonly { containerId: number; hostId: number; length: number }[],
  b: readonly { containerId: number; hostId: number; length: number }[],
): boolean {
  return a.length === b.length && a.every((x, i) => x.containerId === b[i]!.containerId && x.hostId === b[i]!.hostId && x.length === b[i]!.length);
}

function clean(p: string): string {
  const n = normalize(p);
  return n.length > 1 ? n.replace(/\/+$/, "") : n;
}
