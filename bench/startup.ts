// Start-up to the first served Status and the idle daemon's memory (issue #20), ours beside
// CRI-O 1.26.4 and containerd 1.6 in one invocation. Usage (root, after `bun run build`):
//   bun bench/startup.ts [--runs 7] [--idle-runs 3] [--idle-s 60] [--no-write]
// BENCH_RUNTIMES=ours,crio,containerd picks the runtimes (a missing reference is skipped);
// BENCH_BASE=/path/to/crio adds that build of ours as a column "ours (base)" (A/B in one run).
//
// Start-up: from the exec of the runtime (ours: the spawn of dist/crio; the references: their
// wrapper's timestamp taken just before it execs them, bench/reference/) to the first Status
// call that answers, polled alike for all (socket file every 5 ms, then Status every 5 ms);
// fresh temp dirs, no pods; the runtimes alternate run by run. Idle memory: all runtimes up at
// once, /proc/<pid>/smaps_rollup (Rss, Pss, Anonymous) read 3 s and `--idle-s` s after each
// answered its first Status.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { startDaemon } from "../test/harness.ts";
import { fmt, loadavg, machine, median, RUNTIME_LABEL, wantedRuntimes, writeSection, type RuntimeName } from "./lib.ts";
import { containerdVersion, startContainerd } from "./reference/containerd.ts";
import { crioVersion, startCrio } from "./reference/crio.ts";
import { untilStatus } from "./reference/until-status.ts";

const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "7" },
    "idle-runs": { type: "string", default: "3" },
    "idle-s": { type: "string", default: "60" },
    "no-write": { type: "boolean", default: false },
  },
});
const RUNS = Number(args.runs);
const IDLE_RUNS = Number(args["idle-runs"]);
const IDLE_S = Number(args["idle-s"]);

interface Up {
  pid: number;
  /** ms from this script's t0 to the runtime's own exec (the references' wrapper). */
  wrapperMs: number;
  stop(): Promise<void>;
}

const REG = "127.0.0.1:1"; // no pod runs: the registry is never asked
const BASE = process.env.BENCH_BASE;
type Name = RuntimeName | "base";
const LABEL: Record<Name, string> = { ...RUNTIME_LABEL, base: "ours (base)" };
async function startOurs(binary?: string): Promise<Up> {
  const d = await startDaemon({ noWait: true, logLevel: "info", binary });
  await untilStatus(d.socket, () => d.proc.exitCode !== null, "our daemon");
  return { pid: d.proc.pid, wrapperMs: 0, stop: () => d[Symbol.asyncDispose]() };
}
const starters: Record<Name, () => Promise<Up>> = {
  ours: () => startOurs(),
  base: () => startOurs(BASE),
  async crio() {
    const c = await startCrio({ registryHost: REG, pauseImage: `${REG}/pause:latest` });
    return { pid: c.pid, wrapperMs: c.wrapperMs, stop: () => c.stop() };
  },
  async containerd() {
    const c = await startContainerd({ registryHost: REG, pauseImage: `${REG}/pause:latest` });
    return { pid: c.pid, wrapperMs: c.wrapperMs, stop: () => c.stop() };
  },
};

/** The runtime's own pid: the references run behind `setpriv`/`unshare`/`sh`, which exec into them. */
const smaps = (pid: number) => {
  const t = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(t)![1]) / 1024;
  return { rss: kb("Rss"), pss: kb("Pss"), anon: kb("Anonymous") };
};

const wanted = wantedRuntimes();
const skipped = wanted.skipped;
const names: Name[] = [...wanted.names, ...(BASE ? (["base"] as const) : [])];
const load0 = loadavg();
const startups: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
for (let i = 0; i < RUNS; i++) {
  const order = i % 2 === 0 ? names : [...names].reverse();
  for (const n of order) {
    const t0 = performance.now();
    const u = await starters[n]();
    // the references' start() polls Status the same way (5 ms) before it resolves
    startups[n]!.push(performance.now() - t0 - u.wrapperMs);
    await u.stop();
  }
}
const load1 = loadavg();

type Mem = { rss: number; pss: number; anon: number };
const idle: Record<string, { early: Mem[]; late: Mem[] }> = Object.fromEntries(names.map((n) => [n, { early: [], late: [] }]));
for (let r = 0; r < IDLE_RUNS; r++) {
  const ups: Array<{ n: Name; u: Up; at: number }> = [];
  try {
    for (const n of names) {
      const u = await starters[n]();
      ups.push({ n, u, at: performance.now() });
    }
    for (const { n, u, at } of ups) {
      await Bun.sleep(Math.max(0, at + 3000 - performance.now()));
      idle[n]!.early.push(smaps(u.pid));
    }
    for (const { n, u, at } of ups) {
      await Bun.sleep(Math.max(0, at + IDLE_S * 1000 - performance.now()));
      idle[n]!.late.push(smaps(u.pid));
    }
  } finally {
    for (const { u } of ups) await u.stop();
  }
}
const load2 = loadavg();

const versions: Record<string, string> = {};
for (const n of names) versions[n] = n === "crio" ? `CRI-O ${await crioVersion()}` : n === "containerd" ? `containerd ${await containerdVersion()}` : LABEL[n];
const col = (n: string) => versions[n] ?? LABEL[n as Name];
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? fmt(a / b, 2) : "—");
const m = (xs: number[]) => median(xs);
const peers = names.filter((n): n is RuntimeName => n !== "ours" && n !== "base");
const lines: string[] = [];
lines.push(`## Start-up and the idle daemon — \`bun bench/startup.ts\``, "");
lines.push(`${machine()}. Load average ${load0} at the start, ${load1} after the start-ups, ${load2} at the end (shared machine: medians).`);
if (skipped.length) lines.push(`Skipped: ${skipped.join("; ")}.`);
lines.push("");
lines.push(`| measure | ${names.map(col).join(" | ")} | ${peers.map((p) => `ours / ${RUNTIME_LABEL[p]}`).join(" | ")} |`);
lines.push(`|---|${names.map(() => "--:").join("|")}|${peers.map(() => "--:").join("|")}|`);
const row = (label: string, v: (n: string) => number, d = 1) =>
  lines.push(`| ${label} | ${names.map((n) => fmt(v(n), d)).join(" | ")} | ${peers.map((p) => ratio(v("ours"), v(p))).join(" | ")} |`);
row(`exec → first Status served (ms, median of ${RUNS})`, (n) => m(startups[n]!));
row(`the same, fastest run (ms)`, (n) => Math.min(...startups[n]!));
for (const [when, key] of [
  ["3 s", "early"],
  [`${IDLE_S} s`, "late"],
] as const) {
  row(`idle ${when} after start: anonymous (MB, median of ${IDLE_RUNS})`, (n) => m(idle[n]![key].map((x) => x.anon)));
  row(`idle ${when} after start: RSS (MB)`, (n) => m(idle[n]![key].map((x) => x.rss)));
  row(`idle ${when} after start: PSS (MB)`, (n) => m(idle[n]![key].map((x) => x.pss)));
}
lines.push("");
lines.push(
  `Start-up runs: ${names.map((n) => `${LABEL[n]} ${startups[n]!.map((x) => fmt(x, 0)).join(", ")}`).join("; ")} ms. ` +
    "The references run behind a wrapper (setpriv, unshare, sh, an overlay mount on /var/lib and, for containerd, /run) that writes a timestamp just before it execs them; their start-up counts from that timestamp. " +
    "Ours counts from just before its configuration files are written and it is spawned (< 1 ms more). Each writes its config into a fresh temp dir, with no pods or images; all log at info. " +
    "Memory: smaps_rollup of the runtime's process (Anonymous: its private, non-file memory; RSS includes the shared pages of its executable and libraries; PSS shares those among the processes mapping them).",
);
const md = lines.join("\n");
console.log(md);
if (!args["no-write"]) writeSection("startup", md);
