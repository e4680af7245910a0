import { describe, expect, test } from "bun:test";
import type { ContainerView } from "../../../src/container/record.ts";
import { log } from "../../../src/log/index.ts";
import type { SandboxView } from "../../../src/sandbox/record.ts";
import { StatsService, WARM_QUIET_MS, type StatsSettings } from "../../../src/stats/service.ts";
import { descriptorsFor, resolveGroups } from "../../../src/stats/metrics.ts";
import { netdevText, tree, writeCgroup, writeProc, type Tree } from "./fixtures.ts";

const MB = 1024 * 1024;

/** Fake domain: pods with containers whose pids point into the fixture cgroup tree. */
function world(t: Tree, o: { settings?: Partial<StatsSettings> } = {}) {
  const pods = new Map<string, SandboxView>();
  const ctrs = new Map<string, ContainerView>();
  let clock = 1_700_000_000_000;
  const layerCalls: string[] = [];
  const helperCalls: string[] = [];
  const settings: StatsSettings = { collectionPeriodS: 0, includedPodMetrics: [], ...o.settings };
  let nextPid = 100;
  const listeners = new Set<(kind: "created" | "started" | "stopped" | "deleted", c: ContainerView) => void>();
  const svc = new StatsService({
    containers: {
      list: (f) =>
        [...ctrs.values()].filter(
          (c) =>
            !c.meta.infra &&
            (!f?.id || c.meta.id.startsWith(f.id)) &&
            (!f?.podSandboxId || c.meta.sandboxId.startsWith(f.podSandboxId)) &&
            Object.entries(f?.labelSelector ?? {}).every(([k, v]) => c.meta.labels[k] === v),
        ),
      get: (id) => {
        const c = [...ctrs.values()].find((x) => x.meta.id.startsWith(id));
        if (!c) throw Object.assign(new Error(`container "${id}" not found`), { kind: "not-found" });
        return c;
      },
      ofPod: (id) => [...ctrs.values()].filter((c) => c.meta.sandboxId === id),
      onChange: (fn) => (listeners.add(fn), () => listeners.delete(fn)),
    },
    sandboxes: {
      list: (f) => [...pods.values()].filter((p) => (!f?.id || p.meta.id.startsWith(f.id)) && (!f?.state || p.status.state === f.state)),
      get: (id) => {
        const p = pods.get(id);
        if (!p) throw new Error(`pod sandbox "${id}" not found`);
        return p;
      },
    },
    layerUsage: async (id) => (layerCalls.push(id), { bytes: 4096, inodes: 3, mountpoint: `/merged/${id}` }),
    settings: () => settings,
    log,
    layout: t.layout,
    procRoot: t.proc,
    netDev: { read: async (ns) => (helperCalls.push(ns), netdevText(1000, 2000)) },
    now: () => clock,
  });
  return {
    svc,
    settings,
    layerCalls,
    helperCalls,
    tick: (ms: number) => (clock += ms),
    pod(id: string, o: { parent?: string; labels?: Record<string, string> } = {}) {
      pods.set(id, {
        meta: {
          id,
          name: `k8s_${id}`,
          metadata: { name: id, namespace: "default", uid: "u", attempt: 0 },
          labels: o.labels ?? {},
          annotations: {},
          cgroupParent: o.parent ?? "",
        },
        status: { state: "ready", namespaces: { net: `/run/netns/${id}` } },
      } as unknown as SandboxView);
    },
    ctr(id: string, pod: string, usageNs: number, o: { infra?: boolean; labels?: Record<string, string>; state?: string } = {}) {
      const pid = nextPid++;
      const rel = `/crio/crio-${id}`;
      writeCgroup(t, rel, { usageNs, memUsage: 10 * MB, inactiveFile: 2 * MB, rss: 6 * MB, pids: 2, procs: [pid] });
      writeProc(t, pid, rel, { fds: 3, sockets: 1 });
      ctrs.set(id, {
        meta: {
          id,
          name: `k8s_${id}`,
          sandboxId: pod,
          metadata: { name: id, attempt: 0 },
          labels: o.labels ?? {},
          annotations: {},
          image: { id: "img", name: "busybox:latest", userRequested: "busybox" },
          bundle: "/nonexistent",
          infra: o.infra,
        },
        status: { state: o.state ?? "running", pid },
      } as unknown as ContainerView);
      return rel;
    },
    remove: (id: string) => ctrs.delete(id),
    /** The container stops: its state is exited and the change is announced. */
    stop(id: string) {
      const c = ctrs.get(id)!;
      (c.status as { state: string }).state = "exited";
      for (const fn of listeners) fn("stopped", c);
    },
    /** The container starts: the change is announced. */
    started(id: string) {
      for (const fn of listeners) fn("started", ctrs.get(id)!);
    },
    notReady: (id: string) => ((pods.get(id)!.status as { state: string }).state = "notready"),
  };
}

describe("StatsService (collected on each call)", () => {
  test("containers that started are sampled once in the background after the burst's last start: files open, layers walked before the first call", async () => {
    using t = tree("hybrid");
    const w = world(t);
    w.pod("p1");
    w.pod("p2");
    w.ctr("c1", "p1", 1e9);
    w.ctr("c2", "p2", 1e9);
    w.started("c1");
    await Bun.sleep(WARM_QUIET_MS / 2);
    w.started("c2"); // the quiet period starts again
    await Bun.sleep(WARM_QUIET_MS / 2 + 100);
    expect(w.layerCalls).toEqual([]);
    await Bun.sleep(WARM_QUIET_MS / 2 + 200);
    expect(w.layerCalls.sort()).toEqual(["c1", "c2"]);
    expect(w.svc.openFiles).toBeGreaterThan(0);
    // the kubelet's first call finds the layers walked: no walk of its own
    const got = await w.svc.listContainers();
    expect(got.map((c) => c.layer?.bytes)).toEqual([4096, 4096]);
    expect(w.layerCalls.length).toBe(2);
    w.svc.close();
  });

  test("no background warm-up with collection_period > 0 (the collection samples them) or after close", async () => {
    using t = tree("hybrid");
    const w = world(t, { settings: { collectionPeriodS: 3600 } });
    w.pod("p1");
    w.ctr("c1", "p1", 1e9);
    w.started("c1");
    w.settings.collectionPeriodS = 0;
    w.pod("p2");
    w.ctr("c2", "p2", 1e9);
    w.started("c2");
    w.svc.close();
    await Bun.sleep(WARM_QUIET_MS + 200);
    expect(w.layerCalls).toEqual([]);
  });

  test("container stats: cgroup values, writable layer, CPU rate between samples ≥ 1 s apart", async () => {
    using t = tree("hybrid");
    const w = world(t);
    w.pod("p1");
    const rel = w.ctr("c1", "p1", 1e9);
    const a = await w.svc.container("c1");
    expect(a.sample?.cpu?.usageNs).toBe(1e9);
    expect(a.sample?.memory).toMatchObject({ usage: 10 * MB, workingSet: 8 * MB, rss: 6 * MB });
    expect(a.layer).toMatchObject({ bytes: 4096, inodes: 3, mountpoint: "/merged/c1" });
    expect(a.nanoCores).toBeUndefined(); // nothing to compare with yet
    writeCgroup(t, rel, { usageNs: 1.5e9, memUsage: 10 * MB, inactiveFile: 2 * MB, rss: 6 * MB, pids: 2 });
    w.tick(100);
    expect((await w.svc.container("c1")).nanoCores).toBeUndefined(); // too close: no rate from a 100 ms gap
    w.tick(900);
    expect((await w.svc.container("c1")).nanoCores).toBe(0.5e9); // 0.5 s of CPU in 1 s
    w.tick(50);
    expect((await w.svc.container("c1")).nanoCores).toBe(0.5e9); // within the interval: the last rate
  });

  test("list filters (id prefix, pod prefix, labels); exited containers are left out; infra is NOT_FOUND", async () => {
    using t = tree("v2");
    const w = world(t);
    w.pod("p1");
    w.pod("p2");
    w.ctr("aa1", "p1", 1, { labels: { app: "x" } });
    w.ctr("ab2", "p1", 1);
    w.ctr("b3", "p2", 1, { labels: { app: "x" } });
    w.ctr("b4", "p2", 1, { state: "exited" });
    w.ctr("p1", "p1", 1, { infra: true });
    const ids = async (f?: object) => (await w.svc.listContainers(f)).map((s) => s.container.meta.id).sort();
    expect(await ids()).toEqual(["aa1", "ab2", "b3"]);
    expect(await ids({ id: "a" })).toEqual(["aa1", "ab2"]);
    expect(await ids({ podSandboxId: "p2" })).toEqual(["b3"]);
    expect(await ids({ labelSelector: { app: "x" } })).toEqual(["aa1", "b3"]);
    expect(await w.svc.container("p1").catch((e) => e.message)).toBe('container "p1" not found');
    const exited = await w.svc.container("b4");
    expect(exited.sample).toBeUndefined();
  });

  test("pod stats: the sum of its containers (infra included) without a cgroup parent; the parent's cgroup when there is one", async () => {
    using t = tree("hybrid");
    const w = world(t);
    w.pod("p1");
    w.ctr("c1", "p1", 1e9);
    w.ctr("c2", "p1", 2e9);
    w.ctr("p1", "p1", 5e8, { infra: true });
    const s = await w.svc.pod("p1");
    expect(s.sample?.cpu?.usageNs).toBe(3.5e9);
    expect(s.processCount?.value).toBe(6);
    expect(s.containers.map((c) => c.container.meta.id).sort()).toEqual(["c1", "c2"]);
    expect(s.network?.interfaces.map((i) => [i.name, i.rxBytes, i.txBytes])).toEqual([["eth0", 1000, 2000]]);
    expect(w.helperCalls).toEqual(["/run/netns/p1"]);

    w.pod("p2", { parent: "/kubepods/pod2" });
    writeCgroup(t, "/kubepods/pod2", { usageNs: 7e9, memUsage: 50 * MB, inactiveFile: 0, rss: 1, pids: 9 });
    const s2 = await w.svc.pod("p2");
    expect([s2.sample?.cpu?.usageNs, s2.processCount?.value, s2.containers]).toEqual([7e9, 9, []]);
    expect(await w.svc.pod("nope").catch((e) => e.message)).toBe('pod sandbox "nope" not found');
  });

  test("the two list calls of a kubelet cycle share container samples for LIST_SHARE_MS; single calls read anew", async () => {
    using t = tree("hybrid");
    const w = world(t);
    w.pod("p1", { parent: "/kubepods/pod1" });
    writeCgroup(t, "/kubepods/pod1", { usageNs: 7e9, memUsage: 50 * MB, inactiveFile: 0, rss: 1, pids: 9 });
    const rel = w.ctr("c1", "p1", 1e9);
    const [pod] = await w.svc.listPods();
    const inPod = pod!.containers[0]!;
    writeCgroup(t, rel, { usageNs: 2e9, memUsage: 10 * MB, inactiveFile: 2 * MB, rss: 6 * MB, pids: 2 });
    w.tick(200);
    const [listed] = await w.svc.listContainers();
    expect(listed!.sample).toBe(inPod.sample); // the same read: the same values and timestamp
    expect(listed!.sample?.pids).toBeUndefined(); // the pod has a cgroup of its own: no process count read for its containers
    expect((await w.svc.container("c1")).sample?.cpu?.usageNs).toBe(2e9); // a single call reads anew
    w.tick(800); // LIST_SHARE_MS after the pod list
    const [later] = await w.svc.listContainers();
    expect(later!.sample?.cpu?.usageNs).toBe(2e9);
    expect(later!.nanoCores).toBe(1e9); // 1 s of CPU in 1 s, from the shared sample
    w.tick(100);
    const [again] = await w.svc.listPods();
    expect([again!.containers[0]!.sample, again!.containers[0]!.nanoCores]).toEqual([later!.sample, 1e9]); // shared the other way, same rate
  });

  test("cgroup files are kept open per container and pod, and closed when the container stops or the pod is not ready", async () => {
    using t = tree("hybrid");
    const w = world(t);
    w.pod("p1", { parent: "/kubepods/pod1" });
    writeCgroup(t, "/kubepods/pod1", { usageNs: 7e9, memUsage: 50 * MB, inactiveFile: 0, rss: 1, pids: 9 });
    w.ctr("c1", "p1", 1e9);
    w.pod("p2");
    w.ctr("c2", "p2", 1e9);
    await w.svc.listPods();
    const all = w.svc.openFiles;
    // (the fixture has no pressure files) pod p1: 5 files (no swap); c1: 6 (no process count); c2: 7 (its pod sums them)
    expect(all).toBe(5 + 6 + 7);
    w.stop("c2");
    expect(w.svc.openFiles).toBe(all - 7);
    w.notReady("p1");
    await w.svc.listPods({}); // lists every ready pod: p1's files go
    expect(w.svc.openFiles).toBe(6);
    w.svc.close();
    expect(w.svc.openFiles).toBe(0);
  });

  test("metrics: every value has a descriptor with as many label keys as it has labels", async () => {
    using t = tree("v2");
    const w = world(t);
    w.pod("p1");
    w.ctr("c1", "p1", 3e9);
    const [m] = await w.svc.podMetrics();
    const desc = new Map(w.svc.descriptors().map((d) => [d.name, d]));
    const all = [...m!.metrics, ...m!.containers.flatMap((c) => c.metrics)];
    for (const v of all) expect([v.name, v.labels.length]).toEqual([v.name, desc.get(v.name)?.labelKeys.length ?? -1]);
    const byName = (n: string) => all.filter((v) => v.name === n);
    expect(byName("container_cpu_usage_seconds_total")).toMatchObject([{ type: "counter", labels: ["c1", "k8s_c1", "busybox:latest", "total"], value: 3 }]);
    expect(byName("container_memory_working_set_bytes")).toMatchObject([{ type: "gauge", value: 8 * MB }]);
    expect(byName("container_network_receive_bytes_total")).toMatchObject([{ type: "counter", labels: ["p1", "POD", "", "eth0"], value: 1000 }]);
    expect(byName("container_processes")).toMatchObject([{ type: "gauge", value: 1 }]);
    expect(byName("container_sockets")).toMatchObject([{ value: 1 }]);
    expect(byName("container_fs_usage_bytes")).toMatchObject([{ value: 4096 }]);
  });

  test("included_pod_metrics selects groups; unknown names are ignored", () => {
    expect(resolveGroups(["cpu", "network", "bogus"])).toEqual({ groups: new Set(["cpu", "network"]), unknown: ["bogus"] });
    expect(resolveGroups([]).groups.size).toBe(resolveGroups(["all"]).groups.size);
    const names = descriptorsFor(resolveGroups(["cpu"]).groups).map((d) => d.name);
    expect(names).toContain("container_cpu_usage_seconds_total");
    expect(names.some((n) => n.startsWith("container_memory"))).toBe(false);
  });
});

describe("StatsService (collection_period > 0)", () => {
  test("answers from the background snapshot; new containers are read on the spot", async () => {
    using t = tree("v2");
    const w = world(t, { settings: { collectionPeriodS: 10 } });
    w.pod("p1");
    const rel = w.ctr("c1", "p1", 1e9);
    await w.svc.refresh();
    writeCgroup(t, rel, { usageNs: 9e9, memUsage: 1, inactiveFile: 0, rss: 0, pids: 1 });
    expect((await w.svc.container("c1")).sample?.cpu?.usageNs).toBe(1e9); // cached
    w.ctr("c2", "p1", 4e9);
    expect((await w.svc.listContainers()).map((s) => s.sample?.cpu?.usageNs).sort()).toEqual([1e9, 4e9]);
    w.tick(10_000);
    await w.svc.refresh();
    const c1 = await w.svc.container("c1");
    expect([c1.sample?.cpu?.usageNs, c1.nanoCores]).toEqual([9e9, 0.8e9]);
  });

  // the fixture of 100 pods (~2,500 files) alone takes seconds on a loaded machine
  test("100 pods: ListContainerStats and ListPodSandboxStats answer from the snapshot (their latency is measured by bench/stats.ts, not here)", async () => {
    using t = tree("hybrid");
    const w = world(t, { settings: { collectionPeriodS: 10 } });
    for (let i = 0; i < 100; i++) {
      w.pod(`p${i}`);
      w.ctr(`c${i}`, `p${i}`, i * 1e6);
    }
    await w.svc.refresh();
    const [cs, ps] = [await w.svc.listContainers(), await w.svc.listPods()];
    expect([cs.length, ps.length]).toEqual([100, 100]);
  }, 60_000);
});

describe("UpdatePodSandboxResources", () => {
  test("recorded for a known pod; NOT_FOUND otherwise", () => {
    using t = tree("v2");
    const w = world(t);
    w.pod("p1");
    w.svc.updatePodResources("p1", { resources: { cpuShares: "512" } });
    expect(w.svc.podResources("p1")?.resources).toEqual({ cpuShares: "512" });
    expect(() => w.svc.updatePodResources("zz", {})).toThrow('pod sandbox "zz" not found');
  });
});
