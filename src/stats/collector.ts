import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ContainerView } from "../container/record.ts";
import { messageOf } from "../errors.ts";
import type { Logger } from "../log/index.ts";
import type { SandboxView } from "../sandbox/record.ts";
import type { CgroupLayout } from "../sys/cgroup.ts";
import { KeptFiles } from "../sys/kept-files.ts";
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
  /** Where cgroup files are read (descriptors kept per container and pod); a new one by default. */
  files?: KeptFiles;
}

/** Metrics requested alongside stats. */
export interface MetricsWanted {
  groups: Set<MetricGroup>;
}

/** Samples below this interval reuse the previous CPU rate instead of dividing by a tiny Δt. */
export const MIN_RATE_INTERVAL_MS = 1000;

/**
 * How long a container's cgroup sample taken by one list call (ListPodSandboxStats carries each
 * pod's containers) answers the other list call (ListContainerStats) — the two calls of one
 * kubelet stats cycle — instead of reading the same files again. The answer carries the
 * sample's own timestamp, so it states the moment its values were read. Single-item calls
 * (ContainerStats, PodSandboxStats) and metrics always read anew.
 */
export const LIST_SHARE_MS = 1000;

/** How a list call reads: `share` lets the two stats lists of one cycle use each other's container samples. */
export interface ReadOptions {
  share?: boolean;
}

/**
 * Reads the statistics of containers and pods: cgroups (found from the container's pid, else its
 * bundle's cgroupsPath; a pod's from its cgroup parent, else the sum of its containers), the
 * writable layer (cached), network counters inside the pod's namespace, and CPU rates between
 * successive samples.
 */
export class Collector {
  readonly #d: CollectorDeps;
  readonly #files: KeptFiles;
  readonly #dirs = new Map<string, { key: string; dirs: CgroupDirs }>();
  readonly #podDirs = new Map<string, { parent: string; dirs: CgroupDirs }>();
  readonly #rates = new Map<string, { at: number; usageNs: number; rate?: number }>();
  /** Container samples taken by list calls, for the other list call of the cycle (LIST_SHARE_MS). */
  readonly #shared = new Map<string, { key: string; sample: CgroupSample; pids: boolean }>();

  constructor(d: CollectorDeps) {
    this.#d = d;
    this.#files = d.files ?? new KeptFiles();
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
  async containers(
    cs: readonly ContainerView[],
    want?: MetricsWanted,
    o: ReadOptions = {},
  ): Promise<Array<{ stats: ContainerStatsView; metrics?: MetricValue[] }>> {
    // a writable layer's measure starts with a few synchronous calls: within the item's slice
    const layers: Array<Promise<LayerUsage | undefined>> = [];
    const read = await sliced(cs, (c, i) => ((layers[i] = this.#d.layers.get(c.meta.id)), this.#read(c, want, { pids: false, share: !!o.share })));
    const done = await Promise.all(layers);
    return cs.map((c, i) => this.#containerView(c, read[i]!, done[i], want));
  }

  /** Stats (and metrics when asked) of a pod and its live containers. */
  async pod(sb: SandboxView, want?: MetricsWanted): Promise<{ stats: PodStatsView; metrics?: PodMetricsView }> {
    return (await this.pods([sb], want))[0]!;
  }

  /** Stats (and metrics) of pods, each with its live containers; read as containers() does. */
  async pods(sbs: readonly SandboxView[], want?: MetricsWanted, o: ReadOptions = {}): Promise<Array<{ stats: PodStatsView; metrics?: PodMetricsView }>> {
    const live = sbs.map((sb) => this.#d.ofPod(sb.meta.id).filter((c) => c.status.state !== "exited"));
    const layers: Array<Array<Promise<LayerUsage | undefined>>> = [];
    const read = await sliced(sbs, async (sb, i) => {
      layers[i] = live[i]!.filter((c) => !c.meta.infra).map((c) => this.#d.layers.get(c.meta.id));
      // The pod's own cgroup (PodSandboxStats has no swap); its containers' process counts only when it has none.
      let sample: CgroupSample | undefined;
      if (sb.meta.cgroupParent) {
        const owner = `p:${sb.meta.id}`;
        sample = readSample(this.#podDirsOf(sb), { now: this.#d.now, swap: false, read: (p) => this.#files.read(owner, p) });
      }
      const ctrs = live[i]!.filter((c) => !c.meta.infra).map((c) => this.#read(c, want, { pids: !sample, share: !!o.share }));
      if (!sample) {
        // No cgroup of its own (or not readable): the sum of its containers, infra included.
        const infra = live[i]!.filter((c) => c.meta.infra).map((c) => {
          const d = this.#dirsOf(c);
          const owner = `c:${c.meta.id}`;
          return d ? readSample(d, { now: this.#d.now, read: (p) => this.#files.read(owner, p) }) : undefined;
        });
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

  /** Forgets cached cgroup locations, open files and CPU history of containers and pods not in `keep`. */
  prune(keep: Set<string>): void {
    for (const id of this.#dirs.keys()) if (!keep.has(id)) this.#dirs.delete(id);
    for (const id of this.#podDirs.keys()) if (!keep.has(id)) this.#podDirs.delete(id);
    for (const id of this.#shared.keys()) if (!keep.has(id)) this.#shared.delete(id);
    for (const k of this.#rates.keys()) if (!keep.has(k.slice(2))) this.#rates.delete(k);
    for (const owner of this.#files.owners()) if (!keep.has(owner.slice(2))) this.#files.release(owner);
    this.#files.sweepAbsent();
  }

  /** Closes the cgroup files of a container or pod that stopped (they are opened again if it is read again). */
  release(id: string): void {
    this.#files.release(`c:${id}`);
    this.#files.release(`p:${id}`);
    this.#shared.delete(id);
  }

  /** Closes the files of pods not among `ready` (an unfiltered ListPodSandboxStats lists every ready pod). */
  releasePodsBut(ready: ReadonlySet<string>): void {
    for (const owner of this.#files.owners()) if (owner.startsWith("p:") && !ready.has(owner.slice(2))) this.#files.release(owner);
  }

  /** Cgroup file descriptors held open. */
  get openFiles(): number {
    return this.#files.size;
  }

  /** Closes every file (the service is closing). */
  close(): void {
    this.#files.close();
  }

  // --- internal ---

  /**
   * What a container's stats read synchronously: its cgroup sample (and processes for metrics).
   * `pids`: the process count is wanted (summed into a pod without a cgroup of its own).
   * `share`: a list call; a sample another list call took less than LIST_SHARE_MS ago answers it.
   */
  #read(
    c: ContainerView,
    want: MetricsWanted | undefined,
    o: { pids: boolean; share: boolean },
  ): { dirs?: CgroupDirs; sample?: CgroupSample; processes?: ReturnType<typeof readProcesses> } {
    const id = c.meta.id;
    const key = `${c.status.pid ?? 0}`;
    const share = o.share && !want;
    if (share) {
      const hit = this.#shared.get(id);
      if (hit && hit.key === key && (hit.pids || !o.pids) && this.#d.now() - hit.sample.at < LIST_SHARE_MS) return { sample: hit.sample };
    }
    const dirs = this.#dirsOf(c);
    const owner = `c:${id}`;
    const sample = dirs
      ? readSample(dirs, { detail: !!want, hugetlb: want?.groups.has("hugetlb"), pids: o.pids, now: this.#d.now, read: (p) => this.#files.read(owner, p) })
      : undefined;
    if (share && sample) this.#shared.set(id, { key, sample, pids: o.pids });
    const processes = dirs && want?.groups.has("process") ? readProcesses(dirs, this.#d.procRoot) : undefined;
    return { dirs, sample, processes };
  }

  /** The directories of a pod's own cgroup (its cgroup parent). */
  #podDirsOf(sb: SandboxView): CgroupDirs {
    const parent = sb.meta.cgroupParent;
    const hit = this.#podDirs.get(sb.meta.id);
    if (hit?.parent === parent) return hit.dirs;
    const dirs = dirsForPath(this.#d.layout, parent);
    this.#podDirs.set(sb.meta.id, { parent, dirs });
    return dirs;
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
    if (hit) this.#files.release(`c:${c.meta.id}`); // another process: its cgroup may be elsewhere
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
    if (prev && cur.at === prev.at && cur.usageNs === prev.usageNs) return prev.rate; // the same sample (shared by the two list calls)
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
    const owners = new Map(live.map((c) => [c.status.pid, `c:${c.meta.id}`]));
    try {
      const text = await this.#d.netDev.read(netns, pids, (pid) => owners.get(pid));
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
