/**
 * Pod networking through CNI (CRI-O's ocicni role): the default network from the configuration
 * directory (watched, so a dropped-in config makes the node ready without a restart), ADD on pod
 * set-up with the result cached per pod, DEL from the cache on tear-down (even after a restart),
 * CHECK, and STATUS/GC for 1.1.0 networks. One operation at a time per pod; GC runs alone.
 */
import { existsSync } from "node:fs";
import { RuntimeError, invalid, messageOf, notFound, wrap } from "../errors.ts";
import { log as rootLog, type Logger } from "../log/index.ts";
import { isNamespacePinnedAsync } from "../sys/namespaces.ts";
import { KeyedSerial, sleep, withTimeout } from "../util/wait.ts";
import { AttachmentCache, type CachedAttachment } from "./cache.ts";
import { addList, checkList, delList, gcList, statusList, type Attachment } from "./cni.ts";
import { loadNetworks, loadNetworksAsync, selectDefault, type ConfProblem, type NetworkList } from "./conf.ts";
import { hostAddresses } from "./host-addresses.ts";
import { parseResult, type NetworkResult } from "./result.ts";
import { buildRuntimeConfig, cniArgsOf, type PodNetwork } from "./pod.ts";
import { DirWatcher } from "./watch.ts";
import { traced } from "../log/trace.ts";

/** Where CRI-O looks for plugins when none are configured. */
export const DEFAULT_PLUGIN_DIRS = ["/opt/cni/bin", "/usr/libexec/cni", "/usr/lib/cni"];

/** The interface name inside the pod. */
export const POD_IFNAME = "eth0";

/** CniManager options (from the [crio.network] table). */
export interface CniManagerOptions {
  networkDir: string;
  pluginDirs?: string[];
  /** Use this network name; when unset, the first valid configuration in lexical order. */
  defaultNetwork?: string;
  /** Where per-pod attachment records live (persistent: <root>/…). */
  cacheDir: string;
  /** Periodic rescan in addition to the watch (default 5000 ms). */
  rescanMs?: number;
  /** Per plugin execution (default 120 s). */
  pluginTimeoutMs?: number;
  log?: Logger;
}

/** NetworkReady as the Status RPC reports it. */
export interface NetworkStatus {
  ready: boolean;
  reason?: "NetworkPluginNotReady";
  message?: string;
}

/** Pod networking through CNI; close() stops the directory watch. */
export class CniManager {
  readonly pluginDirs: string[];
  #o: CniManagerOptions;
  #log: Logger;
  #cache: AttachmentCache;
  #watcher: DirWatcher;
  #networks: NetworkList[] = [];
  #default?: NetworkList;
  #problems: ConfProblem[] = [];
  #lastSummary = "";
  #waiters = new Set<() => void>();
  #perPod = new KeyedSerial();
  #running = 0;
  #idle = new Set<() => void>();
  #gc?: Promise<unknown>;
  #podCidr = "";
  #scanSeq = 0;
  #appliedSeq = 0;

  constructor(o: CniManagerOptions) {
    this.#o = o;
    this.pluginDirs = o.pluginDirs?.length ? [...o.pluginDirs] : [...DEFAULT_PLUGIN_DIRS];
    this.#log = o.log ?? rootLog.withTag("network");
    this.#cache = new AttachmentCache(o.cacheDir);
    this.#scan();
    // the watch's changes and its periodic rescan read the directory off the event loop
    this.#watcher = new DirWatcher(o.networkDir, () => void this.#scanAsync().catch(() => {}), o.rescanMs ?? 5_000);
  }

  /** The network pods are attached to now, if any. */
  get defaultNetwork(): Readonly<NetworkList> | undefined {
    return this.#default;
  }

  /** Files that were skipped at the last scan, with reasons. */
  get problems(): readonly ConfProblem[] {
    return this.#problems;
  }

  /** The pod CIDR given by UpdateRuntimeConfig (stored; the bridge config's IPAM decides addresses). */
  get podCidr(): string {
    return this.#podCidr;
  }
  set podCidr(cidr: string) {
    if (cidr !== this.#podCidr) this.#log.info("pod CIDR updated", { podCidr: cidr });
    this.#podCidr = cidr;
  }

  /** NetworkReady: a valid default network exists (and, for 1.1.0 networks, every plugin answers STATUS). */
  async status(signal?: AbortSignal): Promise<NetworkStatus> {
    await this.#scanAsync();
    const net = this.#default;
    if (!net) return { ready: false, reason: "NetworkPluginNotReady", message: this.#notReadyMessage() };
    const err = await statusList(net, this.#invoke(signal, 10_000)).catch((e: unknown) => e as Error);
    if (err) return { ready: false, reason: "NetworkPluginNotReady", message: messageOf(err) };
    return { ready: true };
  }

  /** Resolves once a default network is configured; rejects (unavailable) after timeoutMs, or when signal aborts. */
  async waitReady(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    await this.#scanAsync();
    if (this.#default) return;
    let wake!: () => void;
    const ready = new Promise<void>((r) => (wake = r));
    this.#waiters.add(wake);
    try {
      await withTimeout(abortable(ready, signal), timeoutMs, "waiting for the pod network");
    } catch (e) {
      if ((e as Error).name === "TimeoutError") throw new RuntimeError("unavailable", `network not ready after ${timeoutMs} ms: ${this.#notReadyMessage()}`);
      throw RuntimeError.from(e);
    } finally {
      this.#waiters.delete(wake);
    }
  }

  /** CNI ADD of the pod to the default network; on failure the partial ADD is undone with DEL. */
  async setUp(pod: PodNetwork, signal?: AbortSignal): Promise<NetworkResult> {
    checkPodId(pod.id);
    if (!pod.netns || !existsSync(pod.netns)) throw invalid(`network namespace "${pod.netns}" of pod "${pod.id}" does not exist`);
    const runtimeConfig = buildRuntimeConfig(pod);
    return this.#op(pod.id, async () => {
      const prior = this.#cache.get(pod.id);
      if (prior?.result !== undefined && prior.netns === pod.netns) return parseResult(prior.result, prior.network.cniVersion);
      if (prior) await this.#del(prior, signal, 1); // a crashed or failed earlier ADD: clean it first
      const net = this.#default;
      if (!net) throw new RuntimeError("unavailable", this.#notReadyMessage());
      const rec: CachedAttachment = {
        podId: pod.id,
        network: net,
        containerId: pod.id,
        netns: pod.netns,
        ifName: POD_IFNAME,
        cniArgs: cniArgsOf(pod),
        runtimeConfig,
      };
      await this.#cache.put(rec); // the intent first: a crash mid-ADD still leaves enough to DEL
      let raw: unknown;
      try {
        raw = await traced("cni.add", () => addList(net, rec, this.#invoke(signal)), { kind: "client", attrs: { "cni.network": net.name, "pod.id": pod.id } });
      } catch (e) {
        await this.#undoAdd(rec, (e as { partial?: unknown }).partial);
        throw wrap(e, `set up network of pod "${pod.id}"`);
      }
      await this.#cache.put({ ...rec, result: raw });
      const result = parseResult(raw, net.cniVersion);
      this.#log.info("pod network set up", { pod: `${pod.namespace}/${pod.name}`, id: pod.id, network: net.name, ips: result.ips.join(",") });
      return result;
    });
  }

  /** CNI DEL from the cached attachment, retried; a no-op when nothing is attached. Throws when DEL keeps failing. */
  async tearDown(pod: { id: string; netns?: string }, signal?: AbortSignal): Promise<void> {
    checkPodId(pod.id);
    await this.#op(pod.id, async () => {
      const rec = this.#cache.get(pod.id);
      if (!rec) return;
      await traced("cni.del", () => this.#del(pod.netns ? { ...rec, netns: pod.netns } : rec, signal, 3), {
        kind: "client",
        attrs: { "cni.network": rec.network.name, "pod.id": pod.id },
      });
      this.#log.info("pod network torn down", { id: pod.id, network: rec.network.name });
    });
  }

  /** CNI CHECK of an attached pod (0.4.0+ networks without disableCheck). */
  async check(pod: { id: string }, signal?: AbortSignal): Promise<void> {
    checkPodId(pod.id);
    await this.#op(pod.id, async () => {
      const rec = this.#cache.get(pod.id);
      if (rec?.result === undefined) throw notFound("network attachment of pod", pod.id);
      try {
        await checkList(rec.network, rec, rec.result, this.#invoke(signal));
      } catch (e) {
        throw wrap(e, `check network of pod "${pod.id}"`);
      }
    });
  }

  /** The cached result of a pod's ADD (also after a restart), or undefined. */
  cachedResult(podId: string): NetworkResult | undefined {
    checkPodId(podId);
    const rec = this.#cache.get(podId);
    return rec?.result === undefined ? undefined : parseResult(rec.result, rec.network.cniVersion);
  }

  /** Pod ids that hold a cached attachment (set up, or a teardown still owed). */
  attachedPods(): string[] {
    return this.#cache.list();
  }

  /** CNI GC (1.1.0 networks) of every loaded network, keeping `validPodIds`; runs with no ADD/DEL in flight. */
  async gc(validPodIds: readonly string[], signal?: AbortSignal): Promise<void> {
    while (this.#gc) await this.#gc;
    const run = (async () => {
      while (this.#running > 0) await new Promise<void>((r) => this.#idle.add(r));
      const valid = new Set(validPodIds);
      const errors: Error[] = [];
      for (const net of this.#networks) {
        const attachments = this.#cache.list().flatMap((id) => {
          const rec = valid.has(id) ? this.#cache.get(id) : undefined;
          return rec && rec.network.name === net.name ? [{ containerID: rec.containerId, ifname: rec.ifName }] : [];
        });
        errors.push(...(await gcList(net, attachments, this.#invoke(signal))));
      }
      if (errors.length) throw new RuntimeError("unknown", `cni gc: ${errors.map(messageOf).join("; ")}`);
    })();
    this.#gc = run.catch(() => {});
    try {
      await run;
    } finally {
      this.#gc = undefined;
    }
  }

  /** The node's IPs for host-network pods: IPv4 then IPv6 of the default-route interfaces. */
  hostAddresses(): Promise<string[]> {
    return hostAddresses();
  }

  /** Stops watching the configuration directory. */
  close(): void {
    this.#watcher.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // --- internal ---

  #notReadyMessage(): string {
    // CRI-O's wording (ocicni), which kubelet and users grep for.
    return `No CNI configuration file in ${this.#o.networkDir}. Has your network provider started?`;
  }

  #invoke(signal?: AbortSignal, timeoutMs = this.#o.pluginTimeoutMs) {
    return { pluginDirs: this.pluginDirs, signal, timeoutMs };
  }

  /** One operation at a time per pod, and none while GC runs. */
  async #op<T>(podId: string, fn: () => Promise<T>): Promise<T> {
    while (this.#gc) await this.#gc;
    this.#running++;
    try {
      return await this.#perPod.run(podId, fn);
    } finally {
      if (--this.#running === 0) for (const w of this.#idle) this.#idle.delete(w), w();
    }
  }

  /** DEL with up to `attempts` tries; a missing netns is passed as "" (allowed for DEL). Removes the cache on success. */
  async #del(rec: CachedAttachment, signal: AbortSignal | undefined, attempts: number): Promise<void> {
    const att: Attachment = { ...rec, netns: (await isNamespacePinnedAsync(rec.netns)) ? rec.netns : "" };
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await sleep(250 * 4 ** (i - 1), signal);
      try {
        await delList(rec.network, att, rec.result, this.#invoke(signal));
        await this.#cache.remove(rec.podId);
        return;
      } catch (e) {
        last = e;
        this.#log.warn("cni DEL failed", { id: rec.podId, attempt: i + 1, error: messageOf(e) });
        if (signal?.aborted) break;
      }
    }
    throw wrap(last, `tear down network of pod "${rec.podId}" (network "${rec.network.name}")`);
  }

  /** Undoes a failed ADD with its own deadline (never the request's signal); keeps the cache if DEL fails too. */
  async #undoAdd(rec: CachedAttachment, partial: unknown): Promise<void> {
    try {
      await this.#del({ ...rec, result: partial ?? undefined }, AbortSignal.timeout(60_000), 2);
    } catch (e) {
      this.#log.warn("undo of a failed ADD failed; teardown is still owed", { id: rec.podId, error: messageOf(e) });
    }
  }

  #scan(): void {
    this.#apply(++this.#scanSeq, loadNetworks(this.#o.networkDir, this.pluginDirs));
  }

  async #scanAsync(): Promise<void> {
    const seq = ++this.#scanSeq;
    this.#apply(seq, await loadNetworksAsync(this.#o.networkDir, this.pluginDirs));
  }

  /** Takes a scan's result unless a scan started later was applied already. */
  #apply(seq: number, { networks, problems }: { networks: NetworkList[]; problems: ConfProblem[] }): void {
    if (seq < this.#appliedSeq) return;
    this.#appliedSeq = seq;
    this.#networks = networks;
    this.#problems = problems;
    this.#default = selectDefault(networks, this.#o.defaultNetwork);
    const summary = JSON.stringify([this.#default?.name, this.#default?.file, problems]);
    if (summary !== this.#lastSummary) {
      this.#lastSummary = summary;
      for (const p of problems) this.#log.warn("skipping CNI configuration", { file: p.file, reason: p.reason });
      if (this.#default) this.#log.info("CNI default network", { name: this.#default.name, file: this.#default.file });
      else
        this.#log.warn("no usable CNI network", {
          dir: this.#o.networkDir,
          ...(this.#o.defaultNetwork ? { wanted: this.#o.defaultNetwork } : {}),
        });
    }
    if (this.#default) for (const w of this.#waiters) w();
  }
}

// --- internal ---

function checkPodId(id: string): void {
  // CNI spec: the container id starts alphanumeric, then alphanumerics, "_", "." or "-"; also our cache file name.
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id)) throw invalid(`invalid pod id "${id}"`);
}

function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
