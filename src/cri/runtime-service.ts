import type { RuntimeService } from "../gen/runtime/v1/api_pb.ts";
import {
  CgroupDriver,
  ContainerCodec,
  ContainerConfigCodec,
  ContainerState,
  LinuxContainerResourcesCodec,
  ListContainersRequestCodec,
  ListPodSandboxRequestCodec,
  PodSandboxCodec,
  PodSandboxConfigCodec,
  PodSandboxState,
} from "../gen/runtime/v1/api_codec.ts";
import type { Codec } from "../util/protowire.ts";
import type { ContainerService, ContainerView } from "../container/index.ts";
import { invalid } from "../errors.ts";
import type { SandboxService, SandboxView } from "../sandbox/index.ts";
import type { ImageService } from "../image/index.ts";
import type { StreamingServer } from "../streaming/index.ts";
import { toContainer, toContainerStatus } from "./convert/container.ts";
import { toPodSandbox, toPodSandboxStatus } from "./convert/sandbox.ts";
import { toSeconds } from "./convert/time.ts";
import {
  LIST_CHUNK,
  containerStatsFilter,
  inChunks,
  podStatsFilter,
  toContainerEvent,
  toContainerStats,
  toMetricDescriptor,
  toPodSandboxMetrics,
  toPodSandboxStats,
} from "./convert/stats.ts";
import type { ContainerEvents, StatsService } from "../stats/index.ts";
import { CRI_API_VERSION, RUNTIME_NAME, VERSION } from "../version.ts";
import { notBuilt, type Handlers } from "./bridge.ts";
import { ListCache } from "./list-cache.ts";

/** One condition of the Status RPC (RuntimeReady, NetworkReady). */
export interface Condition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

/** A runtime handler and its features, as Status lists it. */
export interface HandlerInfo {
  name: string;
  recursiveReadOnlyMounts: boolean;
  userNamespaces: boolean;
}

/** What the CRI handlers delegate to; the daemon (composition root) provides it. */
export interface Services {
  /** Runtime and network conditions from real probes. */
  conditions(): Promise<Condition[]>;
  /** The runtime handlers with their features; the default handler also appears with name "". */
  handlers(): Array<HandlerInfo> | Promise<Array<HandlerInfo>>;
  /** The effective configuration as JSON (Status verbose info "config"). */
  configJson(): string;
  /** The cgroup driver in effect (after the systemd fallback). */
  cgroupDriver(): "systemd" | "cgroupfs";
  /** UpdateRuntimeConfig: the node's pod CIDR. */
  setPodCidr(cidr: string): void;
  sandboxes: SandboxService;
  containers: ContainerService;
  images: ImageService;
  streaming: StreamingServer;
  /** Usage of the containers' writable layers (ImageFsInfo container_filesystems). */
  containerFs(): Promise<{ mountpoint: string; usedBytes: number; inodesUsed: number; timestamp: number }>;
  /** Container and pod stats and CRI metrics (src/stats). */
  stats: StatsService;
  /** GetContainerEvents broadcaster (src/stats/events.ts). */
  events: ContainerEvents;
}

const CONTAINER_STATE = {
  [ContainerState.CONTAINER_CREATED]: "created",
  [ContainerState.CONTAINER_RUNNING]: "running",
  [ContainerState.CONTAINER_EXITED]: "exited",
  [ContainerState.CONTAINER_UNKNOWN]: "unknown",
} as const;

/** RuntimeService handlers: validate → delegate → convert. */
export function runtimeService(d: Services): Handlers<typeof RuntimeService> {
  // the kubelet's relist (every second) answered from these while no record changed
  // (each record's message encoded once per change; an answer is the concatenation of its items' bytes)
  const podList = new ListCache((s: SandboxView) => PodSandboxCodec.encode(toPodSandbox(s)));
  const containerList = new ListCache((c: ContainerView) => ContainerCodec.encode(toContainer(c)));
  return {
    version: async () => ({ version: "0.1.0", runtimeName: RUNTIME_NAME, runtimeVersion: VERSION, runtimeApiVersion: CRI_API_VERSION }),
    status: async (req) => ({
      status: { conditions: await d.conditions() },
      runtimeHandlers: (await d.handlers()).map((h) => ({
        name: h.name,
        features: { recursiveReadOnlyMounts: h.recursiveReadOnlyMounts, userNamespaces: h.userNamespaces },
      })),
      features: { supplementalGroupsPolicy: true },
      info: req.verbose ? { config: d.configJson() } : ({} as Record<string, string>),
    }),
    runtimeConfig: async () => ({ linux: { cgroupDriver: d.cgroupDriver() === "systemd" ? CgroupDriver.SYSTEMD : CgroupDriver.CGROUPFS } }),
    updateRuntimeConfig: async (req) => {
      d.setPodCidr(req.runtimeConfig?.networkConfig?.podCidr ?? "");
      return {};
    },
    runPodSandbox: async (req, ctx) => {
      if (!req.config) throw invalid("RunPodSandboxRequest.Config is required");
      const sb = await d.sandboxes.run(
        { config: req.config, configJson: PodSandboxConfigCodec.toJson(req.config), runtimeHandler: req.runtimeHandler },
        ctx.signal,
      );
      return { podSandboxId: sb.meta.id };
    },
    stopPodSandbox: async (req) => {
      await d.sandboxes.stop(need(req.podSandboxId, "PodSandboxId"));
      return {};
    },
    removePodSandbox: async (req) => {
      await d.sandboxes.remove(need(req.podSandboxId, "PodSandboxId"));
      return {};
    },
    podSandboxStatus: async (req) => toPodSandboxStatus(d.sandboxes.get(need(req.podSandboxId, "PodSandboxId")), req.verbose),
    listPodSandbox: async (req) => podList.get(requestKey(ListPodSandboxRequestCodec, req), () => d.sandboxes.list(sandboxFilter(req.filter))),
    streamPodSandboxes: async (req, _ctx, send) => {
      await inChunks(d.sandboxes.list(sandboxFilter(req.filter)).map(toPodSandbox), (c) => send({ podSandboxes: c }), LIST_CHUNK);
    },
    createContainer: async (req) => {
      if (!req.config) throw invalid("CreateContainerRequest.Config is required");
      const sb = d.sandboxes.get(need(req.podSandboxId, "PodSandboxId"));
      const sandboxConfig = req.sandboxConfig ?? PodSandboxConfigCodec.fromJson(sb.meta.configJson);
      const c = await d.containers.create({
        podSandboxId: sb.meta.id,
        config: req.config,
        sandboxConfig,
        configJson: ContainerConfigCodec.toJson(req.config),
      });
      return { containerId: c.meta.id };
    },
    startContainer: async (req) => {
      await d.containers.start(need(req.containerId, "ContainerId"));
      return {};
    },
    stopContainer: async (req) => {
      await d.containers.stop(need(req.containerId, "ContainerId"), toSeconds(req.timeout));
      return {};
    },
    removeContainer: async (req) => {
      await d.containers.remove(need(req.containerId, "ContainerId"));
      return {};
    },
    listContainers: async (req) => containerList.get(requestKey(ListContainersRequestCodec, req), () => d.containers.list(containerFilter(req.filter))),
    streamContainers: async (req, _ctx, send) => {
      await inChunks(d.containers.list(containerFilter(req.filter)).map(toContainer), (c) => send({ containers: c }), LIST_CHUNK);
    },
    containerStatus: async (req) => toContainerStatus(d.containers.get(need(req.containerId, "ContainerId")), req.verbose),
    updateContainerResources: async (req) => {
      await d.containers.updateResources(need(req.containerId, "ContainerId"), req.linux, req.linux ? LinuxContainerResourcesCodec.toJson(req.linux) : null);
      return {};
    },
    reopenContainerLog: async (req) => {
      await d.containers.reopenLog(need(req.containerId, "ContainerId"));
      return {};
    },
    execSync: async (req) => {
      const r = await d.containers.execSync(need(req.containerId, "ContainerId"), req.cmd, toSeconds(req.timeout));
      return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
    },
    exec: async (req) => {
      d.containers.get(need(req.containerId, "ContainerId"));
      return {
        url: d.streaming.getExecUrl({ containerId: req.containerId, cmd: req.cmd, tty: req.tty, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr }),
      };
    },
    attach: async (req) => {
      d.containers.get(need(req.containerId, "ContainerId"));
      return { url: d.streaming.getAttachUrl({ containerId: req.containerId, tty: req.tty, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr }) };
    },
    portForward: async (req) => {
      d.sandboxes.get(need(req.podSandboxId, "PodSandboxId"));
      return { url: d.streaming.getPortForwardUrl({ podSandboxId: req.podSandboxId, ports: req.port }) };
    },
    containerStats: async (req) => ({ stats: toContainerStats(await d.stats.container(need(req.containerId, "ContainerId"))) }),
    listContainerStats: async (req) => ({ stats: (await d.stats.listContainers(containerStatsFilter(req.filter))).map(toContainerStats) }),
    streamContainerStats: async (req, _ctx, send) =>
      inChunks((await d.stats.listContainers(containerStatsFilter(req.filter))).map(toContainerStats), (c) => send({ containerStats: c })),
    podSandboxStats: async (req) => ({ stats: toPodSandboxStats(await d.stats.pod(need(req.podSandboxId, "PodSandboxId"))) }),
    listPodSandboxStats: async (req) => ({ stats: (await d.stats.listPods(podStatsFilter(req.filter))).map(toPodSandboxStats) }),
    streamPodSandboxStats: async (req, _ctx, send) =>
      inChunks((await d.stats.listPods(podStatsFilter(req.filter))).map(toPodSandboxStats), (c) => send({ podSandboxStats: c })),
    checkpointContainer: notBuilt,
    getContainerEvents: async (_req, ctx, send) => d.events.serve(ctx.signal, (e) => send(toContainerEvent(e))),
    listMetricDescriptors: async () => ({ descriptors: d.stats.descriptors().map(toMetricDescriptor) }),
    listPodSandboxMetrics: async () => ({ podMetrics: (await d.stats.podMetrics()).map(toPodSandboxMetrics) }),
    streamPodSandboxMetrics: async (_req, _ctx, send) => inChunks((await d.stats.podMetrics()).map(toPodSandboxMetrics), (c) => send({ podSandboxMetrics: c })),
    updatePodSandboxResources: async (req) => (
      d.stats.updatePodResources(need(req.podSandboxId, "PodSandboxId"), {
        overhead: req.overhead && LinuxContainerResourcesCodec.toJson(req.overhead),
        resources: req.resources && LinuxContainerResourcesCodec.toJson(req.resources),
      }),
      {}
    ),
  };
}

// --- internal ---

/** A request's canonical form as a cache key: its serialized bytes. */
function requestKey<T>(codec: Codec<unknown, T>, req: T): string {
  const b = codec.encode(req);
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");
}

function need(v: string, field: string): string {
  if (!v) throw invalid(`${field} is required`);
  return v;
}

function sandboxFilter(f: { id: string; state?: { state: PodSandboxState }; labelSelector: Record<string, string> } | undefined) {
  if (!f) return undefined;
  return {
    id: f.id || undefined,
    state: f.state ? (f.state.state === PodSandboxState.SANDBOX_READY ? ("ready" as const) : ("notready" as const)) : undefined,
    labelSelector: Object.keys(f.labelSelector).length ? f.labelSelector : undefined,
  };
}

function containerFilter(f: { id: string; state?: { state: ContainerState }; podSandboxId: string; labelSelector: Record<string, string> } | undefined) {
  if (!f) return undefined;
  return {
    id: f.id || undefined,
    state: f.state ? CONTAINER_STATE[f.state.state] : undefined,
    podSandboxId: f.podSandboxId || undefined,
    labelSelector: Object.keys(f.labelSelector).length ? f.labelSelector : undefined,
  };
}
