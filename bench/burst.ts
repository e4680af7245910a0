// A burst of pods as a kubelet lands them (issue #20): PODS pods on a bridge CNI network, one busybox
// `sleep` container each (the image pulled before), started by CLIENTS concurrent clients each doing
// RunPodSandbox → CreateContainer → StartContainer per pod, while one more client relists
// (ListPodSandbox then ListContainers) every 500 ms; then the same pods stopped and removed by
// CLIENTS clients (StopContainer → RemoveContainer → StopPodSandbox → RemovePodSandbox). Runs ours,
// CRI-O 1.26.4 and containerd 1.6 one after the other in one invocation (the order alternates by round).
// Checks: every pod got its own IP, every container runs, nothing is left afterwards.
// Usage (root, after `bun run build`): bun bench/burst.ts [--pods 60] [--clients 10] [--rounds 1]
// BENCH_RUNTIMES=ours,crio,containerd (default all; a missing reference is skipped with its reason).
// BENCH_RELIST_LOG=1 prints each relist's wall-clock start and both latencies (to line them up with a profile).
import { mkdirSync } from "node:fs";
import { parseArgs } from "node:util";
import type { CriClient } from "../test/support/cri-client.ts";
import { busyboxImage, pauseImage, pushImage } from "../test/support/images.ts";
import { ctrConfig, podConfig } from "../test/support/pods.ts";
import { startRegistry } from "../test/support/registry.ts";
import { ContainerState } from "../src/gen/runtime/v1/api_pb.ts";
import {
  fmt,
  loadavg,
  machine,
  median,
  quantile,
  RUNTIME_LABEL,
  startRuntime,
  wantedRuntimes,
  writeSection,
  type BenchRuntime,
  type RuntimeName,
} from "./lib.ts";

const { values: args } = parseArgs({
  options: {
    pods: { type: "string", default: "60" },
    clients: { type: "string", default: "10" },
    rounds: { type: "string", default: "1" },
    "no-write": { type: "boolean", default: false },
  },
});
const PODS = Number(args.pods);
const CLIENTS = Number(args.clients);
const ROUNDS = Number(args.rounds);
for (const [k, v] of [
  ["pods", PODS],
  ["clients", CLIENTS],
  ["rounds", ROUNDS],
] as const)
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer, not ${String(args[k])}`);
const RELIST_MS = 500;

interface Phase {
  totalMs: number;
  perPod: number[];
  /** ListPodSandbox and ListContainers latencies of the relisting client during the phase. */
  relistPods: number[];
  relistCtrs: number[];
  /** The whole relist (both calls). */
  relist: number[];
  load: string;
}
interface Round {
  start: Phase;
  stop: Phase;
  distinctIps: number;
  running: number;
  leaks: string[];
  errors: string[];
}

/** Relists every RELIST_MS on its own client until `stop()`; the latencies go into `into`. */
function relister(cri: CriClient, into: () => Phase) {
  let done = false;
  const loop = (async () => {
    while (!done) {
      const tick = performance.now();
      const p = into();
      const t0 = performance.now();
      await cri.listPodSandbox({});
      const t1 = performance.now();
      await cri.listContainers({});
      const t2 = performance.now();
      p.relistPods.push(t1 - t0);
      p.relistCtrs.push(t2 - t1);
      p.relist.push(t2 - t0);
      if (process.env.BENCH_RELIST_LOG)
        console.log(`relist at ${Date.now() - (performance.now() - t0)} pods ${(t1 - t0).toFixed(1)} ctrs ${(t2 - t1).toFixed(1)}`);
      const wait = RELIST_MS - (performance.now() - tick);
      if (wait > 0 && !done) await Bun.sleep(wait);
    }
  })();
  return async () => {
    done = true;
    await loop;
  };
}

const newPhase = (): Phase => ({ totalMs: 0, perPod: [], relistPods: [], relistCtrs: [], relist: [], load: "" });

/** Runs `work(i)` for i in 0..n-1 on `clients.length` workers, each using its own client. */
async function pool(clients: CriClient[], n: number, work: (cri: CriClient, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    clients.map(async (cri) => {
      for (let i = next++; i < n; i = next++) await work(cri, i);
    }),
  );
}

async function burstOnce(rt: BenchRuntime, round: number): Promise<Round> {
  const clients = Array.from({ length: CLIENTS }, () => rt.client());
  const watcher = rt.client();
  const r: Round = { start: newPhase(), stop: newPhase(), distinctIps: 0, running: 0, leaks: [], errors: [] };
  const pods: Array<{ pod: string; ctr: string }> = [];
  try {
    // one warm-up pod (a node is warm: images pulled, plugins cached), removed before the burst
    {
      const p = podConfig(`warm-${round}`, rt.dir, { hostNetwork: false });
      mkdirSync(p.logDirectory!, { recursive: true });
      const { podSandboxId } = await rt.cri.runPodSandbox({ config: p });
      const { containerId } = await rt.cri.createContainer({ podSandboxId, config: ctrConfig("c", rt.busybox, ["sleep", "3600"], {}, p), sandboxConfig: p });
      await rt.cri.startContainer({ containerId });
      await rt.cri.stopContainer({ containerId, timeout: 0n });
      await rt.cri.removeContainer({ containerId });
      await rt.cri.stopPodSandbox({ podSandboxId });
      await rt.cri.removePodSandbox({ podSandboxId });
    }
    for (const c of [...clients, watcher]) await c.version({}); // connections up
    const configs = Array.from({ length: PODS }, (_, i) => {
      const p = podConfig(`burst-${round}-${i}`, rt.dir, { hostNetwork: false });
      mkdirSync(p.logDirectory!, { recursive: true });
      return p;
    });
    let phase = r.start;
    const stopRelist = relister(watcher, () => phase);
    await Bun.sleep(RELIST_MS); // a relist or two before the burst
    let t0 = performance.now();
    await pool(clients, PODS, async (cri, i) => {
      const p = configs[i]!;
      const t = performance.now();
      const { podSandboxId } = await cri.runPodSandbox({ config: p });
      const { containerId } = await cri.createContainer({ podSandboxId, config: ctrConfig("c", rt.busybox, ["sleep", "3600"], {}, p), sandboxConfig: p });
      await cri.startContainer({ containerId });
      r.start.perPod.push(performance.now() - t);
      pods[i] = { pod: podSandboxId, ctr: containerId };
    });
    r.start.totalMs = performance.now() - t0;
    r.start.load = loadavg();

    // correctness: one IP per pod, all distinct; every container running
    const ips = await Promise.all(pods.map(async ({ pod }) => (await rt.cri.podSandboxStatus({ podSandboxId: pod })).status?.network?.ip ?? ""));
    r.distinctIps = new Set(ips.filter(Boolean)).size;
    if (r.distinctIps !== PODS) r.errors.push(`${PODS - r.distinctIps} pods without an IP of their own (${ips.filter((x) => !x).length} without any)`);
    const ids = new Set(pods.map((p) => p.ctr));
    r.running = (await rt.cri.listContainers({ filter: { state: { state: ContainerState.CONTAINER_RUNNING } } })).containers.filter((c) =>
      ids.has(c.id),
    ).length;
    if (r.running !== PODS) r.errors.push(`${PODS - r.running} containers not running`);

    await Bun.sleep(RELIST_MS);
    phase = r.stop;
    t0 = performance.now();
    await pool(clients, PODS, async (cri, i) => {
      const { pod, ctr } = pods[i]!;
      const t = performance.now();
      await cri.stopContainer({ containerId: ctr, timeout: 0n });
      await cri.removeContainer({ containerId: ctr });
      await cri.stopPodSandbox({ podSandboxId: pod });
      await cri.removePodSandbox({ podSandboxId: pod });
      r.stop.perPod.push(performance.now() - t);
    });
    r.stop.totalMs = performance.now() - t0;
    r.stop.load = loadavg();
    await stopRelist();

    // nothing left: the runtime lists nothing, and its own leak checks (processes, veths, leases, mounts)
    const left = (await rt.cri.listPodSandbox({})).items.length + (await rt.cri.listContainers({})).containers.length;
    if (left) r.leaks.push(`${left} pods/containers still listed`);
    // helpers exit asynchronously after their container: give them a few seconds
    const deadline = Date.now() + 10_000;
    let leaks = await rt.leaks();
    while (leaks.length && Date.now() < deadline) {
      await Bun.sleep(250);
      leaks = await rt.leaks();
    }
    r.leaks.push(...leaks);
  } finally {
    for (const c of [...clients, watcher]) c.close();
  }
  return r;
}

// ---------------------------------------------------------------------------------------------

const { names, skipped } = wantedRuntimes();
const load0 = loadavg();
const reg = await startRegistry();
const results = new Map<RuntimeName, { label: string; rounds: Round[] }>();
try {
  await pushImage(reg, await busyboxImage());
  await pushImage(reg, await pauseImage());
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const n of order) {
      console.log(`round ${round + 1}: ${n} (load ${loadavg()})`);
      const rt = await startRuntime(n, reg);
      try {
        const res = await burstOnce(rt, round);
        const e = results.get(n) ?? { label: rt.label, rounds: [] };
        e.rounds.push(res);
        results.set(n, e);
        console.log(
          `  start ${fmt(res.start.totalMs / 1000, 2)} s, p99 ${fmt(quantile(res.start.perPod, 0.99), 0)} ms, relist p99 ${fmt(quantile(res.start.relist, 0.99), 1)} ms; stop ${fmt(res.stop.totalMs / 1000, 2)} s; ${res.errors.concat(res.leaks).join("; ") || "clean"}`,
        );
      } finally {
        await rt.stop();
      }
    }
  }
} finally {
  await reg.stop();
}
const load1 = loadavg();

// ---------------------------------------------------------------------------------------------

const cols = names.filter((n) => results.has(n));
const all = (n: RuntimeName, f: (r: Round) => number[]) => results.get(n)!.rounds.flatMap(f);
const medTotal = (n: RuntimeName, ph: "start" | "stop") => median(results.get(n)!.rounds.map((r) => r[ph].totalMs)) / 1000;
const peers = cols.filter((n) => n !== "ours");
/** ours / the faster (lower) peer. */
const vsFaster = (f: (n: RuntimeName) => number) => {
  if (!cols.includes("ours") || peers.length === 0) return "—";
  const best = Math.min(...peers.map(f));
  return fmt(f("ours") / best, 2);
};
const row = (what: string, f: (n: RuntimeName) => number, d = 1, goal = "") =>
  `| ${what} | ${cols.map((n) => fmt(f(n), d)).join(" | ")} | ${vsFaster(f)} | ${goal} |`;
const q = (n: RuntimeName, f: (r: Round) => number[], p: number) => quantile(all(n, f), p);

const md = `## Burst: ${PODS} pods by ${CLIENTS} clients — \`bun bench/burst.ts\`

${machine()}; ${ROUNDS} round(s), the runtimes one after the other (order alternating by round), each on a bridge network of its own (the shipped conflist: bridge + host-local + portmap, IPv4, ipMasq), busybox pulled before, one warm-up pod. Per pod: RunPodSandbox → CreateContainer → StartContainer (start) and StopContainer → RemoveContainer → StopPodSandbox → RemovePodSandbox (stop), ${CLIENTS} clients on connections of their own; an 11th relists (ListPodSandbox then ListContainers) every ${RELIST_MS} ms throughout.
Load average: ${load0} at the start, ${load1} at the end; per runtime at the end of its start / stop phase: ${cols
  .map(
    (n) =>
      `${RUNTIME_LABEL[n]} ${results
        .get(n)!
        .rounds.map((r) => `${r.start.load.split(" ")[0]} / ${r.stop.load.split(" ")[0]}`)
        .join(", ")}`,
  )
  .join("; ")}.
Reference runtimes: ${
  cols
    .filter((n) => n !== "ours")
    .map((n) => results.get(n)!.label)
    .join(", ") || "none"
}${skipped.length ? ` (${skipped.join("; ")})` : ""}. CRI-O runs with drop_infra_ctr = true (its default, as ours); containerd runs a pause container per pod.

| measure | ${cols.map((n) => results.get(n)!.label).join(" | ")} | ours / faster peer | goal |
|---|${cols.map(() => "---|").join("")}---|---|
${row("start: all running, total (s, median of rounds)", (n) => medTotal(n, "start"), 2, "≤ 1.0")}
${row("start: per pod p50 (ms)", (n) => q(n, (r) => r.start.perPod, 0.5), 0)}
${row("start: per pod p99 (ms)", (n) => q(n, (r) => r.start.perPod, 0.99), 0, "≤ 1.0")}
${row("relist during start: p50 (ms, both calls)", (n) => q(n, (r) => r.start.relist, 0.5), 1)}
${row("relist during start: p99 (ms, both calls)", (n) => q(n, (r) => r.start.relist, 0.99), 1, "≤ 1.0 (DESIGN: < 20 ms)")}
${row("ListPodSandbox during start: p99 (ms)", (n) => q(n, (r) => r.start.relistPods, 0.99), 1)}
${row("ListContainers during start: p99 (ms)", (n) => q(n, (r) => r.start.relistCtrs, 0.99), 1)}
${row("stop + remove: total (s, median of rounds)", (n) => medTotal(n, "stop"), 2, "≤ 1.0")}
${row("stop + remove: per pod p50 (ms)", (n) => q(n, (r) => r.stop.perPod, 0.5), 0)}
${row("stop + remove: per pod p99 (ms)", (n) => q(n, (r) => r.stop.perPod, 0.99), 0)}
${row("relist during stop: p50 (ms)", (n) => q(n, (r) => r.stop.relist, 0.5), 1)}
${row("relist during stop: p99 (ms)", (n) => q(n, (r) => r.stop.relist, 0.99), 1)}
| relists sampled (start / stop) | ${cols.map((n) => `${all(n, (r) => r.start.relist).length} / ${all(n, (r) => r.stop.relist).length}`).join(" | ")} | | |

Correctness (every round): ${cols
  .map(
    (n) =>
      `${RUNTIME_LABEL[n]}: ${results
        .get(n)!
        .rounds.map(
          (r) =>
            `${r.distinctIps}/${PODS} distinct IPs, ${r.running}/${PODS} running, ${[...r.errors, ...r.leaks].join("; ") || "nothing left after (pods, containers, helper processes, veths, IPAM leases" + (n === "ours" ? ", mounts, pinned namespaces, runc states" : "") + ")"}`,
        )
        .join(" | ")}`,
  )
  .join(". ")}.
`;
if (!args["no-write"]) writeSection("burst", md);
console.log(md);
const bad = [...results.values()].flatMap((e) => e.rounds.flatMap((r) => [...r.errors, ...r.leaks]));
if (bad.length) process.exitCode = 1;
