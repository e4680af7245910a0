// Exec round-trip latency (issue: streaming): ExecSync of `true`, and a streaming exec of
// `true` (CRI Exec → URL → WebSocket v4 session → exit status), on the compiled daemon, beside
// containerd 1.6 on the same pod and container configs when it is installed (BENCH_REFERENCE).
// Exec probes are the biggest CPU cost on dense nodes. Usage (root, after `bun run build`):
//   bun bench/exec.ts
import { readFileSync, mkdirSync } from "node:fs";
import { criClient, type CriClient } from "../test/support/cri-client.ts";
import { busyboxImage, imageRef, pauseImage, pushImage } from "../test/support/images.ts";
import { ctrConfig, podConfig, startEnv } from "../test/support/pods.ts";
import { startRegistry, type Registry } from "../test/support/registry.ts";
import { WsClient, channelData } from "../test/support/streaming-client.ts";
import { fmt, machine, median, quantile, writeSection } from "./lib.ts";
import { containerdAvailable, containerdVersion, removeAllPods, startContainerd, type Containerd } from "./reference/containerd.ts";

// 200 of each: runc exec alone varies 15–45 ms on this shared 2-core machine; fewer gave medians ±10%
const N = Number(process.env.BENCH_N ?? 200);
const M = Number(process.env.BENCH_M ?? 100);
const REFERENCE = process.env.BENCH_REFERENCE ?? (containerdAvailable() ? "containerd" : "none");

interface Target {
  name: string;
  cri: CriClient;
  dir: string;
  busybox: string;
  pid: number;
}
interface Result {
  execSync: number[];
  stream: number[];
  cpuMsPerExec: number;
  machineCpuMsPerExecSync: number;
}

/** CPU time of the whole machine (all processes, user + system), in ms (USER_HZ 100). */
const machineCpuMs = () => {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: everything but idle, iowait and steal
  return ((f[0]! + f[1]! + f[2]! + f[5]! + f[6]!) * 1000) / 100;
};

const cpuMs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, in ms (USER_HZ 100)
};

async function setUp(t: Target): Promise<string> {
  const pod = podConfig(`exec-${t.name}`, t.dir, { extra: { hostname: "" } });
  mkdirSync(pod.logDirectory!, { recursive: true });
  const { podSandboxId } = await t.cri.runPodSandbox({ config: pod });
  const { containerId } = await t.cri.createContainer({ podSandboxId, config: ctrConfig("c", t.busybox, ["sleep", "3600"], {}, pod), sandboxConfig: pod });
  await t.cri.startContainer({ containerId });
  return containerId;
}

async function streamExec(t: Target, containerId: string): Promise<void> {
  const { url } = await t.cri.exec({ containerId, cmd: ["true"], stdout: true, stderr: true });
  const { ws } = await WsClient.connect(url, ["v4.channel.k8s.io"]);
  await ws.closed;
  const status = channelData(ws.messages).get(3)?.toString() ?? "";
  if (!status.includes("Success")) throw new Error(`${t.name}: exec failed: ${status}`);
}

const results = new Map<string, Result>();
const env = await startEnv({ logLevel: "info" });
let reg: Registry | undefined;
let ctd: Containerd | undefined;
let ctdCri: CriClient | undefined;
let refVersion = "";
try {
  const targets: Target[] = [{ name: "ours", cri: env.d.cri, dir: env.d.dir, busybox: env.busybox, pid: env.d.proc.pid }];
  if (REFERENCE === "containerd") {
    refVersion = await containerdVersion();
    reg = await startRegistry();
    await pushImage(reg, await busyboxImage());
    await pushImage(reg, await pauseImage());
    ctd = await startContainerd({ registryHost: reg.host, pauseImage: imageRef(reg, "pause") });
    ctdCri = criClient(ctd.socket);
    targets.push({ name: "containerd", cri: ctdCri, dir: ctd.dir, busybox: imageRef(reg, "busybox"), pid: ctd.pid });
  }
  const ids = new Map<string, string>();
  for (const t of targets) {
    await t.cri.pullImage({ image: { image: t.busybox } });
    ids.set(t.name, await setUp(t));
    results.set(t.name, { execSync: [], stream: [], cpuMsPerExec: NaN, machineCpuMsPerExecSync: NaN });
  }
  // warm-up, then alternate the runtimes so the shared machine's load falls on both alike
  for (const t of targets) for (let i = 0; i < 5; i++) await t.cri.execSync({ containerId: ids.get(t.name)!, cmd: ["true"], timeout: 10n });
  const cpu0 = new Map(targets.map((t) => [t.name, cpuMs(t.pid)]));
  for (let i = 0; i < N; i++) {
    for (const t of i % 2 ? [...targets].reverse() : targets) {
      const r = results.get(t.name)!;
      const t0 = performance.now();
      await t.cri.execSync({ containerId: ids.get(t.name)!, cmd: ["true"], timeout: 10n });
      r.execSync.push(performance.now() - t0);
      const t1 = performance.now();
      await streamExec(t, ids.get(t.name)!);
      r.stream.push(performance.now() - t1);
    }
  }
  for (const t of targets) results.get(t.name)!.cpuMsPerExec = (cpuMs(t.pid) - cpu0.get(t.name)!) / (2 * N);
  // Everything an ExecSync costs the node (daemon, monitors or shim, runc, the client), one
  // runtime at a time: the machine's CPU time over M back-to-back calls. The test client's own
  // share is the same for both.
  for (const t of targets) {
    const m0 = machineCpuMs();
    for (let i = 0; i < M; i++) await t.cri.execSync({ containerId: ids.get(t.name)!, cmd: ["true"], timeout: 10n });
    results.get(t.name)!.machineCpuMsPerExecSync = (machineCpuMs() - m0) / M;
  }
} finally {
  if (ctdCri) await removeAllPods(ctdCri);
  await ctd?.stop();
  await reg?.stop();
  await env[Symbol.asyncDispose]();
}

const o = results.get("ours")!;
const c = results.get("containerd");
const cell = (r: Result | undefined, k: "execSync" | "stream") => (r ? `${fmt(median(r[k]), 1)} / ${fmt(quantile(r[k], 0.9), 1)}` : "not run");
const ratio = (k: "execSync" | "stream") => (c ? fmt(median(o[k]) / median(c[k]), 2) : "—");
const md = `## Exec round trip — \`bun bench/exec.ts\`

${machine()}; load average at the end ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")} (shared machine: medians). N = ${N} of each, alternating runtimes.
Reference: containerd ${c ? refVersion : "(not run)"} on the same pod and container configs. CRI-O is not installable on this machine: the budget "no slower than CRI-O" is checked against containerd instead.

| measure | ours median / p90 (ms) | containerd median / p90 (ms) | ours/containerd (median) |
|---|---|---|---|
| ExecSync \`true\` | ${cell(o, "execSync")} | ${cell(c, "execSync")} | ${ratio("execSync")} |
| streaming exec \`true\` (Exec + WebSocket v4 session to the exit status) | ${cell(o, "stream")} | ${cell(c, "stream")} | ${ratio("stream")} |
| daemon CPU per exec (ms; the runtime's own process, not its monitors/shims) | ${fmt(o.cpuMsPerExec, 2)} | ${c ? fmt(c.cpuMsPerExec, 2) : "not run"} | ${c ? fmt(o.cpuMsPerExec / c.cpuMsPerExec, 2) : "—"} |
| machine CPU per ExecSync \`true\` (ms; every process: daemon, monitors or shim, runc, client; ${M} in a row) | ${fmt(o.machineCpuMsPerExecSync, 1)} | ${c ? fmt(c.machineCpuMsPerExecSync, 1) : "not run"} | ${c ? fmt(o.machineCpuMsPerExecSync / c.machineCpuMsPerExecSync, 2) : "—"} |

Our ExecSync and streaming exec run in the container's own monitor (\`crio conmon\`, asked on its control socket, the session's
frames on that connection), which runs \`runc exec\`; no process is started per exec besides runc (a warm standby monitor is
used only when the container's monitor cannot do it). containerd's go through its per-pod shim. \`runc exec\` itself
takes 15–45 ms here (median ~20 ms, run by hand), most of either runtime's round trip.`;
writeSection("exec", md);
console.log(md);
