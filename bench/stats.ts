// Stats with N pods on a CNI bridge, each running one container, on the compiled daemon beside
// CRI-O 1.26.4 and containerd 1.6 (issue: stats, metrics and events for the kubelet), all started
// through bench/lib.ts's startRuntime and up at once, their pods on a bridge of their own:
//  - ListContainerStats and ListPodSandboxStats latency (p50/p99), the runtimes taking turns call by
//    call; ours collects on each call (collection_period = 0, its default, as CRI-O's) and, restarted
//    on the same pods, from a background snapshot (collection_period = 10);
//  - each daemon's CPU (its own, and with the children it waited for) while the kubelet's pattern runs
//    against all of them in the same window: ListPodSandbox + ListContainers every 1 s,
//    ListPodSandboxStats + ListContainerStats every 10 s.
// Budget: daemon CPU under 2% of one core at 50 pods. Usage (root, after `bun run build`):
//   bun bench/stats.ts        (BENCH_PODS=50 BENCH_WINDOW=60 BENCH_CALLS=100; BENCH_RUNTIMES=ours,crio,containerd)
import { readFileSync } from "node:fs";
import { busyboxImage, pauseImage, pushImage } from "../test/support/images.ts";
import { ctrConfig, podConfig } from "../test/support/pods.ts";
import { startRegistry } from "../test/support/registry.ts";
import {
  BENCH_CGROUP_PARENT,
  type BenchRuntime,
  fmt,
  loadavg,
  machine,
  quantile,
  removeBenchCgroupParent,
  RUNTIME_LABEL,
  type RuntimeName,
  startRuntime,
  wantedRuntimes,
  writeSection,
} from "./lib.ts";

const PODS = Number(process.env.BENCH_PODS ?? 50);
const WINDOW_S = Number(process.env.BENCH_WINDOW ?? 60);
const CALLS = Number(process.env.BENCH_CALLS ?? 100);
const CLK_TCK = 100;

interface Cpu {
  self: number;
  all: number;
}
interface Lat {
  containers: number[];
  pods: number[];
}

/** utime+stime of the process, and the same plus its waited-for children (clock ticks). */
function cpuTicks(pid: number): Cpu {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // After ")": state(3) ppid … utime is field 14, i.e. index 11 here; stime 12, cutime 13, cstime 14.
  const [u, s, cu, cs] = [11, 12, 13, 14].map((i) => Number(f[i]));
  return { self: u! + s!, all: u! + s! + cu! + cs! };
}

/** CALLS sequential calls of each stats list on every runtime, the runtimes taking turns call by call. */
async function latency(rts: BenchRuntime[]): Promise<Lat[]> {
  for (const rt of rts) for (let i = 0; i < 5; i++) await Promise.all([rt.cri.listContainerStats({}), rt.cri.listPodSandboxStats({})]); // warm-up
  const out = rts.map(() => ({ containers: [] as number[], pods: [] as number[] }));
  for (let i = 0; i < CALLS; i++) {
    for (let k = 0; k < rts.length; k++) {
      const j = (i + k) % rts.length;
      const { cri, label } = rts[j]!;
      let t = performance.now();
      const c = await cri.listContainerStats({});
      out[j]!.containers.push(performance.now() - t);
      t = performance.now();
      const p = await cri.listPodSandboxStats({});
      out[j]!.pods.push(performance.now() - t);
      if (c.stats.length < PODS || p.stats.length < PODS) throw new Error(`${label}: expected ${PODS} items, got ${c.stats.length}/${p.stats.length}`);
    }
  }
  return out;
}

/** The kubelet's polling pattern against every runtime at once for `seconds`; each daemon's CPU in % of one core. */
async function pattern(rts: BenchRuntime[], seconds: number, withStats: boolean): Promise<Cpu[]> {
  const a = rts.map((rt) => cpuTicks(rt.pid));
  const t0 = performance.now();
  await Promise.all(
    rts.map(async ({ cri }) => {
      for (let s = 0; s < seconds; s++) {
        const tick = performance.now();
        await Promise.all([cri.listPodSandbox({}), cri.listContainers({})]);
        if (withStats && s % 10 === 0) await Promise.all([cri.listPodSandboxStats({}), cri.listContainerStats({})]);
        await Bun.sleep(Math.max(0, 1000 - (performance.now() - tick)));
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  return rts.map((rt, i) => {
    const b = cpuTicks(rt.pid);
    return { self: ((b.self - a[i]!.self) / CLK_TCK / wall) * 100, all: ((b.all - a[i]!.all) / CLK_TCK / wall) * 100 };
  });
}

const conf = (period: number) => `[crio.stats]\ncollection_period = ${period}\n`;
const load0 = loadavg();
const { names, skipped } = wantedRuntimes();
const rts: BenchRuntime[] = [];
const rows: Array<{ n: RuntimeName; name: string; label: string; lat: Lat; cpu: Cpu; relist: Cpu }> = [];
const reg = await startRegistry();
try {
  await pushImage(reg, await busyboxImage());
  await pushImage(reg, await pauseImage());
  for (const n of names) rts.push(await startRuntime(n, reg, n === "ours" ? { config: conf(0) } : {}));
  for (const rt of rts) {
    const t0 = performance.now();
    for (let i = 0; i < PODS; i++) {
      const pod = podConfig(`bench-${i}`, rt.dir, { hostNetwork: false });
      // as the kubelet does (containerd's pod stats need one): a pod cgroup under a parent of the bench's own
      pod.linux = { ...pod.linux, cgroupParent: `${BENCH_CGROUP_PARENT}/pod${pod.metadata!.uid}` };
      const { podSandboxId } = await rt.cri.runPodSandbox({ config: pod });
      const { containerId } = await rt.cri.createContainer({
        podSandboxId,
        config: ctrConfig("c", rt.busybox, ["sleep", "3600"], {}, pod),
        sandboxConfig: pod,
      });
      await rt.cri.startContainer({ containerId });
    }
    console.log(`${rt.label}: ${PODS} pods up in ${fmt((performance.now() - t0) / 1000)} s`);
  }
  const relist = await pattern(rts, Math.max(10, WINDOW_S / 2), false);
  const lat = await latency(rts);
  const cpu = await pattern(rts, WINDOW_S, true);
  rts.forEach((rt, i) => {
    const name = rt.name === "ours" ? "ours, on each call (collection_period = 0)" : `${rt.label}, on each call (its only way)`;
    rows.push({ n: rt.name, name, label: rt.label, lat: lat[i]!, cpu: cpu[i]!, relist: relist[i]! });
    console.log(name, cpu[i]);
  });

  // Ours again, restarted on the same pods (containers outlive the daemon) with a background collection.
  const ours = rts.find((rt) => rt.name === "ours");
  if (ours?.restart) {
    await ours.restart({}, conf(10));
    await Bun.sleep(1000); // the first background collection
    const [l] = await latency([ours]);
    const [relistOurs] = await pattern([ours], Math.max(10, WINDOW_S / 2), false);
    const [c] = await pattern([ours], WINDOW_S, true);
    rows.push({ n: "ours", name: "ours, background (collection_period = 10)", label: "ours", lat: l!, cpu: c!, relist: relistOurs! });
    console.log("ours, collection_period = 10:", c);
  }
} finally {
  for (const rt of rts) await rt.stop().catch((e) => console.error(`stopping ${rt.label}: ${String(e)}`));
  removeBenchCgroupParent();
  await reg.stop();
}

const p = (xs: number[]) => `${fmt(quantile(xs, 0.5), 2)} / ${fmt(quantile(xs, 0.99), 2)}`;
const row = (r: (typeof rows)[number]) =>
  `| ${r.name} | ${p(r.lat.containers)} | ${p(r.lat.pods)} | ${fmt(r.relist.self, 2)} | ${fmt(r.cpu.self, 2)} (${fmt(r.cpu.all, 2)}) | ${r.cpu.self < 2 ? "yes" : "**no**"} |`;
const ours0 = rows.find((r) => r.n === "ours");
const peers = rows.filter((r) => r.n !== "ours");
const ratio = (f: (r: (typeof rows)[number]) => number) => (r: (typeof rows)[number]) => (ours0 ? fmt(f(ours0) / f(r), 2) : "—");
const ratioRows = peers.length
  ? `| ours (collection_period = 0) / … | ListContainerStats p50 / p99 | ListPodSandboxStats p50 / p99 | daemon CPU, relist only | daemon CPU, kubelet pattern |
|---|--:|--:|--:|--:|
${peers
  .map(
    (r) =>
      `| ${RUNTIME_LABEL[r.n]} | ${ratio((x) => quantile(x.lat.containers, 0.5))(r)} / ${ratio((x) => quantile(x.lat.containers, 0.99))(r)} | ${ratio((x) => quantile(x.lat.pods, 0.5))(r)} / ${ratio((x) => quantile(x.lat.pods, 0.99))(r)} | ${ratio((x) => x.relist.self)(r)} | ${ratio((x) => x.cpu.self)(r)} |`,
  )
  .join("\n")}

Ratios: ours / the peer's (below 1: ours faster or cheaper).`
  : "No reference runtime was run: no ratio.";
const table = `## Stats with ${PODS} pods — \`bun bench/stats.ts\`

${machine()}. Runtimes: ${rts.map((rt) => rt.label).join(", ")}, each started by bench/lib.ts's startRuntime with its defaults and up at once, ${PODS} pods on a CNI bridge of its own (the shipped conflist, IPv4), one busybox \`sleep\` container each (containerd: and its pause container), each pod in a cgroup of its own below a parent of the bench's (as the kubelet gives them).${skipped.length ? ` Skipped: ${skipped.join("; ")}.` : ""}
${CALLS} sequential calls of each stats list per runtime for latency, the runtimes taking turns call by call; the kubelet's pattern (ListPodSandbox + ListContainers every 1 s, ListPodSandboxStats + ListContainerStats every 10 s) against all of them in the same ${WINDOW_S} s window for CPU (relist only: ${Math.max(10, WINDOW_S / 2)} s), read from /proc/<daemon>/stat (in parentheses: with the children it waited for). Ours restarted with collection_period = 10 is measured alone afterwards, on the same pods (its relist-only CPU includes its background collections every 10 s).
Load average ${load0} at the start, ${loadavg()} at the end (the machine is shared: latencies grow with it, CPU time much less).

| runtime, collection | ListContainerStats p50 / p99 (ms) | ListPodSandboxStats p50 / p99 (ms) | daemon CPU, relist only (% of one core) | daemon CPU, kubelet pattern (% of one core) | budget < 2% |
|---|--:|--:|--:|--:|---|
${rows.map(row).join("\n")}

${ratioRows}

CRI-O 1.26 collects stats on each call (its stats_collection_period is 0 by default; it reads every container's
cgroup, and the pod's, each time); containerd 1.6's CRI plugin asks each pod's shim for its containers' cgroup
metrics over ttrpc. Ours reads the cgroup files itself in 2 ms slices, network counters from /proc/<pid>/net/dev
of a process in the pod, writable-layer sizes cached for 10 s. bench/node.ts measures the same calls at 110 pods.`;
writeSection("stats", table);
console.log(table);
