// Soak (issue #17): `bun bench/soak.ts` (as root, after `bun run build`). BENCH_LIFECYCLES (1,000)
// pod + container lifecycles, BENCH_PAR (4) at a time: RunPodSandbox, CreateContainer of a
// container that logs a line every 20 ms, StartContainer, 2 ExecSync probes, StopPodSandbox,
// RemovePodSandbox. Samples the daemon's RSS, open fds and the count of monitor processes every
// BENCH_EVERY (50) lifecycles and writes the curve into its section of bench/RESULTS.md.
import { readFileSync, readdirSync } from "node:fs";
import { ctrConfig, podConfig, startEnv } from "../test/support/pods.ts";
import { writeSection } from "./lib.ts";

const total = Number(process.env.BENCH_LIFECYCLES ?? 1000);
const par = Number(process.env.BENCH_PAR ?? 4);
const every = Number(process.env.BENCH_EVERY ?? 50);
await using env = await startEnv({ logLevel: "info" });
const { d } = env;
await d.cri.pullImage({ image: { image: env.busybox } });

const samples: Array<{ n: number; rssKb: number; fds: number; monitors: number; seconds: number }> = [];
const t0 = performance.now();
const sample = (n: number) => {
  const s = {
    n,
    rssKb: rss(d.proc.pid),
    fds: readdirSync(`/proc/${d.proc.pid}/fd`).length,
    monitors: monitors(d.runroot),
    seconds: Math.round((performance.now() - t0) / 1000),
  };
  samples.push(s);
  console.log(JSON.stringify(s));
};
let done = 0;
let next = 0;
let failures = 0;
sample(0);
const lifecycle = async (i: number) => {
  const pod = podConfig(`soak-${i}`, d.dir);
  const { podSandboxId } = await d.cri.runPodSandbox({ config: pod });
  try {
    const { containerId } = await d.cri.createContainer({
      podSandboxId,
      config: ctrConfig("c", env.busybox, ["sh", "-c", "i=0; while :; do echo soak line $i; i=$((i+1)); sleep 0.02; done"], {}, pod),
      sandboxConfig: pod,
    });
    await d.cri.startContainer({ containerId });
    for (let k = 0; k < 2; k++) {
      const r = await d.cri.execSync({ containerId, cmd: ["sh", "-c", "test -d /proc/1"], timeout: 10n });
      if (r.exitCode !== 0) throw new Error(`probe exit ${r.exitCode}`);
    }
  } finally {
    await d.cri.stopPodSandbox({ podSandboxId });
    await d.cri.removePodSandbox({ podSandboxId });
  }
};
await Promise.all(
  Array.from({ length: par }, async () => {
    while (next < total) {
      const i = next++;
      await lifecycle(i).catch((e) => {
        failures++;
        console.log(`lifecycle ${i} failed: ${String(e)}`);
      });
      done++;
      if (done % every === 0) sample(done);
    }
  }),
);
await Bun.sleep(3000);
sample(done);
const first = samples[1] ?? samples[0]!;
const last = samples.at(-1)!;
const md = [
  "## Soak: pod + container lifecycles — `bun bench/soak.ts`",
  "",
  "Ours alone: a leak check of our daemon over many lifecycles; CRI-O and containerd are not run (the lifecycle and node sections hold the three-way memory figures).",
  "",
  `${new Date().toISOString().slice(0, 10)}: ${total} lifecycles, ${par} at a time, in ${last.seconds} s (${failures} failed): RunPodSandbox (host network), a container logging a line every 20 ms, 2 ExecSync probes, StopPodSandbox, RemovePodSandbox. Sampled every ${every} lifecycles (the last sample 3 s after the end, nothing running):`,
  "",
  "| lifecycles | seconds | daemon RSS (MB) | open fds | monitor processes (see below) |",
  "|---|---|---|---|---|",
  ...samples.map((s) => `| ${s.n} | ${s.seconds} | ${(s.rssKb / 1024).toFixed(1)} | ${s.fds} | ${s.monitors} |`),
  "",
  "The monitor column counts the `crio conmon` processes whose command line names this daemon's runroot or runtime root (standbys, and container monitors whose retitled command line had room for the runtime root): under load it undercounts the 4 containers' monitors; the figure that matters is the last, with nothing running.",
  "",
  `RSS from the first sample under load to the end: ${(first.rssKb / 1024).toFixed(1)} → ${(last.rssKb / 1024).toFixed(1)} MB; fds ${first.fds} → ${last.fds}; monitors at the end: ${last.monitors} (a warm standby; nothing else left).`,
  "",
];
writeSection("soak", md.join("\n"));
console.log(md.join("\n"));

function rss(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
}

/** `crio conmon` processes of this daemon: a standby's command line names the runroot, a container's (retitled) its runtime root. */
function monitors(runroot: string, runtimeRoot = d.runcRoot): number {
  let n = 0;
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (cmd.includes("conmon") && (cmd.includes(runroot) || cmd.includes(runtimeRoot))) n++;
    } catch {}
  }
  return n;
}
