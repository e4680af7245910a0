// The CRI fuzzer, the long run (issue #17): `bun bench/fuzz.ts` (as root, after `bun run build`).
// BENCH_REQUESTS (default 10,000) generated requests over all 41 RPCs after as many to warm up
// (test/support/cri-fuzz.ts); writes its section of bench/RESULTS.md.
import { startEnv } from "../test/support/pods.ts";
import { fuzzCri } from "../test/support/cri-fuzz.ts";
import { loadavg } from "node:os";
import { writeSection } from "./lib.ts";

const n = Number(process.env.BENCH_REQUESTS ?? 10_000);
await using env = await startEnv({ logLevel: "info" });
const r = await fuzzCri(env, { requests: n, warmup: Number(process.env.BENCH_WARMUP ?? n), concurrency: 8, log: (l) => console.log(l) });
const ok = r.late.length === 0 && r.daemonAlive && r.rpcs === 41 && r.rss.after <= r.rss.before * 1.1 && r.fds.after <= r.fds.before + 2;
const md = [
  "## CRI fuzzer — `bun bench/fuzz.ts`",
  "",
  "Ours alone: the fuzzer checks our daemon's answers, memory and descriptors; CRI-O and containerd are not run, there is no figure to compare.",
  "",
  `${new Date().toISOString().slice(0, 10)}: ${r.measured} generated requests measured (${r.requests} with the warm-up) over ${r.rpcs} RPCs in ${r.seconds.toFixed(0)} s, 8 in flight: random messages from the descriptors, mutated valid ones against a live pod and container, oversized strings (to 70 kB) and lists, unknown enum values, concurrent duplicates of one pod name. RSS and fds are compared between two alike rounds of the measured size, each followed by the removal of what the fuzz made and 3 s idle (the first grows the heap and allocator to their working size). Load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")} at the end.`,
  "",
  `| invariant | result |`,
  `|---|---|`,
  `| every call answered with a status within its deadline | ${r.late.length === 0 ? "yes" : `no: ${r.late.length} late`} |`,
  `| daemon up at the end | ${r.daemonAlive ? "yes" : "no"} |`,
  `| RSS before → after (kB) | ${r.rss.before} → ${r.rss.after} (${(r.rss.after / r.rss.before).toFixed(2)}×, bound 1.1×) |`,
  `| after a forced full GC (SIGUSR1 dump): anonymous memory (kB) | ${r.anon.before} → ${r.anon.after} (${(r.anon.after / r.anon.before).toFixed(2)}×) |`,
  `| after a forced full GC: JS heap (kB) | ${r.heap.before} → ${r.heap.after} (${(r.heap.after / r.heap.before).toFixed(2)}×) |`,
  `| open fds before → after | ${r.fds.before} → ${r.fds.after} |`,
  "",
  `Status codes: ${Object.entries(r.codes)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(", ")}.`,
  "",
];
writeSection("fuzz", md.join("\n"));
console.log(md.join("\n"));
for (const l of r.late.slice(0, 20)) console.log("late:", l);
process.exitCode = ok ? 0 : 1;
