/**
 * What the runtime tells CNI about a pod: CNI_ARGS (ocicni's K8S_* keys) and the capability
 * arguments of CNI's CONVENTIONS.md (portMappings, bandwidth, ipRanges, dns, cgroupPath).
 */
import { isIP } from "node:net";
import { invalid } from "../errors.ts";

/** A hostPort mapping (CRI PortMapping). Mappings with hostPort 0 are not passed to CNI. */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
  /** "tcp" (default), "udp" or "sctp", any case. */
  protocol?: string;
  hostIP?: string;
}

/** Traffic shaping for the bandwidth plugin: rates in bits per second, bursts in bits. */
export interface Bandwidth {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

/** A pod as networking needs it. */
export interface PodNetwork {
  /** The sandbox id (CNI_CONTAINERID and K8S_POD_INFRA_CONTAINER_ID). */
  id: string;
  name: string;
  namespace: string;
  uid: string;
  /** The pinned network namespace file. */
  netns: string;
  portMappings: PortMapping[];
  bandwidth?: Bandwidth;
  dns?: { servers?: string[]; searches?: string[]; options?: string[] };
  /** host-local style ranges: the outer list is one allocation each, the inner a pool of subnets. */
  ipRanges?: Array<Array<{ subnet: string; rangeStart?: string; rangeEnd?: string; gateway?: string }>>;
  /** The pod's cgroup parent, passed as the cgroupPath capability. */
  cgroupPath?: string;
}

/** CNI_ARGS for a pod, as CRI-O's ocicni builds it. */
export function cniArgsOf(pod: PodNetwork): string {
  for (const [k, v] of Object.entries({ name: pod.name, namespace: pod.namespace, uid: pod.uid }))
    if (/[;=]/.test(v)) throw invalid(`pod ${k} "${v}" cannot be passed in CNI_ARGS`);
  return [
    "IgnoreUnknown=1",
    `K8S_POD_NAMESPACE=${pod.namespace}`,
    `K8S_POD_NAME=${pod.name}`,
    `K8S_POD_INFRA_CONTAINER_ID=${pod.id}`,
    `K8S_POD_UID=${pod.uid}`,
  ].join(";");
}

/** The capability arguments of a pod; throws invalid-argument for a bad port mapping. */
export function buildRuntimeConfig(pod: PodNetwork): Record<string, unknown> {
  const rc: Record<string, unknown> = {};
  const portMappings = [];
  for (const pm of pod.portMappings ?? []) {
    if (!pm.hostPort) continue; // a container port without a host port needs no plumbing
    const protocol = (pm.protocol || "tcp").toLowerCase();
    if (!isPort(pm.hostPort) || !isPort(pm.containerPort)) throw invalid(`invalid port mapping ${pm.hostPort}:${pm.containerPort}`);
    if (!["tcp", "udp", "sctp"].includes(protocol)) throw invalid(`invalid port mapping protocol "${pm.protocol}"`);
    if (pm.hostIP && !isIP(pm.hostIP)) throw invalid(`invalid port mapping host IP "${pm.hostIP}"`);
    portMappings.push({ hostPort: pm.hostPort, containerPort: pm.containerPort, protocol, ...(pm.hostIP ? { hostIP: pm.hostIP } : {}) });
  }
  rc.portMappings = portMappings; // always present, as ocicni passes it
  if (pod.bandwidth && Object.values(pod.bandwidth).some((v) => v !== undefined && v > 0)) rc.bandwidth = pod.bandwidth;
  if (pod.dns && (pod.dns.servers?.length || pod.dns.searches?.length || pod.dns.options?.length)) rc.dns = pod.dns;
  if (pod.ipRanges?.length) rc.ipRanges = pod.ipRanges;
  if (pod.cgroupPath) rc.cgroupPath = pod.cgroupPath;
  return rc;
}

// --- internal ---

function isPort(n: number): boolean {
  return Number.isInteger(n) && n > 0 && n <= 65535;
}
