import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ContainerView } from "../container/record.ts";
import { messageOf } from "../errors.ts";
import type { Logger } from "../log/index.ts";
import type { SandboxView } from "../sandbox/record.ts";
import type { CgroupLayout } from "../sys/cgroup.ts";
import { dirsForPath, dirsForPid, type CgroupDirs } from "./cgroup-dirs.ts";
import { readSample, sumSamples } from "./cgroup-sample.ts";
import type { LayerCache } from "./layer-cache.ts";
import { containerMetrics, networkMetrics, type MetricGroup } from "./metrics.ts";
import { parseNetDev, type NetDevReader } from "./netdev.ts";
import { readProcesses } from "./process-sample.ts";
import type { CgroupSample, ContainerStatsView, LayerUsage, MetricValue, PodMetricsView, PodStatsView } from "./types.ts";

/** What the collector reads from. */
export interface CollectorDeps {
  layout: CgroupLayout;
  procRoot: string;
  ofPod(sandboxId: string): ContainerView[];
  layers: LayerCache;
  netDev: NetDevReader;
  /** statfs of the filesystem holding writable layers (disk metrics). */
  filesystem?: () => { bytes: number; inodes: number; inodesFree: number } | undefined;
  log: Logger;
  now: () => number;
}

/** Metrics requested alongside stats. */
export interface MetricsWanted {
  groups: Set<MetricGroup>;
}

/** Samples below this interval reuse the previous CPU rate instead of dividing by a tiny Δt. */
export const MIN_RATE_INTERVAL_MS = 1000;

/**
 * Reads the statistics of containers and pods: cgroups (found from the container's pid, else its
 * bundle's cgroupsPath; a pod's from its cgroup parent, else the sum of its containers), the
 * writable layer (cached), network counters inside the pod's namespace, and CPU rates between
 * successive samples.
 */
export class Collector {
  readonly #d: CollectorDeps;
  readonly #dirs = new Map<string, { key: string; dirs: CgroupDirs }>();
  readonly #rates = new Map<string, { at: number; usageNs: number; rate?: number }>();

  constructor(d: CollectorDeps) {
    this.#d = d;
  }

  /** Stats (and metrics when asked) of one container; no cgroup sample when it is not running. */
  async container(c: ContainerView, want?: MetricsWanted): Promise<{ stats: ContainerStatsView; metrics?: MetricValue[] }> {
    return (await this.containers([c], want))[0]!;
  }

  /**
   * Stats (and metrics) of containers, read a time slice of the event loop at a time: each
   * container's cgroup sample, and its writable layer's measure started (a cached value, or a
   * walk that ends on the thread pool when the layer is large), awaited at the end.
   */
  async containers(cs: readonly ContainerView[], want?: MetricsWanted): Promise<Array<{ stats: ContainerStatsView; metrics?: MetricValue[] }>> {
    // a writable layer's measure starts with a few synchronous calls: within the item's slice
    const layers: Array<Promise<LayerUsage | undefined>> = [];
    const read = await sliced(cs, (c, i) => ((layers[i] = this.#d.layers.get(c.meta.id)), this.#read(c, want)));
    const done = await Promise.all(layers);
    return cs.map((c, i) => this.#containerView(c, read[i]!, done[i], want));
  }

  /** Stats (and metrics when asked) of a pod and its live containers. */
  async pod(sb: SandboxView, want?: MetricsWanted): Promise<{ stats: PodStatsView; metrics?: PodMetricsView }> {
    return (await this.pods([sb], want))[0]!;
  }

  /** Stats (and metrics) of pods, each with its live containers; read as containers() does. */
  async pods(sbs: readonly SandboxView[], want?: MetricsWanted): Promise<Array<{ stats: PodStatsView; metrics?: PodMetricsView }>> {
    const live = sbs.map((sb) => this.#d.ofPod(sb.meta.id).filter((c) => c.status.state !== "exited"));
    const layers: Array<Array<Promise<LayerUsage | undefined>>> = [];
    const read = await sliced(sbs, async (sb, i) => {
      layers[i] = live[i]!.filter((c) => !c.meta.infra).map((c) => this.#d.layers.get(c.meta.id));
      const ctrs = live[i]!.filter((c) => !c.meta.infra).map((c) => this.#read(c, want));
      let sample: CgroupSample | undefined;
      if (sb.meta.cgroupParent) sample = readSample(dirsForPath(this.#d.layout, sb.meta.cgroupParent), { now: this.#d.now });
      if (!sample) {
        // No cgroup of its own (or not readable): the sum of its containers, infra included.
        const infra = live[i]!.filter((c) => c.meta.infra)
          .map((c) => this.#dirsOf(c))
          .map((d) => (d ? readSample(d, { now: this.#d.now }) : undefined));
        const parts = [...ctrs.map((x) => x.sample), ...infra].filter((s): s is CgroupSample => !!s);
        sample = sumSamples(parts, this.#d.now());
      }
      return { ctrs, sample, network: await this.#network(sb, live[i]!) };
    });
    const out: Array<{ stats: PodStatsView; metrics?: PodMetricsView }> = [];
    for (let i = 0; i < sbs.length; i++) {
      const sb = sbs[i]!;
      const r = read[i]!;
      const cs = live[i]!.filter((c) => !c.meta.infra);
      const ls = await Promise.all(layers[i]!);
      const ctrs = cs.map((c, j) => this.#containerView(c, r.ctrs[j]!, ls[j], want));
      const stats: PodStatsView = {
        sandbox: sb,
        sample: r.sample,
        nanoCores: this.#rate(`p:${sb.meta.id}`, r.sample),
        network: r.network,
        processCount: r.sample?.pids ? { at: r.sample.at, value: r.sample.pids.current } : undefined,
        containers: ctrs.map((x) => x.stats),
      };
      if (!want) {
        out.push({ stats });
        continue;
      }
      const metrics: PodMetricsView = {
        podSandboxId: sb.meta.id,
        metrics: want.groups.has("network") && r.network ? networkMetrics(sb.meta.id, r.network.at, r.network.interfaces) : [],
        containers: ctrs.map((x) => ({ containerId: x.stats.container.meta.id, metrics: x.metrics ?? [] })),
      };
      out.push({ stats, metrics });
    }
    return out;
  }

  /** Forgets cached cgroup locations and CPU history of containers and pods not in `keep`. */
  prune(keep: Set<string>): void {
    for (const id of this.#dirs.keys()) if (!keep.has(id)) this.#dirs.delete(id);
    for (const k of this.#rates.keys()) if (!keep.has(k.slice(2))) this.#rates.delete(k);
  }

  // --- internal ---

  /** What a container's stats read synchronously: its cgroup sample (and processes for metrics). */
  #read(c: ContainerView, want?: MetricsWanted): { dirs?: CgroupDirs; sample?: CgroupSample; processes?: ReturnType<typeof readProcesses> } {
    const dirs = this.#dirsOf(c);
    const sample = dirs ? readSample(dirs, { detail: !!want, hugetlb: want?.groups.has("hugetlb"), now: this.#d.now }) : undefined;
    const processes = dirs && want?.groups.has("process") ? readProcesses(dirs, this.#d.procRoot) : undefined;
    return { dirs, sample, processes };
  }

  #containerView(
    c: ContainerView,
    r: { sample?: CgroupSample; processes?: ReturnType<typeof readProcesses> },
    layer: LayerUsage | undefined,
    want?: MetricsWanted,
  ): { stats: ContainerStatsView; metrics?: MetricValue[] } {
    const stats: ContainerStatsView = { container: c, sample: r.sample, nanoCores: this.#rate(`c:${c.meta.id}`, r.sample), layer };
    if (!want) return { stats };
    const at = r.sample?.at ?? this.#d.now();
    const labels: [string, string, string] = [c.meta.id, c.meta.name, c.meta.image.name || c.meta.image.userRequested];
    const fs = want.groups.has("disk") ? this.#d.filesystem?.() : undefined;
    return { stats, metrics: containerMetrics(want.groups, { labels, at, sample: r.sample, processes: r.processes, layer, fs }) };
  }

  #dirsOf(c: ContainerView): CgroupDirs | undefined {
    if (c.status.state === "exited") return undefined;
    const pid = c.status.pid ?? 0;
    const key = `${pid}`;
    const hit = this.#dirs.get(c.meta.id);
    if (hit?.key === key) return hit.dirs;
    let dirs = pid > 0 ? dirsForPid(this.#d.layout, pid, this.#d.procRoot) : undefined;
    if (!dirs) {
      const path = cgroupsPathOf(c.meta.bundle);
      if (!path) return undefined;
      dirs = dirsForPath(this.#d.layout, path);
    }
    this.#dirs.set(c.meta.id, { key, dirs });
    return dirs;
  }

  #rate(key: string, s: CgroupSample | undefined): number | undefined {
    if (!s?.cpu) return undefined;
    const prev = this.#rates.get(key);
    const cur = { at: s.at, usageNs: s.cpu.usageNs };
    if (!prev || cur.usageNs < prev.usageNs || cur.at <= prev.at) {
      this.#rates.set(key, cur);
      return undefined;
    }
    const dt = cur.at - prev.at;
    if (dt < MIN_RATE_INTERVAL_MS) return prev.rate;
    const rate = ((cur.usageNs - prev.usageNs) * 1000) / dt;
    this.#rates.set(key, { ...cur, rate });
    return rate;
  }

  async #network(sb: SandboxView, live: ContainerView[]): Promise<PodStatsView["network"]> {
    const netns = sb.status.namespaces.net;
    if (sb.status.state !== "ready" || !netns) return undefined;
    const pids = [sb.status.infraPid, ...live.map((c) => c.status.pid)].filter((p): p is number => !!p && p > 0);
    try {
      const text = await this.#d.netDev.read(netns, pids);
      return { at: this.#d.now(), interfaces: parseNetDev(text) };
    } catch (e) {
      this.#d.log.debug(`network stats of pod ${sb.meta.id}: ${messageOf(e)}`);
      return undefined;
    }
  }
}

// --- internal ---

/** Longest run of synchronous cgroup reads before the event loop gets a turn (relists wait behind it). */
const SLICE_MS = 2;

/**
 * `f` over `xs` in order; back to the event loop (setImmediate) whenever SLICE_MS went by since
 * the last return to it. A sample reads about ten cgroup files (~20 µs each here, more on a loaded
 * node): a node's 110 pods read in one go held the loop, and every relist behind it, for up to a
 * second; one return per item (the pacing before) made a list call wait for ~200 turns of a busy loop.
 */
export async function sliced<T, R>(xs: readonly T[], f: (x: T, i: number) => R | Promise<R>): Promise<R[]> {
  const out = new Array<R>(xs.length);
  let since = performance.now();
  for (let i = 0; i < xs.length; i++) {
    out[i] = await f(xs[i]!, i);
    if (performance.now() - since >= SLICE_MS) {
      await new Promise<void>((r) => setImmediate(r));
      since = performance.now();
    }
  }
  return out;
}

/** linux.cgroupsPath of a container's bundle (config.json); undefined when unreadable. */
function cgroupsPathOf(bundle: string): string | undefined {
  try {
    const spec = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8")) as { linux?: { cgroupsPath?: string } };
    return spec.linux?.cgroupsPath || undefined;
  } catch {
    return undefined;
  }
}
