// A full node (issue #20): PODS pods on a bridge CNI network (the kubelet's default maximum, 110),
// one busybox `sleep` container each, started by 10 concurrent clients; then for DURATION seconds
// the kubelet's steady load: a relist (ListPodSandbox then ListContainers) every 1 s, the stats
// (ListPodSandboxStats and ListContainerStats) every 10 s, and PROBED containers probed by
// ExecSync `true` every 10 s each (spread over the period). Measured: daemon CPU (% of one core;
// and with its per-pod helpers), List* / stats / ExecSync latency, daemon RSS, the node's PSS
// (daemon + every monitor, conmon or shim) and the largest helper's PSS. Runs ours, CRI-O 1.26.4
// and containerd 1.6 one after the other in one invocation.
// Usage (root, after `bun run build`): bun bench/node.ts [--pods 110] [--probed 20] [--duration 300]
// BENCH_RUNTIMES=ours,crio,containerd (default all; a missing reference is skipped with its reason).
import { mkdirSync } from "node:fs";
import { parseArgs } from "node:util";
import type { CriClient } from "../test/support/cri-client.ts";
import { busyboxImage, pauseImage, pushImage } from "../test/support/images.ts";
import { ctrConfig, podConfig } from "../test/support/pods.ts";
import { startRegistry } from "../test/support/registry.ts";
import { ContainerState } from "../src/gen/runtime/v1/api_pb.ts";
import {
  cpuTicks,
  fmt,
  loadavg,
  machine,
  median,
  pssMb,
  quantile,
  rssMb,
  RUNTIME_LABEL,
  startRuntime,
  wantedRuntimes,
  writeSection,
  type BenchRuntime,
  type RuntimeName,
  BENCH_CGROUP_PARENT,
  removeBenchCgroupParent,
} from "./lib.ts";

const { values: args } = parseArgs({
  options: {
    pods: { type: "string", default: "110" },
    probed: { type: "string", default: "20" },
    duration: { type: "string", default: "300" },
    clients: { type: "string", default: "10" },
    "no-write": { type: "boolean", default: false },
  },
});
const PODS = Number(args.pods);
const PROBED = Number(args.probed);
const DURATION_S = Number(args.duration);
const CLIENTS = Number(args.clients);
for (const [k, v] of [
  ["pods", PODS],
  ["probed", PROBED],
  ["duration", DURATION_S],
  ["clients", CLIENTS],
] as const)
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer, not ${String(args[k])}`);
if (PROBED > PODS) throw new Error(`--probed (${PROBED}) must not exceed --pods (${PODS})`);

interface Result {
  label: string;
  startS: number;
  relistPods: number[];
  relistCtrs: number[];
  podStats: number[];
  ctrStats: number[];
  probes: number[];
  probeFailures: number;
  cpuDaemon: number;
  cpuWithHelpers: number;
  daemonRss: number;
  daemonPss: number;
  nodePss: number;
  helperCount: number;
  helperPssMedian: number;
  helperPssMax: number;
  load: string;
  errors: string[];
}

/** Runs `work(i)` for i in 0..n-1 on `clients.length` workers. */
async function pool(clients: CriClient[], n: number, work: (cri: CriClient, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    clients.map(async (cri) => {
      for (let i = next++; i < n; i = next++) await work(cri, i);
    }),
  );
}

/** Calls `f` every `periodMs` (first after `offsetMs`) until `until`; a slow call delays the next, as the kubelet's loops do. */
async function every(periodMs: number, offsetMs: number, until: number, f: () => Promise<void>): Promise<void> {
  await Bun.sleep(offsetMs);
  while (performance.now() < until) {
    const t = performance.now();
    await f();
    const wait = periodMs - (performance.now() - t);
    if (wait > 0) await Bun.sleep(Math.min(wait, Math.max(0, until - performance.now())));
  }
}

async function nodeOnce(rt: BenchRuntime): Promise<Result> {
  const r: Result = {
    label: rt.label,
    startS: 0,
    relistPods: [],
    relistCtrs: [],
    podStats: [],
    ctrStats: [],
    probes: [],
    probeFailures: 0,
    cpuDaemon: NaN,
    cpuWithHelpers: NaN,
    daemonRss: NaN,
    daemonPss: NaN,
    nodePss: NaN,
    helperCount: 0,
    helperPssMedian: NaN,
    helperPssMax: NaN,
    load: "",
    errors: [],
  };
  const clients = Array.from({ length: CLIENTS }, () => rt.client());
  let kubelet = rt.client();
  let prober = rt.client();
  try {
    const ctrs: string[] = [];
    const t0 = performance.now();
    await pool(clients, PODS, async (cri, i) => {
      const p = podConfig(`node-${i}`, rt.dir, { hostNetwork: false });
      // as the kubelet does (containerd's pod stats need one): a pod cgroup under a parent of the bench's own
      p.linux = { ...p.linux, cgroupParent: `${BENCH_CGROUP_PARENT}/pod${p.metadata!.uid}` };
      mkdirSync(p.logDirectory!, { recursive: true });
      const { podSandboxId } = await cri.runPodSandbox({ config: p });
      const { containerId } = await cri.createContainer({ podSandboxId, config: ctrConfig("c", rt.busybox, ["sleep", "36000"], {}, p), sandboxConfig: p });
      await cri.startContainer({ containerId });
      ctrs[i] = containerId;
    });
    r.startS = (performance.now() - t0) / 1000;
    const running = (await kubelet.listContainers({ filter: { state: { state: ContainerState.CONTAINER_RUNNING } } })).containers.length;
    if (running !== PODS) r.errors.push(`${running}/${PODS} containers running`);
    console.log(`  ${PODS} pods up in ${fmt(r.startS, 1)} s`);
    const prof = process.env.BENCH_PROFILE_WINDOW;
    if (prof && rt.restart) {
      // a CPU profile of the steady window alone: the daemon restarted (its pods keep running) with Bun's profiler on
      kubelet.close();
      prober.close();
      await rt.restart({ BUN_OPTIONS: `--cpu-prof-md --cpu-prof-interval=${process.env.BENCH_PROFILE_INTERVAL ?? 500} --cpu-prof-dir=${prof}` });
      kubelet = rt.client();
      prober = rt.client();
    }
    await Bun.sleep(5000); // settle: our monitors drop their start-up memory ~1.3 s after their container starts

    const helpers0 = rt.helpers();
    const ticks0 = cpuTicks(rt.pid);
    const helperTicks0 = new Map(helpers0.map((p) => [p, cpuTicks(p)]));
    const w0 = performance.now();
    const until = w0 + DURATION_S * 1000;
    const timed = async (into: number[], f: () => Promise<unknown>) => {
      const t = performance.now();
      await f();
      into.push(performance.now() - t);
    };
    await Promise.all([
      every(1000, 0, until, async () => {
        await timed(r.relistPods, () => kubelet.listPodSandbox({}));
        await timed(r.relistCtrs, () => kubelet.listContainers({}));
      }),
      every(10_000, 250, until, async () => {
        await timed(r.podStats, () => kubelet.listPodSandboxStats({}));
        await timed(r.ctrStats, () => kubelet.listContainerStats({}));
      }),
      ...ctrs.slice(0, PROBED).map((id, i) =>
        every(10_000, (i * 10_000) / PROBED, until, async () => {
          const t = performance.now();
          try {
            const res = await prober.execSync({ containerId: id, cmd: ["true"], timeout: 5n });
            if (res.exitCode !== 0) r.probeFailures++;
          } catch {
            r.probeFailures++;
          }
          r.probes.push(performance.now() - t);
        }),
      ),
    ]);
    const wall = (performance.now() - w0) / 1000;
    const ticks1 = cpuTicks(rt.pid);
    const helperTicks = rt.helpers().reduce((a, p) => a + cpuTicks(p) - (helperTicks0.get(p) ?? 0), 0);
    r.cpuDaemon = ((ticks1 - ticks0) / 100 / wall) * 100;
    r.cpuWithHelpers = ((ticks1 - ticks0 + helperTicks) / 100 / wall) * 100;
    r.load = loadavg();
    if (r.probeFailures) r.errors.push(`${r.probeFailures} probes failed`);

    const helpers = rt.helpers();
    const hp = helpers.map(pssMb).filter((x) => x > 0);
    r.daemonRss = rssMb(rt.pid);
    r.daemonPss = pssMb(rt.pid);
    r.nodePss = r.daemonPss + hp.reduce((a, b) => a + b, 0);
    r.helperCount = hp.length;
    r.helperPssMedian = median(hp);
    r.helperPssMax = Math.max(...hp);
    if (prof && rt.restart) await rt.restart({}); // the profile is written as the profiled daemon exits: the teardown stays out of it
  } finally {
    for (const c of [...clients, kubelet, prober]) c.close();
  }
  return r;
}

const { names, skipped } = wantedRuntimes();
const load0 = loadavg();
const reg = await startRegistry();
const results = new Map<RuntimeName, Result>();
try {
  await pushImage(reg, await busyboxImage());
  await pushImage(reg, await pauseImage());
  for (const n of names) {
    console.log(`${n} (load ${loadavg()})`);
    const rt = await startRuntime(n, reg);
    try {
      const res = await nodeOnce(rt);
      results.set(n, res);
      console.log(
        `  CPU ${fmt(res.cpuDaemon, 2)}%, relist p99 ${fmt(quantile(res.relistPods, 0.99), 1)}/${fmt(quantile(res.relistCtrs, 0.99), 1)} ms, stats p99 ${fmt(quantile(res.podStats, 0.99), 1)}/${fmt(quantile(res.ctrStats, 0.99), 1)} ms, RSS ${fmt(res.daemonRss, 1)} MB, node PSS ${fmt(res.nodePss, 0)} MB ${res.errors.join("; ")}`,
      );
    } finally {
      await rt.stop();
      removeBenchCgroupParent();
    }
  }
} finally {
  await reg.stop();
}

const cols = names.filter((n) => results.has(n));
const peers = cols.filter((n) => n !== "ours");
const R = (n: RuntimeName) => results.get(n)!;
const vs = (f: (n: RuntimeName) => number, against: RuntimeName[] = peers) =>
  cols.includes("ours") && against.some((p) => cols.includes(p)) ? fmt(f("ours") / Math.min(...against.filter((p) => cols.includes(p)).map(f)), 2) : "—";
const row = (what: string, f: (n: RuntimeName) => number, d: number, goal: string, against?: RuntimeName[]) =>
  `| ${what} | ${cols.map((n) => fmt(f(n), d)).join(" | ")} | ${vs(f, against)} | ${goal} |`;
const p99 = (k: "relistPods" | "relistCtrs" | "podStats" | "ctrStats" | "probes") => (n: RuntimeName) => quantile(R(n)[k], 0.99);
const p50 = (k: "relistPods" | "relistCtrs" | "podStats" | "ctrStats" | "probes") => (n: RuntimeName) => quantile(R(n)[k], 0.5);

const md = `## Full node: ${PODS} pods for ${DURATION_S} s — \`bun bench/node.ts\`

${machine()}. ${PODS} pods on a bridge network of each runtime's own (the shipped conflist, IPv4), one busybox \`sleep\` container each, started by ${CLIENTS} clients; then ${DURATION_S} s of the kubelet's steady load: relist (ListPodSandbox, ListContainers) every 1 s, ListPodSandboxStats + ListContainerStats every 10 s, ${PROBED} containers probed by ExecSync \`true\` every 10 s each (spread over the period). The runtimes run one after the other with their default settings (ours and CRI-O: no infra container; containerd: a pause container and a shim per pod).
Load average: ${load0} at the start; at the end of each window: ${cols.map((n) => `${RUNTIME_LABEL[n]} ${R(n).load}`).join("; ")}.
Reference runtimes: ${peers.map((n) => R(n).label).join(", ") || "none"}${skipped.length ? ` (${skipped.join("; ")})` : ""}.

| measure | ${cols.map((n) => R(n).label).join(" | ")} | ours / best peer | goal |
|---|${cols.map(() => "---|").join("")}---|---|
${row(`start of ${PODS} pods by ${CLIENTS} clients (s)`, (n) => R(n).startS, 1, "")}
${row("daemon CPU (% of one core)", (n) => R(n).cpuDaemon, 2, "≤ 1.0 (≤ the lower peer)")}
${row("daemon + helpers CPU (% of one core)", (n) => R(n).cpuWithHelpers, 2, "")}
${row("ListPodSandbox p50 (ms)", p50("relistPods"), 2, "")}
${row("ListPodSandbox p99 (ms)", p99("relistPods"), 2, "< 5 ms")}
${row("ListContainers p50 (ms)", p50("relistCtrs"), 2, "")}
${row("ListContainers p99 (ms)", p99("relistCtrs"), 2, "< 5 ms")}
${row("ListPodSandboxStats p99 (ms)", p99("podStats"), 1, "< 50 ms")}
${row("ListContainerStats p99 (ms)", p99("ctrStats"), 1, "< 50 ms")}
${row("ExecSync probe p50 (ms)", p50("probes"), 1, "")}
${row("ExecSync probe p99 (ms)", p99("probes"), 1, "")}
${row("daemon RSS (MB)", (n) => R(n).daemonRss, 1, "≤ 1.0 vs CRI-O", ["crio"])}
${row("node PSS: daemon + every monitor / conmon / shim (MB)", (n) => R(n).nodePss, 0, "≤ 1.0 vs containerd", ["containerd"])}
${row("helper PSS, median (MB)", (n) => R(n).helperPssMedian, 2, "")}
${row("helper PSS, max (MB)", (n) => R(n).helperPssMax, 2, "≤ 3 MB")}
| helpers counted | ${cols.map((n) => String(R(n).helperCount)).join(" | ")} | | |

Ratios: ours / the lower (better) peer; below 1 is better. Helpers: our \`crio conmon\` monitors (one per container, and the warm standby ones), CRI-O's conmons (one per container), containerd's shims (one per pod). "daemon + helpers CPU" counts the helpers alive at both ends of the window. ${cols.map((n) => (R(n).errors.length ? `${RUNTIME_LABEL[n]}: ${R(n).errors.join("; ")}.` : "")).join(" ")}
`;
if (!args["no-write"]) writeSection("node", md);
console.log(md);
