// Pod and container lifecycle on the compiled daemon (issue: pods and containers), and the same
// scenario on CRI-O 1.26.4 and containerd 1.6, all started through bench/lib.ts's startRuntime
// (BENCH_RUNTIMES=ours,crio,containerd picks them):
//  - runp → create → start → stop → rm → stopp → rmp latency, median of N (host network);
//  - daemon RSS with 50 running pods;
//  - per-pod helper PSS with 20 running (the issue's budget) and with the 50 running, median of
//    20: our monitor (`crio conmon`, one per container), CRI-O's conmon (one per container),
//    containerd-shim-runc-v2 (one per pod);
//  - CreateContainer latency (ours includes the exec of `crio conmon` → pid reported).
// Usage (root, after `bun run build`): bun bench/lifecycle.ts
import { mkdirSync, readFileSync } from "node:fs";
import { busyboxImage, pauseImage, pushImage } from "../test/support/images.ts";
import { ctrConfig, podConfig } from "../test/support/pods.ts";
import { startRegistry } from "../test/support/registry.ts";
import { type BenchRuntime, fmt, loadavg, machine, median, pidsWhere, quantile, RUNTIME_LABEL, startRuntime, wantedRuntimes, writeSection } from "./lib.ts";

const N = Number(process.env.BENCH_N ?? 15);
const PODS = Number(process.env.BENCH_PODS ?? 50);
const MONITORS = 20;

/** One runtime under test. */
type Target = BenchRuntime;

/** The runtime's helper processes (our monitors, CRI-O's conmons: argv names the container; containerd's shims: the pod) of these pods and containers. */
function helpersOf(t: Target, podIds: string[], ctrIds: string[]): number[] {
  const ids = new Set(t.name === "containerd" ? podIds : ctrIds);
  const mine = new Set(t.helpers());
  return pidsWhere((argv) => argv.some((a) => ids.has(a))).filter((p) => mine.has(p));
}

interface Result {
  steps: Record<string, number[]>;
  daemonRss: number;
  /** The daemon's anonymous (private) memory, MB: its RSS less shared file pages. */
  daemonAnon: number;
  helperPss: number[];
  helperRss: number[];
  /** The same with only MONITORS pods running. */
  helperPss20: number[];
  /** The same after one ExecSync in each of those containers (an exec probe). */
  helperPss20Probed: number[];
  /** Daemon PSS plus every helper's, with PODS running (MB). */
  totalPss: number;
  creates: number[];
}

const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
const pss = (pid: number) => Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))![1]) / 1024;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const STEPS = ["runp", "create", "start", "stop", "rm", "stopp", "rmp"];
/** The step table's rows: the steps, create + start (containerd defers `runc create` to StartContainer), the total. */
const ROWS = ["runp", "create", "start", "create + start", "stop", "rm", "stopp", "rmp", "total"];

/** A host-network pod as the kubelet sends it (no hostname: the node's), its log directory made. */
function pod(name: string, dir: string) {
  const p = podConfig(name, dir, { extra: { hostname: "" } });
  mkdirSync(p.logDirectory!, { recursive: true });
  return p;
}

/** An empty result. */
function newResult(): Result {
  return {
    steps: Object.fromEntries(ROWS.map((n) => [n, []])),
    daemonRss: NaN,
    daemonAnon: NaN,
    helperPss: [],
    helperRss: [],
    helperPss20: [],
    helperPss20Probed: [],
    totalPss: NaN,
    creates: [],
  };
}

/** One runp → create → start → stop → rm → stopp → rmp round; iteration i < 2 is warm-up. */
async function lifecycleOnce(t: Target, i: number, r: Result): Promise<void> {
  const { cri } = t;
  const p = pod(`bench-${i}`, t.dir);
  const ts: number[] = [performance.now()];
  const { podSandboxId } = await cri.runPodSandbox({ config: p });
  ts.push(performance.now());
  const { containerId } = await cri.createContainer({ podSandboxId, config: ctrConfig("c", t.busybox, ["sleep", "3600"], {}, p), sandboxConfig: p });
  ts.push(performance.now());
  await cri.startContainer({ containerId });
  ts.push(performance.now());
  await cri.stopContainer({ containerId, timeout: 0n });
  ts.push(performance.now());
  await cri.removeContainer({ containerId });
  ts.push(performance.now());
  await cri.stopPodSandbox({ podSandboxId });
  ts.push(performance.now());
  await cri.removePodSandbox({ podSandboxId });
  ts.push(performance.now());
  if (i < 2) return; // warm-up
  STEPS.forEach((n, k) => {
    r.steps[n]!.push(ts[k + 1]! - ts[k]!);
  });
  r.steps["create + start"]!.push(ts[3]! - ts[1]!);
  r.steps.total!.push(ts[7]! - ts[0]!);
}

/** PODS running pods: daemon RSS; 20 of the helpers: PSS. The pods stay (the caller cleans up). */
async function dense(t: Target, r: Result): Promise<void> {
  const { cri } = t;
  const podIds: string[] = [];
  const ctrIds: string[] = [];
  for (let i = 0; i < PODS; i++) {
    const p = pod(`dense-${i}`, t.dir);
    const { podSandboxId } = await cri.runPodSandbox({ config: p });
    const { containerId } = await cri.createContainer({ podSandboxId, config: ctrConfig("c", t.busybox, ["sleep", "3600"], {}, p), sandboxConfig: p });
    await cri.startContainer({ containerId });
    podIds.push(podSandboxId);
    ctrIds.push(containerId);
    if (podIds.length === MONITORS) {
      await Bun.sleep(3000); // steady state, as below
      r.helperPss20 = helpersOf(t, podIds, ctrIds).map(pss);
      for (const id of ctrIds) await cri.execSync({ containerId: id, cmd: ["true"], timeout: 10n });
      await Bun.sleep(3000);
      r.helperPss20Probed = helpersOf(t, podIds, ctrIds).map(pss);
    }
  }
  // steady state: our monitors settle (give back start-up memory) ~1.3 s after their container starts
  await Bun.sleep(3000);
  r.daemonRss = rss(t.pid);
  r.daemonAnon = Number(/^Anonymous:\s+(\d+)/m.exec(readFileSync(`/proc/${t.pid}/smaps_rollup`, "utf8"))![1]) / 1024;
  const helpers = helpersOf(t, podIds, ctrIds);
  if (helpers.length < PODS) console.warn(`${t.label}: found ${helpers.length} helper processes for ${PODS} pods`);
  // 20 of the pods started after the probed ones: idle helpers, as in the 20-pod row
  const idle = helpersOf(t, podIds.slice(MONITORS, 2 * MONITORS), ctrIds.slice(MONITORS, 2 * MONITORS));
  r.helperPss = idle.map(pss);
  r.helperRss = idle.map(rss);
  // every helper of the runtime: ours with its warm standby monitors
  r.totalPss = pss(t.pid) + sum(t.helpers().map(pss));
}

/** CreateContainer end to end in a fresh pod (ours: includes the exec of `crio conmon` → pid reported). */
async function createOnce(t: Target, i: number, r: Result): Promise<void> {
  const p = pod(`cc-${i}`, t.dir);
  const { podSandboxId } = await t.cri.runPodSandbox({ config: p });
  const t0 = performance.now();
  await t.cri.createContainer({ podSandboxId, config: ctrConfig("c", t.busybox, ["sleep", "3600"], {}, p), sandboxConfig: p });
  r.creates.push(performance.now() - t0);
}

const load0 = loadavg();

// The runtimes run side by side; the timed loops rotate between them (and which goes first), so
// the load of the shared machine falls on all alike. The memory phases run one after the other.
const { names, skipped } = wantedRuntimes();
const runs: Array<{ t: Target; r: Result }> = [];
const reg = await startRegistry();
try {
  await pushImage(reg, await busyboxImage());
  await pushImage(reg, await pauseImage());
  // busybox (and containerd's sandbox image) are pulled by startRuntime, before any timing
  for (const n of names) runs.push({ t: await startRuntime(n, reg), r: newResult() });
  const rotate = (i: number) => [...runs.slice(i % runs.length), ...runs.slice(0, i % runs.length)];
  for (let i = 0; i < N + 2; i++) for (const { t, r } of rotate(i)) await lifecycleOnce(t, i, r);
  for (const { t, r } of runs) await dense(t, r);
  for (let i = 0; i < 10; i++) for (const { t, r } of rotate(i)) await createOnce(t, i, r);
} finally {
  for (const { t } of runs) await t.stop().catch((e) => console.error(`stopping ${t.label}: ${String(e)}`));
  await reg.stop();
}
const load1 = loadavg();

const ours = runs.find((x) => x.t.name === "ours")?.r;
const peers = runs.filter((x) => x.t.name !== "ours");
const ratio = (a: number | undefined, b: number) => (a === undefined ? "—" : fmt(a / b, 2));
const ms = (r: Result, n: string, q: number) => fmt(quantile(r.steps[n]!, q), 1);
const cols = runs.map(({ t }) => t.label);
const stepRow = (n: string) =>
  `| ${n} | ${runs.map(({ r }) => `${ms(r, n, 0.5)} / ${ms(r, n, 0.9)}`).join(" | ")} | ${peers.map(({ r }) => ratio(ours && median(ours.steps[n]!), median(r.steps[n]!))).join(" | ")} |`;
/** A row of one figure per runtime and ours / each peer. */
const row = (what: string, f: (r: Result) => number, d = 1, extra: (r: Result) => string = () => "") =>
  `| ${what} | ${runs.map(({ r }) => `${fmt(f(r), d)}${extra(r)}`).join(" | ")} | ${peers.map(({ r }) => ratio(ours && f(ours), f(r))).join(" | ")} |`;
const head = `| ${cols.join(" | ")} | ${peers.map(({ t }) => `ours / ${RUNTIME_LABEL[t.name]}`).join(" | ")} |\n|---|${cols.map(() => "--:").join("|")}|${peers.map(() => "--:").join("|")}|`;
const runcVersion = Bun.spawnSync(["runc", "--version"]).stdout.toString().split("\n")[0]?.split(" ")[2];

const md = `## Pod and container lifecycle — \`bun bench/lifecycle.ts\`

${machine()}. Host-network pods (no CNI: see the runp section for the bridge plugin), runc ${runcVersion}, cgroupfs, N = ${N}.
Runtimes: ${cols.join(", ")}, each started by bench/lib.ts's startRuntime with its defaults, on the same pod and container configs; the timed loops rotate between them.${skipped.length ? ` Skipped: ${skipped.join("; ")}.` : ""}
The machine is shared with other engineers' test runs: load average ${load0} at the start, ${load1} at the end; figures are noisy, read the medians and ratios.

| step (ms), median / p90 ${head}
${ROWS.map(stepRow).join("\n")}

| measure ${head}
${row("lifecycle total, median (ms)", (r) => median(r.steps.total!), 0)}
${row(`daemon RSS with ${PODS} running pods (MB)`, (r) => r.daemonRss)}
${row(`daemon anonymous memory with ${PODS} running pods (MB; RSS less shared file pages)`, (r) => r.daemonAnon)}
${row(`per-pod helper PSS: our monitor / CRI-O's conmon per container, containerd's shim per pod (MB, median of ${MONITORS}, ${MONITORS} pods running)`, (r) => median(r.helperPss20), 2)}
${row("the same after one ExecSync `true` in each container 3 s before (an exec probe; ours runs it in the container's monitor)", (r) => median(r.helperPss20Probed), 2)}
${row(
  `per-pod helper PSS (MB, median of ${MONITORS}, ${PODS} pods running; RSS in parentheses)`,
  (r) => median(r.helperPss),
  2,
  (r) => ` (${fmt(median(r.helperRss), 1)})`,
)}
${row(`daemon + all helpers, PSS sum with ${PODS} pods (MB; ours with its warm standby monitors)`, (r) => r.totalPss, 0)}
${row("CreateContainer (ms, median of 10; ours and CRI-O run `runc create` under their monitor, containerd's runs none)", (r) => median(r.creates))}

Notes. Ratios are ours / the peer's: below 1 means we are faster or smaller. Budgets: the lifecycle total and the
daemon RSS ≤ CRI-O's; a monitor ≤ containerd's shim and ≤ 3 MB PSS. CRI-O runs with its defaults as ours
(drop_infra_ctr = true: no infra container for these pods; one conmon per container, moved into the pod's
cgroup: conmon_cgroup = "pod"); its CreateContainer runs \`runc create\` under a new conmon, as ours does under
a monitor.
containerd's CreateContainer only records the container and prepares its snapshot: the shim's
\`runc create\` happens in its StartContainer, so compare "create + start"; ours runs \`runc create\`
under the monitor in CreateContainer, handing the container to a monitor already waiting in standby
(every create but the first: the exec of a new monitor is off the path; bench/monitor-start.ts), and
moves that monitor into the pod's cgroup parent (monitor_cgroup; its cgroup is removed in rm).
containerd always runs a pause container per pod (its sandbox; here the test suite's pause look-alike,
a busybox \`sh\` loop, not the static pause binary), so its runp includes starting a shim and
creating and starting that container, and its stopp/rmp stop and delete it; ours runs with
drop_infra_ctr = true and starts no infra container. containerd's shim serves the whole pod
(pause + container) while ours runs one monitor per container; with one container per pod the
counts match. Pods are sent as the kubelet sends host-network pods (no hostname). containerd's
sandbox image is pulled before the timing starts. containerd runs with restrict_oom_score_adj
(this machine refuses a negative oom_score_adj) in a private mount namespace (its shims' sockets
are under /run/containerd, which is shadowed there; see bench/reference/containerd.ts).
The PSS figures are taken 3 s after the last container started: ~1.3 s after its start each of our
monitors settles (src/conmon/settle.ts: JSC's code and garbage dropped, the start-up code's page
mappings released), which takes it from ~4.3 MB to the figure above. Its floor is ~2.5 MB of Bun's own
anonymous memory; the rest is its share of the binary's pages it maps again. The containers here only
sleep: a monitor whose container logs keeps more of the binary mapped (measured by hand with 20
containers logging 5 lines/s: ~3.6 MB each, 2.6 MB of it anonymous), and so does one that ran an
ExecSync (the row above: it runs \`runc exec\` itself rather than starting a process for it, and
settles again after 30 s without one; most of the difference is shared code pages, ~0.2 MB of it
private memory).
`;
writeSection("lifecycle", md);
console.log(md);
