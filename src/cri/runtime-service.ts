import { CgroupDriver, type RuntimeService } from "../gen/runtime/v1/api_pb.ts";
import { CRI_API_VERSION, RUNTIME_NAME, VERSION } from "../version.ts";
import { notBuilt, type Handlers } from "./bridge.ts";

/** One condition of the Status RPC (RuntimeReady, NetworkReady). */
export interface Condition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

/** What the CRI handlers delegate to; the daemon (composition root) provides it. */
export interface Services {
  /** Runtime and network conditions from real probes. */
  conditions(): Promise<Condition[]>;
  /** The runtime handlers with their features; the default handler also appears with name "". */
  handlers(): Array<{ name: string; recursiveReadOnlyMounts: boolean; userNamespaces: boolean }>;
  /** The effective configuration as JSON (Status verbose info "config"). */
  configJson(): string;
  /** The cgroup driver in effect (after the systemd fallback). */
  cgroupDriver(): "systemd" | "cgroupfs";
  /** UpdateRuntimeConfig: the node's pod CIDR. */
  setPodCidr(cidr: string): void;
}

/** RuntimeService handlers: validate → delegate → convert. */
export function runtimeService(d: Services): Handlers<typeof RuntimeService> {
  return {
    version: async () => ({ version: "0.1.0", runtimeName: RUNTIME_NAME, runtimeVersion: VERSION, runtimeApiVersion: CRI_API_VERSION }),
    status: async (req) => ({
      status: { conditions: await d.conditions() },
      runtimeHandlers: d.handlers().map((h) => ({ name: h.name, features: { recursiveReadOnlyMounts: h.recursiveReadOnlyMounts, userNamespaces: h.userNamespaces } })),
      features: { supplementalGroupsPolicy: true },
      info: req.verbose ? { config: d.configJson() } : ({} as Record<string, string>),
    }),
    runtimeConfig: async () => ({ linux: { cgroupDriver: d.cgroupDriver() === "systemd" ? CgroupDriver.SYSTEMD : CgroupDriver.CGROUPFS } }),
    updateRuntimeConfig: async (req) => {
      d.setPodCidr(req.runtimeConfig?.networkConfig?.podCidr ?? "");
      return {};
    },
    runPodSandbox: notBuilt,
    stopPodSandbox: notBuilt,
    removePodSandbox: notBuilt,
    podSandboxStatus: notBuilt,
    listPodSandbox: notBuilt,
    streamPodSandboxes: notBuilt,
    createContainer: notBuilt,
    startContainer: notBuilt,
    stopContainer: notBuilt,
    removeContainer: notBuilt,
    listContainers: notBuilt,
    streamContainers: notBuilt,
    containerStatus: notBuilt,
    updateContainerResources: notBuilt,
    reopenContainerLog: notBuilt,
    execSync: notBuilt,
    exec: notBuilt,
    attach: notBuilt,
    portForward: notBuilt,
    containerStats: notBuilt,
    listContainerStats: notBuilt,
    streamContainerStats: notBuilt,
    podSandboxStats: notBuilt,
    listPodSandboxStats: notBuilt,
    streamPodSandboxStats: notBuilt,
    checkpointContainer: notBuilt,
    getContainerEvents: notBuilt,
    listMetricDescriptors: notBuilt,
    listPodSandboxMetrics: notBuilt,
    streamPodSandboxMetrics: notBuilt,
    updatePodSandboxResources: notBuilt,
  };
}
