// Stats on the compiled daemon (issue: stats, metrics and events for the kubelet), with N pods on a
// private CNI bridge, each running one container:
//  - ListContainerStats and ListPodSandboxStats latency (p50/p99), collected on each call
//    (collection_period = 0) and from the background snapshot (collection_period = 10);
//  - the daemon's CPU (its own, and with its helper children) while the kubelet's pattern runs:
//    ListPodSandbox + ListContainers every 1 s, ListPodSandboxStats + ListContainerStats every 10 s.
// Budget: daemon CPU under 2% of one core at 50 pods. Usage (root, after `bun run build`):
//   bun bench/stats.ts        (BENCH_PODS=50 BENCH_WINDOW=60 BENCH_CALLS=100)
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removeDaemonDirs } from "../test/harness.ts";
import { ctrConfig, podConfig, startEnv, type Env } from "../test/support/pods.ts";
import { cleanupNet, sharedChains, testNet } from "../test/support/network.ts";
import { fmt, machine, quantile, writeSection } from "./lib.ts";

const PODS = Number(process.env.BENCH_PODS ?? 50);
const WINDOW_S = Number(process.env.BENCH_WINDOW ?? 60);
const CALLS = Number(process.env.BENCH_CALLS ?? 100);
const CLK_TCK = 100;

/** utime+stime of the process, and the same plus its waited-for children (clock ticks). */
function cpuTicks(pid: number): { self: number; all: number } {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // After ")": state(3) ppid … utime is field 14, i.e. index 11 here; stime 12, cutime 13, cstime 14.
  const [u, s, cu, cs] = [11, 12, 13, 14].map((i) => Number(f[i]));
  return { self: u! + s!, all: u! + s! + cu! + cs! };
}

async function latency(env: Env) {
  const { cri } = env.d;
  for (let i = 0; i < 5; i++) await Promise.all([cri.listContainerStats({}), cri.listPodSandboxStats({})]); // warm-up
  const out = { containers: [] as number[], pods: [] as number[] };
  for (let i = 0; i < CALLS; i++) {
    let t = performance.now();
    const c = await cri.listContainerStats({});
    out.containers.push(performance.now() - t);
    t = performance.now();
    const p = await cri.listPodSandboxStats({});
    out.pods.push(performance.now() - t);
    if (c.stats.length < PODS || p.stats.length < PODS) throw new Error(`expected ${PODS} items, got ${c.stats.length}/${p.stats.length}`);
  }
  return out;
}

/** Runs the kubelet's polling pattern for `seconds` and returns the daemon's CPU in % of one core. */
async function pattern(env: Env, seconds: number, withStats: boolean): Promise<{ self: number; all: number }> {
  const { cri } = env.d;
  const pid = env.d.proc.pid;
  const a = cpuTicks(pid);
  const t0 = performance.now();
  for (let s = 0; s < seconds; s++) {
    const tick = performance.now();
    await Promise.all([cri.listPodSandbox({}), cri.listContainers({})]);
    if (withStats && s % 10 === 0) await Promise.all([cri.listPodSandboxStats({}), cri.listContainerStats({})]);
    await Bun.sleep(Math.max(0, 1000 - (performance.now() - tick)));
  }
  const wall = (performance.now() - t0) / 1000;
  const b = cpuTicks(pid);
  return { self: ((b.self - a.self) / CLK_TCK / wall) * 100, all: ((b.all - a.all) / CLK_TCK / wall) * 100 };
}

const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const loadBefore = loadavg();
const chainsBefore = await sharedChains();
const net = testNet({ dualStack: false });
const dir = mkdtempSync(join(tmpdir(), "crio-bench-stats-"));
const conf = (period: number) => `[crio.stats]\ncollection_period = ${period}\n`;
let env = await startEnv({ dir, cniConf: net.conflist, logLevel: "info", config: conf(0) });
const results: Record<string, { lat: Awaited<ReturnType<typeof latency>>; cpu: { self: number; all: number } }> = {};
let baseline = { self: NaN, all: NaN };
try {
  await env.d.cri.pullImage({ image: { image: env.busybox } });
  const t0 = performance.now();
  for (let i = 0; i < PODS; i++) {
    const pod = podConfig(`bench-${i}`, env.d.dir, { hostNetwork: false });
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    const { containerId } = await env.d.cri.createContainer({
      podSandboxId,
      config: ctrConfig("c", env.busybox, ["sleep", "3600"], {}, pod),
      sandboxConfig: pod,
    });
    await env.d.cri.startContainer({ containerId });
  }
  console.log(`${PODS} pods up in ${fmt((performance.now() - t0) / 1000)} s`);

  baseline = await pattern(env, Math.max(10, WINDOW_S / 2), false);
  console.log(`relist only: ${fmt(baseline.self, 2)}% (${fmt(baseline.all, 2)}% with children)`);
  results.ondemand = { lat: await latency(env), cpu: await pattern(env, WINDOW_S, true) };
  console.log("collected on each call:", results.ondemand.cpu);

  // The same pods under a daemon restarted with a background collection (containers outlive the daemon).
  await env.d.stop();
  await env.reg.stop();
  env = await startEnv({ dir, cniConf: net.conflist, logLevel: "info", config: conf(10) });
  await Bun.sleep(1000); // the first background collection
  results.cached = { lat: await latency(env), cpu: await pattern(env, WINDOW_S, true) };
  console.log("collection_period = 10:", results.cached.cpu);
} finally {
  await env[Symbol.asyncDispose]();
  removeDaemonDirs(dir, env.d.runroot);
  rmSync(dir, { recursive: true, force: true });
  await cleanupNet(net, chainsBefore);
}

const row = (name: string, r: (typeof results)[string]) =>
  `| ${name} | ${fmt(quantile(r.lat.containers, 0.5), 2)} / ${fmt(quantile(r.lat.containers, 0.99), 2)} | ${fmt(quantile(r.lat.pods, 0.5), 2)} / ${fmt(quantile(r.lat.pods, 0.99), 2)} | ${fmt(r.cpu.self, 2)} (${fmt(r.cpu.all, 2)}) | ${r.cpu.all < 2 ? "yes" : "**no**"} |`;
const table = `## Stats with ${PODS} pods — \`bun bench/stats.ts\`

${machine()}. ${PODS} pods on a CNI bridge, one \`sleep\` container each; ${CALLS} sequential calls of each list for latency; the kubelet's pattern (ListPodSandbox + ListContainers every 1 s, ListPodSandboxStats + ListContainerStats every 10 s) for ${WINDOW_S} s for CPU, read from /proc/<daemon>/stat (in parentheses: with the helper processes it waited for).

| collection | ListContainerStats p50 / p99 (ms) | ListPodSandboxStats p50 / p99 (ms) | daemon CPU, % of one core | budget < 2% |
|---|---|---|---|---|
${row("on each call (collection_period = 0)", results.ondemand!)}
${row("background, collection_period = 10", results.cached!)}

Relist only (ListPodSandbox + ListContainers every 1 s, no stats): ${fmt(baseline.self, 2)}% (${fmt(baseline.all, 2)}%). Machine load average at start / end: ${loadBefore} / ${loadavg()} (the machine is shared: latencies grow with it, CPU time much less). Network counters are read from /proc/<pid>/net/dev of a process in the pod (no helper process while a container runs); writable-layer sizes are cached for 10 s.`;
writeSection("stats", table);
console.log(table);
