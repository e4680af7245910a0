// Unary RPC latency and throughput of the compiled daemon (issue: foundation), plus start-up time
// to a served Status and idle memory; the same on CRI-O 1.26.4 and containerd 1.6, all started
// through bench/lib.ts's startIdle (no pods, no network). BENCH_RUNTIMES=ours,crio,containerd picks
// them. Usage: bun bench/rpc.ts  (after `bun run build`, as root).
import { readFileSync } from "node:fs";
import { fmt, type IdleRuntime, loadavg, machine, median, peerLabel, quantile, type RuntimeName, startIdle, wantedRuntimes, writeSection } from "./lib.ts";

const SEQ = Number(process.env.BENCH_SEQ ?? 3000);
const PAR_TOTAL = Number(process.env.BENCH_PAR ?? 8000);
const INFLIGHT = 16;
const BLOCKS = 10;
type Started = IdleRuntime;

interface Result {
  name: RuntimeName;
  label: string;
  /** The references' wrapper time of each start (not counted in their start-up). */
  wrapper: number[];
  startups: number[];
  rss: number[];
  /** Anonymous (private) memory: what the process costs beyond the file pages it shares. */
  anon: number[];
  seq: number[];
  seqRate: number;
  par: number[];
  parRate: number;
}

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
const anonOf = (pid: number) => Number(/^Anonymous:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))![1]) / 1024;

/** An empty result. */
function newResult(name: RuntimeName): Result {
  return { name, label: name, wrapper: [], startups: [], rss: [], anon: [], seq: [], seqRate: 0, par: [], parRate: 0 };
}

/** One start to Status answering, then the idle memory 3 s later (both settled); stops the runtime. */
async function startOnce(r: Result): Promise<void> {
  const t0 = performance.now();
  await using d = await startIdle(r.name);
  r.label = d.label;
  r.wrapper.push(d.wrapperMs);
  r.startups.push(performance.now() - t0 - d.wrapperMs);
  await Bun.sleep(3000);
  r.rss.push(rssOf(d.pid));
  r.anon.push(anonOf(d.pid));
}

/** `n` sequential Version calls; returns their wall time (ms). */
async function seqBlock(d: Started, n: number, r: Result): Promise<number> {
  const t1 = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await d.cri.version({});
    r.seq.push(performance.now() - t);
  }
  return performance.now() - t1;
}

/** `n` Version calls with INFLIGHT in flight; returns their wall time (ms). */
async function parBlock(d: Started, n: number, r: Result): Promise<number> {
  let next = 0;
  const t2 = performance.now();
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (next++ < n) {
        const t = performance.now();
        await d.cri.version({});
        r.par.push(performance.now() - t);
      }
    }),
  );
  return performance.now() - t2;
}

// The runtimes rotate (and which goes first) in every phase, so the load of the shared machine
// falls on all alike; the call loops run in BLOCKS blocks per runtime, all daemons up and idle.
const load0 = loadavg();
const { names, skipped } = wantedRuntimes();
const results = names.map(newResult);
// the references' versions are asked once, before any start is timed
for (const n of names) if (n !== "ours") await peerLabel(n);
const rotate = <T>(xs: T[], i: number) => [...xs.slice(i % xs.length), ...xs.slice(0, i % xs.length)];
for (let i = 0; i < 5; i++) for (const r of rotate(results, i)) await startOnce(r);
{
  const up: Array<{ d: Started; r: Result; seqMs: number; parMs: number }> = [];
  try {
    for (const r of results) up.push({ d: await startIdle(r.name), r, seqMs: 0, parMs: 0 });
    for (const { d } of up) for (let i = 0; i < 300; i++) await d.cri.version({}); // warm-up
    for (let b = 0; b < BLOCKS; b++) for (const u of rotate(up, b)) u.seqMs += await seqBlock(u.d, Math.ceil(SEQ / BLOCKS), u.r);
    for (let b = 0; b < BLOCKS; b++) for (const u of rotate(up, b)) u.parMs += await parBlock(u.d, Math.ceil(PAR_TOTAL / BLOCKS), u.r);
    for (const u of up) {
      u.r.seqRate = u.r.seq.length / (u.seqMs / 1000);
      u.r.parRate = u.r.par.length / (u.parMs / 1000);
    }
  } finally {
    for (const { d } of up) await d.stop().catch((e) => console.error(`stopping ${d.label}: ${String(e)}`));
  }
}
const load1 = loadavg();

const ours = results.find((r) => r.name === "ours");
const peers = results.filter((r) => r.name !== "ours");
const p = (xs: number[]) => `${fmt(quantile(xs, 0.5), 2)} / ${fmt(quantile(xs, 0.99), 2)}`;
/** A row: each runtime's figure, then ours / each peer's (of `num`, or of p50 and p99 for latencies). */
const row = (what: string, cell: (r: Result) => string, num: (r: Result) => number | [number, number], bare: string, oursBare: string) => {
  const ratio = (q: Result) => {
    if (!ours) return "—";
    const a = num(ours);
    const b = num(q);
    return Array.isArray(a) && Array.isArray(b) ? `${fmt(a[0] / b[0], 2)} / ${fmt(a[1] / b[1], 2)}` : fmt((a as number) / (b as number), 2);
  };
  return `| ${what} | ${results.map(cell).join(" | ")} | ${peers.map(ratio).join(" | ")} | ${bare} | ${oursBare} |`;
};
const lat = (k: "seq" | "par") => (r: Result) => [quantile(r[k], 0.5), quantile(r[k], 0.99)] as [number, number];
const o = ours ?? newResult("ours");

const table = `## CRI unary RPCs (Version) and start-up — \`bun bench/rpc.ts\`

${machine()}. The client is grpc-js on Bun in the same machine (it competes for the 2 cores).
Runtimes: ${results.map((r) => r.label).join(", ")} (Go gRPC servers: CRI-O's own, containerd's CRI plugin), each started by bench/lib.ts's startIdle (fresh temp dirs, no pods, no network, log level info for ours, the references' defaults otherwise), measured in the same run with the same client and the same calls, rotating in blocks.${skipped.length ? ` Skipped: ${skipped.join("; ")}.` : ""}
The machine is shared with other engineers' test runs: load average ${load0} at the start, ${load1} at the end; figures are noisy.

| measure | ${results.map((r) => r.label).join(" | ")} | ${peers.map((q) => `ours / ${q.label.split(" ")[0]}`).join(" | ")} | reference (bare grpc-js server, compiled Bun, this machine) | ours/bare |
|---|${results.map(() => "--:").join("|")}|${peers.map(() => "--:").join("|")}|---|---|
${row(
  "sequential calls/s",
  (r) => fmt(r.seqRate, 0),
  (r) => r.seqRate,
  "~1,800",
  fmt(o.seqRate / 1800, 2),
)}
${row("sequential p50 / p99 (ms)", (r) => p(r.seq), lat("seq"), "— / ~4", `${fmt(quantile(o.seq, 0.99) / 4, 2)} (p99)`)}
${row(
  `${INFLIGHT} in flight calls/s`,
  (r) => fmt(r.parRate, 0),
  (r) => r.parRate,
  "~5,000",
  fmt(o.parRate / 5000, 2),
)}
${row(`${INFLIGHT} in flight p50 / p99 (ms)`, (r) => p(r.par), lat("par"), "—", "—")}
${row(
  "exec → Status answering (median of 5, ms)",
  (r) => fmt(median(r.startups), 0),
  (r) => median(r.startups),
  "~130 (listening)",
  fmt(median(o.startups) / 130, 2),
)}
${row(
  "idle RSS (median of 5, MB)",
  (r) => fmt(median(r.rss), 1),
  (r) => median(r.rss),
  "~40",
  fmt(median(o.rss) / 40, 2),
)}
${row(
  "idle anonymous memory (median of 5, MB; RSS less the executable's and libraries' shared file pages)",
  (r) => fmt(median(r.anon), 1),
  (r) => median(r.anon),
  "—",
  "—",
)}

Start-up here is measured to the first successful Status call (recovery finished; for containerd, its
CRI plugin loaded), which is later than "listening"; all include writing a config into a fresh temp dir
and are polled alike (socket file, then Status, every 5 ms).
Ratios are ours / the peer's: above 1 is better for calls/s, below 1 is better for times and memory.
CRI-O and containerd run behind a wrapper (\`setpriv\`, \`unshare\`, a shell and overlay mounts on /var/lib and,
for containerd, /run in a private mount namespace: see bench/reference/); their start-up excludes the wrapper's
time to their own exec (median ${peers.map((q) => `${q.label.split(" ")[0]} ${fmt(median(q.wrapper), 0)} ms`).join(", ") || "—"} here).
bench/startup.ts measures start-up and idle memory more closely (more runs, 60 s idle). Idle memory is read 3 s after the first answer (ours drops its start-up code and garbage 1.3 s after start).`;
writeSection("rpc", table);
console.log(table);
