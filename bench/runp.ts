// RunPodSandbox with the bridge CNI plugin on the compiled daemon (issue: pod networking through
// CNI): RunPodSandbox latency (median and p90 of N) and StopPodSandbox + RemovePodSandbox latency,
//  - with the shipped default conflist (bridge + host-local dual-stack + portmap, ipMasq), no infra container;
//  - the same with an infra (pause) container per pod (drop_infra_ctr = false), as CRI-O and containerd run pods;
//  - host-network pods (no CNI), to show what the network costs;
//  - the reference: containerd 1.6 with its CRI plugin (when installed), running the same conflist.
// CRI-O is not installed on this machine: its figures are not measured.
// Usage (root, after `bun run build`): bun bench/runp.ts   (BENCH_N=20 by default)
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CriClient } from "../test/support/cri-client.ts";
import { criClient } from "../test/support/cri-client.ts";
import { podConfig, startEnv } from "../test/support/pods.ts";
import { cleanupNet, testNet, vethsOn } from "../test/support/network.ts";
import { fmt, machine, median, quantile, writeSection } from "./lib.ts";

const N = Math.max(10, Number(process.env.BENCH_N ?? 20));
const WARMUP = 2;

interface Figures {
  runp: number[];
  teardown: number[];
}

/** N sequential pods: RunPodSandbox, then StopPodSandbox + RemovePodSandbox, timed from the client. */
async function measure(cri: CriClient, dir: string, hostNetwork: boolean, label: string): Promise<Figures> {
  const out: Figures = { runp: [], teardown: [] };
  for (let i = 0; i < N + WARMUP; i++) {
    const pod = podConfig(`runp-${label}-${i}`, dir, { hostNetwork });
    mkdirSync(pod.logDirectory!, { recursive: true }); // containerd does not create it
    const t0 = performance.now();
    const { podSandboxId } = await cri.runPodSandbox({ config: pod });
    const t1 = performance.now();
    if (!hostNetwork) {
      const ip = (await cri.podSandboxStatus({ podSandboxId })).status?.network?.ip;
      if (!ip) throw new Error(`${label}: pod ${podSandboxId} has no IP`);
    }
    const t2 = performance.now();
    await cri.stopPodSandbox({ podSandboxId });
    await cri.removePodSandbox({ podSandboxId });
    const t3 = performance.now();
    if (i < WARMUP) continue;
    out.runp.push(t1 - t0);
    out.teardown.push(t3 - t2);
  }
  return out;
}

const rows: Array<{ what: string; f: Figures }> = [];
const load = () => readFileSync("/proc/loadavg", "utf8").split(" ")[0];
const loadBefore = load();

// Ours: the shipped default conflist (renamed bridge, private subnets and IPAM dir).
for (const infra of [false, true]) {
  const net = testNet();
  try {
    await using env = await startEnv({ cniConf: net.conflist, logLevel: "info", config: infra ? "[crio.runtime]\ndrop_infra_ctr = false\n" : "" });
    const what = infra ? "ours, bridge (default conflist), with an infra container" : "ours, bridge (default conflist), no infra container";
    rows.push({ what, f: await measure(env.d.cri, env.d.dir, false, infra ? "infra" : "cni") });
    if (!infra) rows.push({ what: "ours, host network (no CNI), no infra container", f: await measure(env.d.cri, env.d.dir, true, "host") });
    if ((await vethsOn(net.bridge)).length) throw new Error(`veths left on ${net.bridge}`);
  } finally {
    await cleanupNet(net);
  }
}

// The reference: containerd 1.6 (its pause container in every pod), the same conflist.
let reference = "containerd: not installed on this machine, not measured";
const refModule = join(import.meta.dir, "reference", "containerd.ts");
if (existsSync(refModule)) {
  const ref = await import(refModule);
  if (ref.containerdAvailable()) {
    const { startRegistry } = await import("../test/support/registry.ts");
    const { pauseImage, pushImage, imageRef } = await import("../test/support/images.ts");
    await using reg = await startRegistry();
    await pushImage(reg, await pauseImage());
    const net = testNet();
    const confDir = mkdtempSync(join(process.env.CRIO_TEST_TMP ?? tmpdir(), "runp-ctd-net-"));
    writeFileSync(join(confDir, "10-crio-bridge.conflist"), net.conflist);
    try {
      await using c = await ref.startContainerd({ registryHost: reg.host, pauseImage: imageRef(reg, "pause"), cniConfDir: confDir });
      const cri = criClient(c.socket);
      try {
        // the pause image is pulled by the first RunPodSandbox; the warm-up pods absorb that
        rows.push({ what: `containerd ${await ref.containerdVersion()}, bridge (same conflist), pause container`, f: await measure(cri, c.dir, false, "ctd") });
      } finally {
        cri.close();
      }
      reference = "containerd row above (same machine, same session, same plugins and conflist)";
    } finally {
      await cleanupNet(net);
      rmSync(confDir, { recursive: true, force: true });
    }
  }
}

const row = ({ what, f }: { what: string; f: Figures }) =>
  `| ${what} | ${fmt(median(f.runp), 1)} | ${fmt(quantile(f.runp, 0.9), 1)} | ${fmt(median(f.teardown), 1)} | ${fmt(quantile(f.teardown, 0.9), 1)} |`;
const ours = rows[0]!.f;
// biome-ignore lint/suspicious/noTemplateCurlyInString: "${Version}" is a dpkg-query format
const pluginsVersion = Bun.spawnSync(["dpkg-query", "-W", "-f", "${Version}", "containernetworking-plugins"]).stdout.toString() || "?";
const md = `## RunPodSandbox with the bridge CNI plugin — \`bun bench/runp.ts\`

${machine()}; 1-minute load average ${loadBefore} before, ${load()} after (other work shares the machine: compare rows of one run, not runs). N = ${N} pods one after the other (after ${WARMUP} warm-up pods), each run, checked for its IP, then stopped and removed; latencies from the CRI client. The default conflist is contrib/cni/10-crio-bridge.conflist (bridge + host-local with an IPv4 and an IPv6 range + portmap, ipMasq) with the bridge, subnets and IPAM dir made private; containernetworking-plugins ${pluginsVersion}.

| setup | RunPodSandbox median (ms) | p90 | StopPodSandbox + RemovePodSandbox median (ms) | p90 |
|---|---|---|---|---|
${rows.map(row).join("\n")}

| measure | ours | reference | budget |
|---|---|---|---|
| RunPodSandbox with the bridge plugin, median (ms) | ${fmt(median(ours.runp), 1)} | CRI-O 1.26: not installed on this machine, not measured; ${reference} | no slower than CRI-O |

The CNI part of RunPodSandbox is the difference between the first and the host-network row (mostly the plugins themselves: bridge, which runs host-local, then portmap, each a Go binary exec'd per pod).`;
writeSection("runp", md);
console.log(md);
