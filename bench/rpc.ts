// Unary RPC latency and throughput of the compiled daemon (issue: foundation), plus start-up time
// to a listening socket and idle RSS; the same on containerd 1.6 (the reference column,
// bench/reference/containerd.ts). Usage: bun bench/rpc.ts  (after `bun run build`, as root).
// BENCH_REFERENCE=containerd|none (default: containerd when /usr/bin/containerd exists).
import { existsSync, readFileSync } from "node:fs";
import { startDaemon } from "../test/harness.ts";
import { criClient, type CriClient } from "../test/support/cri-client.ts";
import { fmt, machine, median, quantile, writeSection } from "./lib.ts";
import { containerdAvailable, containerdVersion, startContainerd } from "./reference/containerd.ts";

const SEQ = Number(process.env.BENCH_SEQ ?? 3000);
const PAR_TOTAL = Number(process.env.BENCH_PAR ?? 8000);
const INFLIGHT = 16;
const BLOCKS = 10;
const REFERENCE = process.env.BENCH_REFERENCE ?? (containerdAvailable() ? "containerd" : "none");
if (REFERENCE !== "containerd" && REFERENCE !== "none") throw new Error(`BENCH_REFERENCE must be containerd or none, not ${REFERENCE}`);
if (REFERENCE === "containerd" && !containerdAvailable())
  throw new Error("BENCH_REFERENCE=containerd needs the Debian package containerd (apt-get install -y containerd)");

/** A started runtime: its client, its pid, and how to stop it. */
interface Started {
  cri: CriClient;
  pid: number;
  /** Time spent before the runtime's own exec, not counted in its start-up (containerd's mount-namespace wrapper). */
  wrapperMs?: number;
  [Symbol.asyncDispose](): Promise<void>;
}

interface Result {
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
function newResult(): Result {
  return { startups: [], rss: [], anon: [], seq: [], seqRate: 0, par: [], parRate: 0 };
}

/** One start to Status answering, then the idle memory 3 s later (both settled); stops the runtime. */
async function startOnce(start: () => Promise<Started>, r: Result): Promise<void> {
  const t0 = performance.now();
  await using d = await start();
  r.startups.push(performance.now() - t0 - (d.wrapperMs ?? 0));
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

const startOurs = async (): Promise<Started> => {
  // noWait, then the same 5 ms polling as startContainerd: the harness's own wait backs off to 200 ms steps.
  const d = await startDaemon({ logLevel: "info", noWait: true });
  const started = { cri: d.cri, pid: d.proc.pid, [Symbol.asyncDispose]: () => d[Symbol.asyncDispose]() };
  try {
    const deadline = Date.now() + 20_000;
    const dead = () => d.proc.exitCode !== null || Date.now() > deadline;
    while (!existsSync(d.socket)) {
      if (dead()) throw new Error(`the daemon made no socket: ${d.logs().slice(-2000)}`);
      await Bun.sleep(5);
    }
    for (;;) {
      try {
        await d.cri.status({}, { timeoutMs: 1000 });
        return started;
      } catch (e) {
        if (dead()) throw new Error(`the daemon did not answer Status: ${String(e)}: ${d.logs().slice(-2000)}`);
        await Bun.sleep(5);
      }
    }
  } catch (e) {
    await d[Symbol.asyncDispose]();
    throw e;
  }
};
const wrapperMs: number[] = [];
const startRef = async (): Promise<Started> => {
  // No pod runs here, so the sandbox image is never pulled: the registry named is a placeholder.
  const c = await startContainerd({ registryHost: "127.0.0.1:1", pauseImage: "127.0.0.1:1/pause:latest" });
  const cri = criClient(c.socket);
  wrapperMs.push(c.wrapperMs);
  return {
    cri,
    pid: c.pid,
    wrapperMs: c.wrapperMs,
    async [Symbol.asyncDispose]() {
      cri.close();
      await c.stop();
    },
  };
};

// The runtimes alternate (and which goes first) in every phase, so the load of the shared machine
// falls on both alike; the call loops run in BLOCKS blocks per runtime, both daemons up and idle.
const load0 = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const ours = newResult();
const ref = REFERENCE === "containerd" ? newResult() : undefined;
const refVersion = ref ? await containerdVersion() : "";
const runs: Array<{ start: () => Promise<Started>; r: Result }> = [{ start: startOurs, r: ours }];
if (ref) runs.push({ start: startRef, r: ref });
const alternate = <T>(xs: T[], i: number) => (i % 2 === 0 ? xs : [...xs].reverse());
for (let i = 0; i < 5; i++) for (const { start, r } of alternate(runs, i)) await startOnce(start, r);
{
  const up: Array<{ d: Started; r: Result; seqMs: number; parMs: number }> = [];
  try {
    for (const { start, r } of runs) up.push({ d: await start(), r, seqMs: 0, parMs: 0 });
    for (const { d } of up) for (let i = 0; i < 300; i++) await d.cri.version({}); // warm-up
    for (let b = 0; b < BLOCKS; b++) for (const u of alternate(up, b)) u.seqMs += await seqBlock(u.d, Math.ceil(SEQ / BLOCKS), u.r);
    for (let b = 0; b < BLOCKS; b++) for (const u of alternate(up, b)) u.parMs += await parBlock(u.d, Math.ceil(PAR_TOTAL / BLOCKS), u.r);
    for (const u of up) {
      u.r.seqRate = u.r.seq.length / (u.seqMs / 1000);
      u.r.parRate = u.r.par.length / (u.parMs / 1000);
    }
  } finally {
    for (const { d } of up) await d[Symbol.asyncDispose]();
  }
}
const load1 = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

const NA = "not run";
const r = (a: number, b: number | undefined, d = 2) => (b === undefined ? "—" : fmt(a / b, d));
const p = (xs: number[]) => `${fmt(quantile(xs, 0.5), 2)} / ${fmt(quantile(xs, 0.99), 2)}`;

const table = `## CRI unary RPCs (Version) and start-up — \`bun bench/rpc.ts\`

${machine()}. The client is grpc-js on Bun in the same machine (it competes for the 2 cores).
Reference: containerd ${ref ? refVersion : "(not run: BENCH_REFERENCE=none or not installed)"} (Go gRPC server, CRI plugin), measured in the same run with the same client and the same calls, alternating with ours in blocks.
The machine is shared with other engineers' test runs: load average ${load0} at the start, ${load1} at the end; figures are noisy.

| measure | ours | containerd 1.6 | ours/containerd | reference (bare grpc-js server, compiled Bun, this machine) | ours/bare |
|---|---|---|---|---|---|
| sequential calls/s | ${fmt(ours.seqRate, 0)} | ${ref ? fmt(ref.seqRate, 0) : NA} | ${r(ours.seqRate, ref?.seqRate)} | ~1,800 | ${fmt(ours.seqRate / 1800, 2)} |
| sequential p50 / p99 (ms) | ${p(ours.seq)} | ${ref ? p(ref.seq) : NA} | ${ref ? `${r(quantile(ours.seq, 0.5), quantile(ref.seq, 0.5))} / ${r(quantile(ours.seq, 0.99), quantile(ref.seq, 0.99))}` : "—"} | — / ~4 | ${fmt(quantile(ours.seq, 0.99) / 4, 2)} (p99) |
| ${INFLIGHT} in flight calls/s | ${fmt(ours.parRate, 0)} | ${ref ? fmt(ref.parRate, 0) : NA} | ${r(ours.parRate, ref?.parRate)} | ~5,000 | ${fmt(ours.parRate / 5000, 2)} |
| ${INFLIGHT} in flight p50 / p99 (ms) | ${p(ours.par)} | ${ref ? p(ref.par) : NA} | ${ref ? `${r(quantile(ours.par, 0.5), quantile(ref.par, 0.5))} / ${r(quantile(ours.par, 0.99), quantile(ref.par, 0.99))}` : "—"} | — | — |
| exec → socket answering (median of 5, ms) | ${fmt(median(ours.startups), 0)} | ${ref ? fmt(median(ref.startups), 0) : NA} | ${r(median(ours.startups), ref && median(ref.startups))} | ~130 (listening) | ${fmt(median(ours.startups) / 130, 2)} |
| idle RSS (median of 5, MB) | ${fmt(median(ours.rss), 1)} | ${ref ? fmt(median(ref.rss), 1) : NA} | ${r(median(ours.rss), ref && median(ref.rss))} | ~40 | ${fmt(median(ours.rss) / 40, 2)} |
| idle anonymous memory (median of 5, MB; RSS less the executable's and libraries' shared file pages) | ${fmt(median(ours.anon), 1)} | ${ref ? fmt(median(ref.anon), 1) : NA} | ${r(median(ours.anon), ref && median(ref.anon))} | — | — |

Start-up here is measured to the first successful Status call (recovery finished; for containerd, its
CRI plugin loaded), which is later than "listening"; both include writing a config into a fresh temp dir
and are polled alike (socket file, then Status, every 5 ms).
Ratios are ours/containerd: above 1 is better for calls/s, below 1 is better for times and memory.
containerd runs behind a wrapper (\`unshare\`, a shell and an overlay mount that shadows /run in a private
mount namespace: see bench/reference/containerd.ts); its start-up excludes the wrapper's time to the exec
of containerd (median ${fmt(median(wrapperMs.slice(0, 5)), 0)} ms here). Idle memory is read 3 s after the first answer (ours drops its start-up code and garbage 1.3 s after start).`;
writeSection("rpc", table);
console.log(table);
