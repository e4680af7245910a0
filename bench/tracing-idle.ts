// Idle memory of the compiled daemon with tracing off, before and after the tracing work (issue
// #16), and with tracing on: each binary is started RUNS times in turn (temp roots, no pods), left
// to settle (the daemon shrinks and collects ~1.3 s after start), then its VmRSS and anonymous
// memory (RssAnon) are read. Usage: bun bench/tracing-idle.ts BASE_BINARY [RUNS]
// (BASE_BINARY: a build of the commit before the change; ours is dist/crio).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startDaemon } from "../test/harness.ts";

const base = process.argv[2];
const RUNS = Number(process.argv[3] ?? 5);
if (!base) throw new Error("usage: bun bench/tracing-idle.ts BASE_BINARY [RUNS]");
const ours = join(import.meta.dir, "..", "dist", "crio");
const kb = (pid: number, key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

async function measure(binary: string, tracing: boolean): Promise<{ rss: number; anon: number }> {
  process.env.CRIO_BINARY = binary;
  const config = tracing ? `[crio.tracing]\nenable_tracing = true\ntracing_endpoint = "127.0.0.1:4318"\ntracing_sampling_rate_per_million = 1000000\n` : "";
  await using d = await startDaemon({ config, logLevel: "info" });
  await d.cri.version({});
  await Bun.sleep(4000); // past the settle (shrink + GC at ~1.3 s)
  return { rss: kb(d.proc.pid, "VmRSS"), anon: kb(d.proc.pid, "RssAnon") };
}

const rows: Record<string, Array<{ rss: number; anon: number }>> = { "before, tracing off": [], "after, tracing off": [], "after, tracing on": [] };
for (let i = 0; i < RUNS; i++) {
  rows["before, tracing off"]!.push(await measure(base, false));
  rows["after, tracing off"]!.push(await measure(ours, false));
  rows["after, tracing on"]!.push(await measure(ours, true));
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`| daemon, idle (median of ${RUNS}) | VmRSS (MB) | RssAnon (MB) |\n|---|---|---|`);
for (const [k, v] of Object.entries(rows)) console.log(`| ${k} | ${med(v.map((x) => x.rss)).toFixed(1)} | ${med(v.map((x) => x.anon)).toFixed(1)} |`);
if (process.env.VERBOSE) console.log(JSON.stringify(rows));
