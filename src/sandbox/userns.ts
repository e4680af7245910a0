/**
 * Pods in a user namespace of their own (Kubernetes `hostUsers: false`, KEP-127): the kubelet
 * sends NamespaceOption.userns_options with mode POD and one uid and one gid range of 65,536 ids
 * (container 0 → a host base, a multiple of 65,536, allocated per pod); mode NODE (or none) is the
 * host's user namespace. The pod's other namespaces cannot be the host's then. Ranges of pods the
 * runtime holds never overlap: what a pod wrote is owned by its host ids until it is removed.
 */
import type { NamespaceOption, UserNamespace } from "../gen/runtime/v1/api_pb.ts";
import { invalid } from "../errors.ts";
import type { IdMap } from "../sys/userns.ts";
import { NS } from "./record.ts";

/** The size of a pod's id range, and the alignment of its host base. */
export const USERNS_RANGE = 65536;

/** A pod's user namespace mappings. */
export interface PodUserns {
  uids: IdMap[];
  gids: IdMap[];
}

/**
 * The pod's user namespace from its NamespaceOption, undefined for the host's (no options, or mode
 * NODE without mappings). Throws invalid-argument for an unknown mode, mappings that are not one
 * kubelet-style range per kind, and host network/PID/IPC namespaces combined with one.
 */
export function podUserns(nso: NamespaceOption | undefined): PodUserns | undefined {
  const u = nso?.usernsOptions;
  if (!u) return undefined;
  if (u.mode === NS.NODE) {
    if (u.uids.length || u.gids.length) throw invalid("user namespace mode NODE takes no uid or gid mappings");
    return undefined;
  }
  if (u.mode !== NS.POD) throw invalid(`unsupported user namespace mode ${modeName(u.mode)}: only POD and NODE are supported`);
  for (const [kind, mode] of [
    ["network", nso?.network],
    ["PID", nso?.pid],
    ["IPC", nso?.ipc],
  ] as const)
    if (mode === NS.NODE) throw invalid(`a pod in its own user namespace cannot use the host's ${kind} namespace`);
  return { uids: oneRange("uid", u.uids), gids: oneRange("gid", u.gids) };
}

/**
 * A container's NamespaceOption checked against its pod's user namespace: userns_options absent,
 * or the pod's own mode and mappings (a container cannot leave or remap its pod's user
 * namespace), and no host network/PID/IPC namespace in a pod with its own.
 */
export function checkContainerUserns(pod: PodUserns | undefined, nso: NamespaceOption | undefined): void {
  if (pod)
    for (const [kind, mode] of [
      ["network", nso?.network],
      ["PID", nso?.pid],
      ["IPC", nso?.ipc],
    ] as const)
      if (mode === NS.NODE) throw invalid(`a container of a pod in its own user namespace cannot use the host's ${kind} namespace`);
  const u: UserNamespace | undefined = nso?.usernsOptions;
  if (!u) return;
  if (u.mode !== NS.POD && u.mode !== NS.NODE) throw invalid(`unsupported user namespace mode ${modeName(u.mode)}: only POD and NODE are supported`);
  if (u.mode === NS.NODE) {
    if (pod) throw invalid("the container asks for the host's user namespace, but its pod runs in a user namespace of its own");
    return;
  }
  if (!pod) throw invalid("the container asks for a pod user namespace, but its pod runs in the host's");
  const same = (a: readonly { hostId: number; containerId: number; length: number }[], b: IdMap[]) =>
    a.length === b.length && a.every((m, i) => m.hostId === b[i]!.hostId && m.containerId === b[i]!.containerId && m.length === b[i]!.length);
  if (!same(u.uids, pod.uids) || !same(u.gids, pod.gids)) throw invalid("the container's user namespace mappings differ from its pod's");
}

/** The host id a container id maps to, or undefined when it is not mapped. */
export { hostIdOf as toHost } from "../sys/userns.ts";

/** The host id ranges of the pods the runtime holds: a new pod's must not overlap any. */
export class IdRanges {
  readonly #byPod = new Map<string, PodUserns>();

  /** Records pod `id`'s ranges; invalid-argument naming the other pod when they overlap one. */
  reserve(id: string, u: PodUserns): void {
    for (const [other, o] of this.#byPod) {
      if (other === id) continue;
      const hit = overlap(u.uids, o.uids) ? "uid" : overlap(u.gids, o.gids) ? "gid" : undefined;
      if (hit) {
        const r = (hit === "uid" ? u.uids : u.gids)[0]!;
        throw invalid(`user namespace ${hit} range ${r.hostId}-${r.hostId + r.length - 1} overlaps the host ids of pod sandbox ${other}`);
      }
    }
    this.#byPod.set(id, u);
  }

  /** Forgets pod `id`'s ranges (removed, or its creation failed). */
  release(id: string): void {
    this.#byPod.delete(id);
  }
}

// --- internal ---

function oneRange(kind: string, maps: readonly { hostId: number; containerId: number; length: number }[]): IdMap[] {
  if (maps.length !== 1) throw invalid(`user namespace mode POD needs exactly one ${kind} mapping, got ${maps.length}`);
  const m = maps[0]!;
  if (m.containerId !== 0) throw invalid(`the ${kind} mapping must start at container id 0, not ${m.containerId}`);
  if (m.length !== USERNS_RANGE) throw invalid(`the ${kind} mapping must be ${USERNS_RANGE} ids long, not ${m.length}`);
  if (m.hostId === 0 || m.hostId % USERNS_RANGE !== 0)
    throw invalid(`the ${kind} mapping's host id ${m.hostId} must be a non-zero multiple of ${USERNS_RANGE}`);
  if (m.hostId + m.length > 0xffffffff) throw invalid(`the ${kind} mapping ${m.hostId}+${m.length} goes past the last host id`);
  return [{ containerId: 0, hostId: m.hostId, length: m.length }];
}

function overlap(a: readonly IdMap[], b: readonly IdMap[]): boolean {
  return a.some((x) => b.some((y) => x.hostId < y.hostId + y.length && y.hostId < x.hostId + x.length));
}

function modeName(m: number): string {
  return ({ 0: "POD", 1: "CONTAINER", 2: "NODE", 3: "TARGET" } as Record<number, string>)[m] ?? String(m);
}
