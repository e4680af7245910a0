// Exec round-trip latency (issue: streaming): ExecSync of `true`, and a streaming exec of
// `true` (CRI Exec → URL → WebSocket v4 session → exit status), on the compiled daemon, beside
// CRI-O 1.26.4 and containerd 1.6 on the same pod and container configs, all started through
// bench/lib.ts's startRuntime (BENCH_RUNTIMES=ours,crio,containerd picks them).
// Exec probes are the biggest CPU cost on dense nodes. Usage (root, after `bun run build`):
//   bun bench/exec.ts
import { mkdirSync, readFileSync } from "node:fs";
import { busyboxImage, pauseImage, pushImage } from "../test/support/images.ts";
import { ctrConfig, podConfig } from "../test/support/pods.ts";
import { startRegistry } from "../test/support/registry.ts";
import { channelData, WsClient } from "../test/support/streaming-client.ts";
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

// 200 of each: runc exec alone varies 15–45 ms on this shared 2-core machine; fewer gave medians ±10%
const N = Number(process.env.BENCH_N ?? 200);
const M = Number(process.env.BENCH_M ?? 100);

type Target = BenchRuntime;
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

const results = new Map<RuntimeName, Result>();
const { names, skipped } = wantedRuntimes();
const load0 = loadavg();
const targets: Target[] = [];
const reg = await startRegistry();
try {
  await pushImage(reg, await busyboxImage());
  await pushImage(reg, await pauseImage());
  for (const n of names) targets.push(await startRuntime(n, reg));
  const ids = new Map<string, string>();
  for (const t of targets) {
    ids.set(t.name, await setUp(t));
    results.set(t.name, { execSync: [], stream: [], cpuMsPerExec: NaN, machineCpuMsPerExecSync: NaN });
  }
  // warm-up, then rotate the runtimes so the shared machine's load falls on all alike
  for (const t of targets) for (let i = 0; i < 5; i++) await t.cri.execSync({ containerId: ids.get(t.name)!, cmd: ["true"], timeout: 10n });
  const cpu0 = new Map(targets.map((t) => [t.name, cpuMs(t.pid)]));
  for (let i = 0; i < N; i++) {
    const k = i % targets.length;
    for (const t of [...targets.slice(k), ...targets.slice(0, k)]) {
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
  // Everything an ExecSync costs the node (daemon, monitors, conmons or shim, runc, the client), one
  // runtime at a time: the machine's CPU time over M back-to-back calls. The test client's own
  // share is the same for all.
  for (const t of targets) {
    const m0 = machineCpuMs();
    for (let i = 0; i < M; i++) await t.cri.execSync({ containerId: ids.get(t.name)!, cmd: ["true"], timeout: 10n });
    results.get(t.name)!.machineCpuMsPerExecSync = (machineCpuMs() - m0) / M;
  }
} finally {
  for (const t of targets) await t.stop().catch((e) => console.error(`stopping ${t.label}: ${String(e)}`));
  await reg.stop();
}
const load1 = loadavg();

const o = results.get("ours");
const peers = targets.filter((t) => t.name !== "ours");
type Key = "execSync" | "stream" | "cpuMsPerExec" | "machineCpuMsPerExecSync";
const value = (r: Result, k: Key) => (k === "execSync" || k === "stream" ? median(r[k]) : r[k]);
const cell = (n: RuntimeName, k: Key) => {
  const r = results.get(n)!;
  return k === "execSync" || k === "stream" ? `${fmt(median(r[k]), 1)} / ${fmt(quantile(r[k], 0.9), 1)}` : fmt(r[k], k === "cpuMsPerExec" ? 2 : 1);
};
const ratio = (n: RuntimeName, k: Key) => (o ? fmt(value(o, k) / value(results.get(n)!, k), 2) : "—");
const row = (what: string, k: Key) => `| ${what} | ${targets.map((t) => cell(t.name, k)).join(" | ")} | ${peers.map((p) => ratio(p.name, k)).join(" | ")} |`;
const md = `## Exec round trip — \`bun bench/exec.ts\`

${machine()}; load average ${load0} at the start, ${load1} at the end (shared machine: medians). N = ${N} of each, the runtimes taking turns call by call.
Runtimes: ${targets.map((t) => t.label).join(", ")}, each started by bench/lib.ts's startRuntime with its defaults (ours and CRI-O: no infra container; containerd: a pause container and a shim per pod), the same host-network pod and busybox \`sleep\` container.${skipped.length ? ` Skipped: ${skipped.join("; ")}.` : ""}

| measure | ${targets.map((t) => t.label).join(" | ")} | ${peers.map((p) => `ours / ${RUNTIME_LABEL[p.name]}`).join(" | ")} |
|---|${targets.map(() => "--:").join("|")}|${peers.map(() => "--:").join("|")}|
${row("ExecSync `true`, median / p90 (ms)", "execSync")}
${row("streaming exec `true` (Exec + WebSocket v4 session to the exit status), median / p90 (ms)", "stream")}
${row("daemon CPU per exec (ms; the runtime's own process, not its monitors, conmons or shims)", "cpuMsPerExec")}
${row(`machine CPU per ExecSync \`true\` (ms; every process: daemon, monitors/conmons/shim, runc, client; ${M} in a row)`, "machineCpuMsPerExecSync")}

Ratios: ours / the peer's median (below 1: ours faster or cheaper). The machine CPU row reads /proc/stat: it counts other sessions' work during those 100 calls too, so on this shared machine it is the noisiest row.
Our ExecSync and streaming exec run in the container's own monitor (\`crio conmon\`, asked on its control socket, the session's
frames on that connection), which runs \`runc exec\`; no process is started per exec besides runc (a warm standby monitor is
used only when the container's monitor cannot do it). CRI-O 1.26's ExecSync runs \`conmon --exec\` (a new conmon per
exec, which runs \`runc exec\`); its streaming exec runs \`runc exec\` from the daemon with a pty or pipes. containerd's go through its per-pod shim. \`runc exec\` itself
takes 15–45 ms here (median ~20 ms, run by hand), most of either runtime's round trip.`;
writeSection("exec", md);
console.log(md);
