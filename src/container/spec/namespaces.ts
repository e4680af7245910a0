import type { NamespaceOption } from "../../gen/runtime/v1/api_pb.ts";
import { invalid, precondition } from "../../errors.ts";
import type { Namespace, NamespaceType } from "../../oci/spec-types.ts";
import type { NamespaceRef, PodNamespaces } from "./types.ts";

/** CRI NamespaceMode values (api.proto enum NamespaceMode). */
export const NS_MODE = { POD: 0, CONTAINER: 1, NODE: 2, TARGET: 3 } as const;

/** Options of containerNamespaces. */
export interface NamespaceInput {
  pod: PodNamespaces;
  /** The container's own NamespaceOption (the kubelet copies the pod's, plus pid TARGET). */
  options?: NamespaceOption;
  /** PID namespace path of the target container (NamespaceMode TARGET). */
  targetPid?: string;
  /** Give the container a private cgroup namespace (cgroup v2, not privileged). */
  cgroupNs: boolean;
}

/**
 * The container's namespace list, in the runtime-tools order pid, network, ipc, uts, mount: pod
 * namespaces are joined by path, host ones are left out, the mount namespace is always new.
 */
export function containerNamespaces(n: NamespaceInput): Namespace[] {
  const o = n.options;
  const net: NamespaceRef = o?.network === NS_MODE.NODE ? "host" : n.pod.network;
  const ipc: NamespaceRef = o?.ipc === NS_MODE.NODE ? "host" : n.pod.ipc;
  let pid: NamespaceRef;
  switch (o?.pid ?? NS_MODE.CONTAINER) {
    case NS_MODE.NODE:
      pid = "host";
      break;
    case NS_MODE.POD:
      if (n.pod.pid === "new") throw precondition("pod level PID namespace requested for the container, but the pod sandbox does not share one");
      pid = n.pod.pid;
      break;
    case NS_MODE.TARGET:
      if (!n.targetPid) throw invalid("target PID namespace specified with invalid target ID");
      pid = { path: n.targetPid };
      break;
    default:
      pid = "new";
  }
  const out: Namespace[] = [];
  push(out, "pid", pid);
  push(out, "network", net);
  push(out, "ipc", ipc);
  push(out, "uts", n.pod.uts);
  out.push({ type: "mount" });
  if (n.pod.user) out.push({ type: "user", path: n.pod.user.path });
  if (n.cgroupNs) out.push({ type: "cgroup" });
  return out;
}

/** The namespace list of a pod's infra container: fresh or pinned pod namespaces, never another's PID ns. */
export function infraNamespaces(pod: PodNamespaces, cgroupNs: boolean): Namespace[] {
  const out: Namespace[] = [];
  // The infra container creates the pod's PID namespace unless the pod uses the host's.
  push(out, "pid", pod.pid === "host" ? "host" : "new");
  push(out, "network", pod.network);
  push(out, "ipc", pod.ipc);
  push(out, "uts", pod.uts);
  out.push({ type: "mount" });
  if (pod.user) out.push({ type: "user", path: pod.user.path });
  if (cgroupNs) out.push({ type: "cgroup" });
  return out;
}

/**
 * The pod's sysctls for the spec: default_sysctls first (an invalid one is skipped with a warning),
 * then the CRI's. Only namespaced sysctls are allowed; net.* with a host network and IPC sysctls
 * with a host IPC namespace are invalid-argument, as CRI-O's validation says.
 */
export function podSysctls(
  defaults: readonly string[],
  cri: Record<string, string>,
  host: { network: boolean; ipc: boolean },
): { sysctl: Record<string, string>; warnings: string[] } {
  const sysctl: Record<string, string> = {};
  const warnings: string[] = [];
  for (const entry of defaults) {
    const i = entry.indexOf("=");
    const key = (i < 0 ? entry : entry.slice(0, i)).trim();
    const problem = i < 0 ? "expected key=value" : sysctlProblem(key, host);
    if (problem) warnings.push(`skipping default sysctl "${entry}": ${problem}`);
    else sysctl[key] = entry.slice(i + 1).trim();
  }
  for (const [key, value] of Object.entries(cri)) {
    const problem = sysctlProblem(key, host);
    if (problem) throw invalid(`sysctl "${key}": ${problem}`);
    sysctl[key] = value;
  }
  return { sysctl, warnings };
}

// --- internal ---

function push(out: Namespace[], type: NamespaceType, ref: NamespaceRef): void {
  if (ref === "host") return;
  out.push(ref === "new" ? { type } : { type, path: ref.path });
}

const IPC_SYSCTLS = new Set([
  "kernel.sem",
  "kernel.shmall",
  "kernel.shmmax",
  "kernel.shmmni",
  "kernel.shm_rmid_forced",
  "kernel.msgmax",
  "kernel.msgmnb",
  "kernel.msgmni",
]);

function sysctlProblem(rawKey: string, host: { network: boolean; ipc: boolean }): string | undefined {
  const key = rawKey.replaceAll("/", ".");
  if (key === "" || !/^[a-z0-9_.\-*]+$/i.test(key)) return "invalid name";
  if (IPC_SYSCTLS.has(key) || key.startsWith("fs.mqueue.")) {
    return host.ipc ? "not allowed with host ipc enabled" : undefined;
  }
  if (key.startsWith("net.")) return host.network ? "not allowed with host net enabled" : undefined;
  return "not a namespaced sysctl";
}
