import { statfsSync } from "node:fs";
import type { ContainerView } from "../container/record.ts";
import { messageOf, notFound } from "../errors.ts";
import type { Logger } from "../log/index.ts";
import type { SandboxView } from "../sandbox/record.ts";
import { detectCgroupLayout, type CgroupLayout } from "../sys/cgroup.ts";
import { preciseNow } from "./cgroup-sample.ts";
import { KeptFiles } from "../sys/kept-files.ts";
import { Collector } from "./collector.ts";
import { LayerCache } from "./layer-cache.ts";
import { descriptorsFor, resolveGroups, type MetricGroup } from "./metrics.ts";
import { netDevReader, type NetDevReader } from "./netdev.ts";
import type { ContainerStatsView, MetricDescriptorView, PodMetricsView, PodStatsView } from "./types.ts";

/**
 * Writable-layer usage is measured by walking the upper directory: a value is at most 30–60 s old
 * (each container its own bound in that range, so a node's walks spread over the stats calls;
 * cAdvisor measures every 60 s, containerd every 10 s, CRI-O on each call). Each answer carries
 * the time its layer was measured. A container's first answer waits for its walk.
 */
export const LAYER_MAX_AGE_MS = 30_000;
export const LAYER_SPREAD_MS = 30_000;
/**
 * On-demand mode: the pods of containers that started are sampled once in the background, this
 * long after the last start (a burst is one warm-up), so the kubelet's first stats call after a
 * burst is not the one that opens every cgroup file, walks every writable layer and runs the
 * stats code for the first time (at 110 pods that first call was ~320 ms, the next ones ~10).
 */
export const WARM_QUIET_MS = 2_000;
/** …and at most this long after the first start waiting for it (a burst that never pauses). */
export const WARM_MAX_WAIT_MS = 10_000;

/** [crio.stats] as the service reads it (on every use). */
export interface StatsSettings {
  /** Seconds between background collections; 0: collected on each call. */
  collectionPeriodS: number;
  /** included_pod_metrics: groups served by ListPodSandboxMetrics; empty or "all": every group. */
  includedPodMetrics: readonly string[];
}

/** What the stats service reads from the rest of the daemon. */
export interface StatsDeps {
  containers: {
    list(f?: { id?: string; podSandboxId?: string; labelSelector?: Record<string, string> }): ContainerView[];
    get(id: string): ContainerView;
    ofPod(sandboxId: string): ContainerView[];
    /** Lifecycle changes: a stopped or removed container's cgroup files are closed at once. */
    onChange?(fn: (kind: "created" | "started" | "stopped" | "deleted", c: ContainerView) => void): () => void;
  };
  sandboxes: {
    list(f?: { id?: string; state?: "ready" | "notready"; labelSelector?: Record<string, string> }): SandboxView[];
    get(id: string): SandboxView;
  };
  /** Usage of a container's writable layer (a directory walk: the service caches it). */
  layerUsage(id: string): Promise<{ bytes: number; inodes: number; mountpoint: string }>;
  /** The directory holding writable layers, for the disk metrics' statfs. */
  storageDir?: string;
  settings(): StatsSettings;
  log: Logger;
  /** Tests: fixture cgroup layout, /proc, network reader, clock. */
  layout?: CgroupLayout;
  procRoot?: string;
  netDev?: NetDevReader;
  now?: () => number;
}

/** Filter of ListContainerStats (id and pod id are prefixes). */
export interface ContainerStatsFilter {
  id?: string;
  podSandboxId?: string;
  labelSelector?: Record<string, string>;
}

/** Filter of ListPodSandboxStats (id is a prefix). */
export interface PodStatsFilter {
  id?: string;
  labelSelector?: Record<string, string>;
}

/**
 * Container and pod statistics and CRI metrics. With collection_period 0 every call reads the
 * cgroups; otherwise a background collection refreshes a snapshot every period and calls answer
 * from it (anything missing from the snapshot is read on the spot).
 */
export class StatsService {
  readonly #d: StatsDeps;
  readonly #c: Collector;
  readonly #layers: LayerCache;
  readonly #podResources = new Map<string, { overhead?: unknown; resources?: unknown; at: number }>();
  #snapshot?: { pods: Map<string, PodStatsView>; containers: Map<string, ContainerStatsView>; metrics: Map<string, PodMetricsView> };
  #timer?: ReturnType<typeof setTimeout>;
  #closed = false;
  #warned = new Set<string>();
  #fs?: { at: number; value?: { bytes: number; inodes: number; inodesFree: number } };
  #prunedAt = 0;
  #detach?: () => void;
  /** Pods with containers started since the last warm-up. */
  readonly #warmPods = new Set<string>();
  #warmTimer?: ReturnType<typeof setTimeout>;
  #warmFirst = 0;

  constructor(d: StatsDeps) {
    this.#d = d;
    const now = d.now ?? preciseNow;
    const files = new KeptFiles();
    this.#layers = new LayerCache((id) => d.layerUsage(id), LAYER_MAX_AGE_MS, 10 * 60_000, now, LAYER_SPREAD_MS);
    this.#c = new Collector({
      layout: d.layout ?? detectCgroupLayout(),
      procRoot: d.procRoot ?? "/proc",
      ofPod: (id) => d.containers.ofPod(id),
      layers: this.#layers,
      netDev: d.netDev ?? netDevReader({ files }),
      files,
      filesystem: () => this.#filesystem(),
      log: d.log,
      now,
    });
    this.#detach = d.containers.onChange?.((kind, c) => {
      if (kind === "stopped" || kind === "deleted") this.#c.release(c.meta.id);
      else if (kind === "started" && !c.meta.infra) this.#scheduleWarm(c.meta.sandboxId);
    });
  }

  /** Starts the background collection when collection_period > 0. */
  start(): void {
    if (this.#closed || this.#timer || this.#period() <= 0) return;
    const tick = async () => {
      try {
        await this.refresh();
      } catch (e) {
        this.#d.log.warn(`stats collection failed: ${messageOf(e)}`);
      }
      if (!this.#closed) (this.#timer = setTimeout(tick, Math.max(1, this.#period()) * 1000)).unref?.();
    };
    (this.#timer = setTimeout(tick, 0)).unref?.();
  }

  /** Stops the background collection. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    clearTimeout(this.#warmTimer);
    this.#detach?.();
    this.#c.close();
  }

  /** Cgroup file descriptors held open by the collector (tests, debugging). */
  get openFiles(): number {
    return this.#c.openFiles;
  }

  /** Collects every ready pod now and replaces the snapshot (the background loop's step). */
  async refresh(): Promise<void> {
    const want = { groups: this.#groups() };
    const pods = new Map<string, PodStatsView>();
    const containers = new Map<string, ContainerStatsView>();
    const metrics = new Map<string, PodMetricsView>();
    const list = this.#d.sandboxes.list({ state: "ready" });
    const got = await this.#c.pods(list, want); // read a time slice at a time: RPCs get turns in between
    for (const [i, sb] of list.entries()) {
      const r = got[i]!;
      pods.set(sb.meta.id, r.stats);
      for (const c of r.stats.containers) containers.set(c.container.meta.id, c);
      if (r.metrics) metrics.set(sb.meta.id, r.metrics);
    }
    this.#snapshot = { pods, containers, metrics };
    this.#prune();
  }

  /** ContainerStats: NOT_FOUND for an unknown container (or a pod's infra container). */
  async container(id: string): Promise<ContainerStatsView> {
    const c = this.#d.containers.get(id);
    if (c.meta.infra) throw notFound("container", id);
    return this.#cached(c) ?? (await this.#c.container(c)).stats;
  }

  /** ListContainerStats: the containers that are not exited, filtered. */
  async listContainers(f?: ContainerStatsFilter): Promise<ContainerStatsView[]> {
    this.#maybePrune();
    const list = this.#d.containers.list(clean(f)).filter((c) => c.status.state !== "exited");
    const hits = list.map((c) => this.#cached(c));
    const got = await this.#c.containers(
      list.filter((_, i) => !hits[i]),
      undefined,
      { share: this.#period() <= 0 }, // a snapshot (collection_period > 0) already answers both calls of a cycle
    );
    let j = 0;
    return list.map((_, i) => hits[i] ?? got[j++]!.stats);
  }

  /** PodSandboxStats: NOT_FOUND for an unknown pod. */
  async pod(id: string): Promise<PodStatsView> {
    const sb = this.#d.sandboxes.get(id);
    return this.#cachedPod(sb) ?? (await this.#c.pod(sb)).stats;
  }

  /** ListPodSandboxStats: ready pods, filtered. */
  async listPods(f?: PodStatsFilter): Promise<PodStatsView[]> {
    this.#maybePrune();
    const list = this.#d.sandboxes.list({ ...clean(f), state: "ready" });
    if (Object.keys(clean(f) ?? {}).length === 0) this.#c.releasePodsBut(new Set(list.map((sb) => sb.meta.id))); // every ready pod is listed: the others' files go
    const hits = list.map((sb) => this.#cachedPod(sb));
    const got = await this.#c.pods(
      list.filter((_, i) => !hits[i]),
      undefined,
      { share: this.#period() <= 0 }, // a snapshot (collection_period > 0) already answers both calls of a cycle
    );
    let j = 0;
    return list.map((_, i) => hits[i] ?? got[j++]!.stats);
  }

  /** ListMetricDescriptors: the descriptors of included_pod_metrics. */
  descriptors(): MetricDescriptorView[] {
    return descriptorsFor(this.#groups());
  }

  /** ListPodSandboxMetrics: metrics of every ready pod and its live containers. */
  async podMetrics(): Promise<PodMetricsView[]> {
    const want = { groups: this.#groups() };
    const list = this.#d.sandboxes.list({ state: "ready" });
    const hits = list.map((sb) => this.#snapshot?.metrics.get(sb.meta.id));
    const got = await this.#c.pods(
      list.filter((_, i) => !hits[i]),
      want,
    );
    let j = 0;
    return list.map((_, i) => hits[i] ?? got[j++]!.metrics!);
  }

  /** UpdatePodSandboxResources: recorded (in memory) and logged; the kubelet already changed the pod cgroup. */
  updatePodResources(id: string, r: { overhead?: unknown; resources?: unknown }): void {
    const sb = this.#d.sandboxes.get(id);
    this.#podResources.set(sb.meta.id, { ...r, at: Date.now() });
    this.#d.log.info(`Updated pod sandbox ${sb.meta.id} resources`, {
      pod: `${sb.meta.metadata.namespace}/${sb.meta.metadata.name}`,
      resources: JSON.stringify(r.resources ?? null),
      overhead: JSON.stringify(r.overhead ?? null),
    });
  }

  /** The pod-level resources last given by UpdatePodSandboxResources, if any. */
  podResources(id: string): { overhead?: unknown; resources?: unknown; at: number } | undefined {
    return this.#podResources.get(id);
  }

  // --- internal ---

  #scheduleWarm(podId: string): void {
    if (this.#closed || this.#period() > 0) return; // a background collection samples them anyway
    const now = Date.now();
    if (this.#warmPods.size === 0) this.#warmFirst = now;
    this.#warmPods.add(podId);
    clearTimeout(this.#warmTimer);
    const wait = Math.max(0, Math.min(WARM_QUIET_MS, this.#warmFirst + WARM_MAX_WAIT_MS - now));
    (this.#warmTimer = setTimeout(() => void this.#warm(), wait)).unref?.();
  }

  /** Samples the pods whose containers started (answers nothing): their files opened, layers walked. */
  async #warm(): Promise<void> {
    this.#warmTimer = undefined;
    const ids = new Set(this.#warmPods);
    this.#warmPods.clear();
    if (this.#closed) return;
    const pods = this.#d.sandboxes.list({ state: "ready" }).filter((sb) => ids.has(sb.meta.id));
    try {
      await this.#c.pods(pods);
    } catch (e) {
      this.#d.log.debug(`stats warm-up: ${messageOf(e)}`);
    }
  }

  #period(): number {
    return this.#d.settings().collectionPeriodS;
  }

  #groups(): Set<MetricGroup> {
    const { groups, unknown } = resolveGroups(this.#d.settings().includedPodMetrics);
    for (const u of unknown) {
      if (this.#warned.has(u)) continue;
      this.#warned.add(u);
      this.#d.log.warn(`included_pod_metrics: unknown metric group "${u}" ignored`);
    }
    return groups;
  }

  #cached(c: ContainerView): ContainerStatsView | undefined {
    if (this.#period() <= 0) return undefined;
    return this.#snapshot?.containers.get(c.meta.id);
  }

  #cachedPod(sb: SandboxView): PodStatsView | undefined {
    if (this.#period() <= 0) return undefined;
    return this.#snapshot?.pods.get(sb.meta.id);
  }

  #filesystem(): { bytes: number; inodes: number; inodesFree: number } | undefined {
    const dir = this.#d.storageDir;
    if (!dir) return undefined;
    const now = Date.now();
    if (this.#fs && now - this.#fs.at < 10_000) return this.#fs.value;
    let value: { bytes: number; inodes: number; inodesFree: number } | undefined;
    try {
      const st = statfsSync(dir);
      value = { bytes: st.blocks * st.bsize, inodes: st.files, inodesFree: st.ffree };
    } catch {
      value = undefined;
    }
    this.#fs = { at: now, value };
    return value;
  }

  #maybePrune(): void {
    // Background collections prune; on-demand mode does it here, at most once a minute.
    if (Date.now() - this.#prunedAt > 60_000) this.#prune();
  }

  #prune(): void {
    this.#prunedAt = Date.now();
    const keep = new Set<string>();
    for (const sb of this.#d.sandboxes.list()) {
      keep.add(sb.meta.id);
      for (const c of this.#d.containers.ofPod(sb.meta.id)) keep.add(c.meta.id);
    }
    this.#c.prune(keep);
    this.#layers.prune(keep);
    for (const id of this.#podResources.keys()) if (!keep.has(id)) this.#podResources.delete(id);
  }
}

// --- internal ---

function clean<T extends object>(f: T | undefined): T | undefined {
  if (!f) return undefined;
  return Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined && v !== "" && !(typeof v === "object" && Object.keys(v).length === 0))) as T;
}
