// Unary RPC latency and throughput of the compiled daemon (issue: foundation), plus start-up time
// to a listening socket and idle RSS. Usage: bun bench/rpc.ts  (after `bun run build`, as root).
import { readFileSync } from "node:fs";
import { startDaemon } from "../test/harness.ts";
import { fmt, machine, median, quantile, writeSection } from "./lib.ts";

const SEQ = Number(process.env.BENCH_SEQ ?? 3000);
const PAR_TOTAL = Number(process.env.BENCH_PAR ?? 8000);
const INFLIGHT = 16;

const startups: number[] = [];
const rss: number[] = [];
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  await using d = await startDaemon({ logLevel: "info" });
  startups.push(performance.now() - t0);
  await Bun.sleep(500);
  rss.push(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${d.proc.pid}/status`, "utf8"))![1]) / 1024);
}

await using d = await startDaemon({ logLevel: "info" });
for (let i = 0; i < 300; i++) await d.cri.version({}); // warm-up

const seq: number[] = [];
const t1 = performance.now();
for (let i = 0; i < SEQ; i++) {
  const t = performance.now();
  await d.cri.version({});
  seq.push(performance.now() - t);
}
const seqRate = SEQ / ((performance.now() - t1) / 1000);

const par: number[] = [];
let next = 0;
const t2 = performance.now();
await Promise.all(
  Array.from({ length: INFLIGHT }, async () => {
    while (next++ < PAR_TOTAL) {
      const t = performance.now();
      await d.cri.version({});
      par.push(performance.now() - t);
    }
  }),
);
const parRate = PAR_TOTAL / ((performance.now() - t2) / 1000);

const table = `## CRI unary RPCs (Version) and start-up — \`bun bench/rpc.ts\`

${machine()}. The client is grpc-js on Bun in the same machine (it competes for the 2 cores).

| measure | ours | reference (bare grpc-js server, compiled Bun, this machine) | ratio |
|---|---|---|---|
| sequential calls/s | ${fmt(seqRate, 0)} | ~1,800 | ${fmt(seqRate / 1800, 2)} |
| sequential p50 / p99 (ms) | ${fmt(quantile(seq, 0.5), 2)} / ${fmt(quantile(seq, 0.99), 2)} | — / ~4 | ${fmt(quantile(seq, 0.99) / 4, 2)} (p99) |
| 16 in flight calls/s | ${fmt(parRate, 0)} | ~5,000 | ${fmt(parRate / 5000, 2)} |
| 16 in flight p50 / p99 (ms) | ${fmt(quantile(par, 0.5), 2)} / ${fmt(quantile(par, 0.99), 2)} | — | — |
| exec → socket answering (median of 5, ms) | ${fmt(median(startups), 0)} | ~130 (listening) | ${fmt(median(startups) / 130, 2)} |
| idle RSS (median of 5, MB) | ${fmt(median(rss), 1)} | ~40 | ${fmt(median(rss) / 40, 2)} |

Start-up here is measured to the first successful Status call (recovery finished), which is later than "listening".`;
writeSection("rpc", table);
console.log(table);
