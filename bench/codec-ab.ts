// A/B of two builds of ours (issue #20, branch "codec"): exec → first served Status and the idle
// daemon's memory, bench/startup.ts run alternately on each binary (BENCH_RUNTIMES=ours,
// CRIO_BINARY), so the shared machine's load falls on both alike; medians. Usage (root):
//   bun bench/codec-ab.ts <binary A> <binary B> [--rounds 7] [--idle-s 20]
import { parseArgs } from "node:util";
import { median } from "./lib.ts";

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: "string", default: "7" }, "idle-s": { type: "string", default: "20" } },
});
const [A, B] = positionals;
if (!A || !B) throw new Error("usage: bun bench/codec-ab.ts <binary A> <binary B>");
const ROUNDS = Number(args.rounds);

type Row = { startup: number[]; anonEarly: number[]; anonLate: number[]; rssLate: number[] };
const res: Record<string, Row> = {
  [A]: { startup: [], anonEarly: [], anonLate: [], rssLate: [] },
  [B]: { startup: [], anonEarly: [], anonLate: [], rssLate: [] },
};
const cell = (md: string, label: RegExp) => {
  const line = md.split("\n").find((l) => label.test(l));
  if (!line) throw new Error(`no row ${label} in:\n${md}`);
  return Number(line.split("|")[2]!.trim());
};
for (let r = 0; r < ROUNDS; r++) {
  for (const bin of r % 2 === 0 ? [A, B] : [B, A]) {
    const p = Bun.spawnSync(["bun", "bench/startup.ts", "--runs", "3", "--idle-runs", "1", "--idle-s", args["idle-s"]!, "--no-write"], {
      env: { ...process.env, BENCH_RUNTIMES: "ours", CRIO_BINARY: bin },
      stderr: "inherit",
    });
    const md = p.stdout.toString();
    if (p.exitCode !== 0) throw new Error(`startup.ts failed on ${bin}:\n${md}`);
    const row = res[bin]!;
    row.startup.push(cell(md, /^\| exec → first Status served/));
    row.anonEarly.push(cell(md, /^\| idle 3 s after start: anonymous/));
    row.anonLate.push(cell(md, new RegExp(`^\\| idle ${args["idle-s"]} s after start: anonymous`)));
    row.rssLate.push(cell(md, new RegExp(`^\\| idle ${args["idle-s"]} s after start: RSS`)));
    console.error(`round ${r} ${bin}: ${JSON.stringify(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v.at(-1)])))}`);
  }
}
const m = (xs: number[]) => median(xs);
const lines = [
  `| measure (median of ${ROUNDS} rounds; each round's start-up a median of 3) | A | B | B / A |`,
  "|---|--:|--:|--:|",
  ...(
    [
      ["exec → first Status served (ms)", "startup"],
      ["idle 3 s after start: anonymous (MB)", "anonEarly"],
      [`idle ${args["idle-s"]} s after start: anonymous (MB)`, "anonLate"],
      [`idle ${args["idle-s"]} s after start: RSS (MB)`, "rssLate"],
    ] as const
  ).map(([label, k]) => `| ${label} | ${m(res[A]![k]).toFixed(1)} | ${m(res[B]![k]).toFixed(1)} | ${(m(res[B]![k]) / m(res[A]![k])).toFixed(2)} |`),
  "",
  `A: ${A}; B: ${B}. Runs: ${JSON.stringify(res)}`,
];
console.log(lines.join("\n"));
