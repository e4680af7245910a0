// Pod and container lifecycle on the compiled daemon (issue: pods and containers):
//  - runp → create → start → stop → rm → stopp → rmp latency, median of N (host network, no infra);
//  - daemon RSS with 50 running pods;
//  - monitor (crio conmon) PSS per container with 20 running;
//  - exec of `crio conmon` to the container's pid reported (from the daemon's CreateContainer).
// Usage (root, after `bun run build`): bun bench/lifecycle.ts
import { readFileSync, readdirSync } from "node:fs";
import { ctrConfig, podConfig, startEnv } from "../test/support/pods.ts";
import { fmt, machine, median, quantile, writeSection } from "./lib.ts";

const N = Number(process.env.BENCH_N ?? 15);
const PODS = Number(process.env.BENCH_PODS ?? 50);
const MONITORS = 20;

await using env = await startEnv({ logLevel: "info" });
const { cri } = env.d;
await cri.pullImage({ image: { image: env.busybox } });

const steps: Record<string, number[]> = { runp: [], create: [], start: [], stop: [], rm: [], stopp: [], rmp: [], total: [] };
for (let i = 0; i < N + 2; i++) {
  const t: number[] = [performance.now()];
  const pod = podConfig(`bench-${i}`, env.d.dir);
  const { podSandboxId } = await cri.runPodSandbox({ config: pod });
  t.push(performance.now());
  const { containerId } = await cri.createContainer({ podSandboxId, config: ctrConfig("c", env.busybox, ["sleep", "3600"], {}, pod), sandboxConfig: pod });
  t.push(performance.now());
  await cri.startContainer({ containerId });
  t.push(performance.now());
  await cri.stopContainer({ containerId, timeout: 0n });
  t.push(performance.now());
  await cri.removeContainer({ containerId });
  t.push(performance.now());
  await cri.stopPodSandbox({ podSandboxId });
  t.push(performance.now());
  await cri.removePodSandbox({ podSandboxId });
  t.push(performance.now());
  if (i < 2) continue; // warm-up
  const names = ["runp", "create", "start", "stop", "rm", "stopp", "rmp"];
  names.forEach((n, k) => steps[n]!.push(t[k + 1]! - t[k]!));
  steps.total!.push(t[7]! - t[0]!);
}

// 50 running pods: daemon RSS; the first 20 containers' monitors: PSS.
const ids: string[] = [];
for (let i = 0; i < PODS; i++) {
  const pod = podConfig(`dense-${i}`, env.d.dir);
  const { podSandboxId } = await cri.runPodSandbox({ config: pod });
  const { containerId } = await cri.createContainer({ podSandboxId, config: ctrConfig("c", env.busybox, ["sleep", "3600"], {}, pod), sandboxConfig: pod });
  await cri.startContainer({ containerId });
  ids.push(containerId);
}
await Bun.sleep(1000);
const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
const pss = (pid: number) => Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))![1]) / 1024;
const daemonRss = rss(env.d.proc.pid);
const monitors = readdirSync("/proc")
  .filter((p) => /^\d+$/.test(p))
  .map(Number)
  .filter((pid) => {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      return cmd.includes("conmon") && ids.slice(0, PODS).some((id) => cmd.includes(id));
    } catch {
      return false;
    }
  });
const monPss = monitors.slice(0, MONITORS).map(pss);
const monRss = monitors.slice(0, MONITORS).map(rss);

// exec of `crio conmon` → pid reported: CreateContainer latency minus the bundle work is not
// separable from outside; measure CreateContainer end to end as the upper bound.
const creates: number[] = [];
for (let i = 0; i < 10; i++) {
  const pod = podConfig(`cc-${i}`, env.d.dir);
  const { podSandboxId } = await cri.runPodSandbox({ config: pod });
  const t = performance.now();
  await cri.createContainer({ podSandboxId, config: ctrConfig("c", env.busybox, ["sleep", "3600"], {}, pod), sandboxConfig: pod });
  creates.push(performance.now() - t);
}

const row = (n: string) => `| ${n} | ${fmt(median(steps[n]!), 1)} | ${fmt(quantile(steps[n]!, 0.9), 1)} |`;
const md = `## Pod and container lifecycle — \`bun bench/lifecycle.ts\`

${machine()}. Host-network pods (no CNI: see the runp section for the bridge plugin), drop_infra_ctr = true, runc ${Bun.spawnSync(["runc", "--version"]).stdout.toString().split("\n")[0]?.split(" ")[2]}. N = ${N}.

| step (ms) | median | p90 |
|---|---|---|
${["runp", "create", "start", "stop", "rm", "stopp", "rmp", "total"].map(row).join("\n")}

| measure | ours | reference | budget |
|---|---|---|---|
| lifecycle total, median (ms) | ${fmt(median(steps.total!), 0)} | CRI-O 1.26: not installed on this machine, not measured | ≤ CRI-O's |
| daemon RSS with ${PODS} running pods (MB) | ${fmt(daemonRss, 1)} | CRI-O: not measured here | ≤ CRI-O's |
| monitor PSS per container, ${monPss.length} running (MB, median) | ${fmt(median(monPss), 2)} (RSS ${fmt(median(monRss), 1)}) | conmon 0.4; a bare compiled Bun child-watcher 2.6 | ≤ 3 MB |
| CreateContainer incl. \`crio conmon\` exec → pid reported (ms, median of 10) | ${fmt(median(creates), 1)} | conmon: 11 ms exec → first output; compiled Bun with splitting: 30 ms | ≤ conmon's |
`;
writeSection("lifecycle", md);
console.log(md);
