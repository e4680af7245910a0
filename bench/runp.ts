// RunPodSandbox with the bridge CNI plugin on the compiled daemon (issue: pod networking through
// CNI), beside CRI-O 1.26.4 and containerd 1.6, all started through bench/lib.ts's startRuntime, each
// on a bridge of its own with the shipped default conflist (bridge + host-local dual-stack +
// portmap, ipMasq; bridge, subnets and IPAM dir made private). RunPodSandbox latency (median and p90
// of N, checked for its IP) and StopPodSandbox + RemovePodSandbox latency:
//  - ours with no infra container (drop_infra_ctr = true, the default), and with one (= false);
//  - ours and CRI-O with host-network pods (no CNI), to show what the network costs;
//  - CRI-O with its defaults (drop_infra_ctr = true, as ours); containerd (a pause container per pod).
// The setups take turns pod by pod. BENCH_RUNTIMES=ours,crio,containerd picks the runtimes.
// Usage (root, after `bun run build`): bun bench/runp.ts   (BENCH_N=20 by default)
import { mkdirSync } from "node:fs";
import type { CriClient } from "../test/support/cri-client.ts";
import { busyboxImage, pauseImage, pushImage } from "../test/support/images.ts";
import { podConfig } from "../test/support/pods.ts";
import { startRegistry } from "../test/support/registry.ts";
import {
  type BenchRuntime,
  fmt,
  loadavg,
  machine,
  median,
  quantile,
  RUNTIME_LABEL,
  type RuntimeName,
  startRuntime,
  wantedRuntimes,
  writeSection,
} from "./lib.ts";

const N = Math.max(10, Number(process.env.BENCH_N ?? 20));
const WARMUP = 2;

interface Setup {
  what: string;
  rt: BenchRuntime;
  hostNetwork: boolean;
  runp: number[];
  teardown: number[];
}

/** One pod: RunPodSandbox (its IP checked), then StopPodSandbox + RemovePodSandbox, timed from the client. */
async function once(s: Setup, i: number): Promise<void> {
  const cri: CriClient = s.rt.cri;
  const pod = podConfig(`runp-${s.rt.name}-${s.hostNetwork ? "host" : "cni"}-${i}`, s.rt.dir, { hostNetwork: s.hostNetwork });
  mkdirSync(pod.logDirectory!, { recursive: true }); // containerd does not create it
  const t0 = performance.now();
  const { podSandboxId } = await cri.runPodSandbox({ config: pod });
  const t1 = performance.now();
  if (!s.hostNetwork) {
    const ip = (await cri.podSandboxStatus({ podSandboxId })).status?.network?.ip;
    if (!ip) throw new Error(`${s.what}: pod ${podSandboxId} has no IP`);
  }
  const t2 = performance.now();
  await cri.stopPodSandbox({ podSandboxId });
  await cri.removePodSandbox({ podSandboxId });
  const t3 = performance.now();
  if (i < WARMUP) return;
  s.runp.push(t1 - t0);
  s.teardown.push(t3 - t2);
}

const load0 = loadavg();
const { names, skipped } = wantedRuntimes();
const rts: BenchRuntime[] = [];
const setups: Setup[] = [];
const leaks: string[] = [];
const reg = await startRegistry();
try {
  await pushImage(reg, await busyboxImage());
  await pushImage(reg, await pauseImage());
  const add = (what: string, rt: BenchRuntime, hostNetwork: boolean) => setups.push({ what, rt, hostNetwork, runp: [], teardown: [] });
  for (const n of names) {
    const rt = await startRuntime(n, reg, { dualStack: true });
    rts.push(rt);
    if (n === "ours") {
      add("ours, bridge, no infra container (drop_infra_ctr = true, the default)", rt, false);
      add("ours, host network (no CNI), no infra container", rt, true);
      const infra = await startRuntime(n, reg, { dualStack: true, config: "[crio.runtime]\ndrop_infra_ctr = false\n" });
      rts.push(infra);
      add("ours, bridge, with an infra container (drop_infra_ctr = false)", infra, false);
    } else if (n === "crio") {
      add(`${rt.label}, bridge, no infra container (drop_infra_ctr = true, its default)`, rt, false);
      add(`${rt.label}, host network (no CNI), no infra container`, rt, true);
    } else add(`${rt.label}, bridge, pause container`, rt, false);
  }
  // the setups take turns pod by pod (the first one rotating), so the shared machine's load falls on all alike
  for (let i = 0; i < N + WARMUP; i++) for (let k = 0; k < setups.length; k++) await once(setups[(i + k) % setups.length]!, i);
  for (const rt of rts) for (const l of await rt.leaks()) leaks.push(`${rt.label}: ${l}`);
} finally {
  for (const rt of rts) await rt.stop().catch((e) => console.error(`stopping ${rt.label}: ${String(e)}`));
  await reg.stop();
}
const load1 = loadavg();

const row = (s: Setup) =>
  `| ${s.what} | ${fmt(median(s.runp), 1)} | ${fmt(quantile(s.runp, 0.9), 1)} | ${fmt(median(s.teardown), 1)} | ${fmt(quantile(s.teardown, 0.9), 1)} |`;
const bridgeOf = (n: RuntimeName) => setups.find((s) => s.rt.name === n && !s.hostNetwork);
const ours = bridgeOf("ours");
const peers = (["crio", "containerd"] as const).map(bridgeOf).filter((s): s is Setup => s !== undefined);
const ratios = ours
  ? peers
      .map(
        (p) =>
          `| ours / ${RUNTIME_LABEL[p.rt.name]} (bridge, each runtime's default) | ${fmt(median(ours.runp) / median(p.runp), 2)} | ${fmt(quantile(ours.runp, 0.9) / quantile(p.runp, 0.9), 2)} | ${fmt(median(ours.teardown) / median(p.teardown), 2)} | ${fmt(quantile(ours.teardown, 0.9) / quantile(p.teardown, 0.9), 2)} |`,
      )
      .join("\n")
  : "";
// biome-ignore lint/suspicious/noTemplateCurlyInString: "${Version}" is a dpkg-query format
const pluginsVersion = Bun.spawnSync(["dpkg-query", "-W", "-f", "${Version}", "containernetworking-plugins"]).stdout.toString() || "?";
const md = `## RunPodSandbox with the bridge CNI plugin — \`bun bench/runp.ts\`

${machine()}; load average ${load0} at the start, ${load1} at the end (other work shares the machine: compare rows of one run, not runs). N = ${N} pods per setup (after ${WARMUP} warm-up pods), the setups taking turns pod by pod; each pod run, checked for its IP, then stopped and removed; latencies from the CRI client. Every runtime is started by bench/lib.ts's startRuntime with its defaults on a bridge of its own with the shipped default conflist, contrib/cni/10-crio-bridge.conflist (bridge + host-local with an IPv4 and an IPv6 range + portmap, ipMasq; bridge, subnets and IPAM dir made private); containernetworking-plugins ${pluginsVersion}.${skipped.length ? ` Skipped: ${skipped.join("; ")}.` : ""}

| setup | RunPodSandbox median (ms) | p90 | StopPodSandbox + RemovePodSandbox median (ms) | p90 |
|---|--:|--:|--:|--:|
${setups.map(row).join("\n")}
${ratios}

Ratios: ours / the peer's (below 1: ours faster); budget: no slower than CRI-O. Ours and CRI-O run no infra container for
these pods (drop_infra_ctr = true, both defaults; the pods' PID namespace is per container); containerd always runs a
pause container (the test suite's look-alike), so its RunPodSandbox starts a shim and that container and its stop
stops them. The CNI part of RunPodSandbox is the difference between a runtime's bridge and host-network rows (mostly
the plugins themselves: bridge, which runs host-local, then portmap, each a Go binary exec'd per pod).
Left after the last pod: ${leaks.length ? leaks.join("; ") : "nothing (veths, IPAM leases, helper processes; ours also mounts, pinned namespaces, runc states)"}.`;
writeSection("runp", md);
console.log(md);
