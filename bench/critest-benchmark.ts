// critest's own benchmark suite (`critest -benchmark`, cri-tools v1.26.1) against the compiled
// daemon, CRI-O 1.26.4 and containerd 1.6 in the same session, side by side in bench/RESULTS.md
// (section "critest-benchmark"), through the steering repo's conformance harness
// (shared/conformance: registry.sh, images.sh, run-critest.sh).
//   - ours: conformance/run.sh benchmark (dist/crio, mirrors → 127.0.0.1:5000, bridge CNI, temp dirs);
//   - CRI-O and containerd: started through bench/lib.ts's startPeer with registry mirrors for the same
//     upstream names, pause image registry.k8s.io/pause:3.9 and a bridge + portmap conflist like ours
//     (10.89.0.0/16); CRI-O's runc clamps its infra container's oom_score_adj (PeerOptions.clampInfraOom);
//   - --validate: also the validation suite against containerd once (result "containerd").
// Every critest run holds /var/tmp/critest.lock (flock -o): critest binds host ports 12000–12003.
// --one-lock takes that lock once for all the runs instead (one wait behind other sessions' runs, not
// one per runtime; run-critest.sh's own wait for a quiet machine happens inside it either way).
// The section reports every runtime with results from this round in $ANCHORS/results, so a runtime
// left out by BENCH_RUNTIMES keeps its earlier result of the same round name.
// Usage (root; critest in $ANCHORS/bin, default /var/tmp/crio-conformance/bin; containerd installed):
//   bun bench/critest-benchmark.ts [--rounds N] [--validate] [--report-only]
// BENCH_RUNTIMES=ours,crio,containerd picks the runtimes. Rounds rotate the order; samples of all
// rounds are pooled.
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runRaw } from "../src/sys/exec.ts";
import { readBenchRun, runComplete, pool, sideBySide, specLines, validationSummary, type BenchRun } from "./critest-report.ts";
import { machine, peerLabel, RUNTIME_LABEL, startPeer, wantedRuntimes, writeSection, type PeerName, type RuntimeName } from "./lib.ts";

const REPO = join(import.meta.dir, "..");
const SHARED = process.env.CRIO_CONFORMANCE_SHARED ?? join(REPO, "../shared/conformance");
const ANCHORS = process.env.ANCHORS ?? "/var/tmp/crio-conformance";
const RESULTS_DIR = join(ANCHORS, "results");
const REGISTRY = "127.0.0.1:5000";
const MIRRORS = ["registry.k8s.io", "gcr.io", "public.ecr.aws", "docker.io"];
const BRIDGES: Record<PeerName, string> = { containerd: "ctd-critest0", crio: "cref-critest0" };
const LOCK = "/var/tmp/critest.lock";
/** One critest run: at most 15 min waiting for a quiet machine (run-critest.sh) plus the run itself. */
const RUN_TIMEOUT_S = 40 * 60;

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "1" },
    validate: { type: "boolean", default: false },
    "report-only": { type: "boolean", default: false },
    "one-lock": { type: "boolean", default: false },
  },
});
const ROUNDS = Number(args.rounds);
const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const say = (m: string) => console.log(`[critest-benchmark ${new Date().toISOString().slice(11, 19)}] ${m}`);
const runName = (n: RuntimeName, r: number) => `bench-${n}-r${r}`;

/** Runs argv with inherited output (bounded by `timeout`); resolves to its exit code. */
async function sh(argv: string[], env: Record<string, string> = {}): Promise<number> {
  if (lockHolder && argv[0] === "flock") argv = argv.slice(3); // flock -o LOCK …: held already
  const p = Bun.spawn(["timeout", "-k", "30", String(RUN_TIMEOUT_S), ...argv], {
    stdout: "inherit",
    stderr: "inherit",
    env: { ...process.env, PATH: `${join(ANCHORS, "bin")}:${REPO}/node_modules/.bin:${process.env.PATH}`, ...env },
  });
  return await p.exited;
}

/**
 * `flock -o LOCK sh -c 'read x'` of --one-lock: flock holds the critest lock while its child waits
 * on its stdin; closing that stdin (or this process ending) ends both and frees the lock.
 */
let lockHolder: ReturnType<typeof Bun.spawn<"pipe", "pipe", "inherit">> | undefined;

/** Takes the critest lock for this process's runs (--one-lock): resolves once it is held. */
async function holdLock(): Promise<void> {
  say(`waiting for ${LOCK}`);
  const p = Bun.spawn(["flock", "-o", LOCK, "sh", "-c", "echo held; read x"], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  const { value } = await p.stdout.getReader().read();
  if (!value || !new TextDecoder().decode(value).includes("held")) throw new Error(`flock ${LOCK} failed`);
  lockHolder = p;
  say(`holding ${LOCK}`);
}

/** Frees the lock of holdLock(). */
async function releaseLock(): Promise<void> {
  if (!lockHolder) return;
  lockHolder.stdin.end();
  await lockHolder.exited;
  lockHolder = undefined;
}

/** Another session's critest or conformance run (this machine is shared): their pids and command lines. */
function othersRunning(): string[] {
  const out: string[] = [];
  for (const p of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").filter(Boolean);
      if (argv[0]?.endsWith("/critest") || argv[0] === "critest" || argv.some((a) => a.endsWith("conformance/run.sh") || a.endsWith("run-critest.sh")))
        out.push(`${p} ${argv.join(" ").slice(0, 120)}`);
    } catch {
      // gone
    }
  }
  return out;
}

/** Waits (up to 30 min) until no other critest/conformance run is going and ports 12000–12003 are free. */
async function waitExclusive(): Promise<void> {
  const deadline = Date.now() + 30 * 60_000;
  for (let said = false; ; said = true) {
    const others = othersRunning();
    const ports = (await runRaw(["ss", "-Hltn", "( sport >= :12000 and sport <= :12003 )"])).stdout.trim();
    const bridges = (await runRaw(["ip", "-br", "link", "show", "type", "bridge"])).stdout;
    const busy = [
      ...others,
      ...(ports ? [`ports: ${ports}`] : []),
      ...(/^(crio-critest0|ctd-critest0|cref-critest0)\s/m.test(bridges) ? ["a critest bridge exists"] : []),
    ];
    if (busy.length === 0) return;
    if (Date.now() > deadline) throw new Error(`the machine stayed busy with other critest runs: ${busy.join("; ")}`);
    if (!said) say(`waiting for other critest runs to end: ${busy.join("; ")}`);
    await Bun.sleep(5000);
  }
}

/** The pod egress guard of the harness (FORWARD drop from 10.88.0.0/15) on or off. */
async function egressGuard(on: boolean): Promise<void> {
  await runRaw(["bash", "-c", `. "$1/common.sh"; egress_guard_${on ? "on" : "off"}`, "_", SHARED]);
}

/** Ours: `conformance/run.sh benchmark` under the result name `name`, holding the critest lock; resolves to its exit code. */
async function runOurs(name: string): Promise<number> {
  return sh(["flock", "-o", LOCK, "bash", join(REPO, "conformance/run.sh"), "benchmark"], { CRIO_CONFORMANCE_NAME: name, CRIO_CONFORMANCE_SHARED: SHARED });
}

/** containerd (validation or benchmark), as {@link runPeer} runs it. */
export async function runContainerd(mode: "benchmark" | "validate", name: string, extra: string[] = []): Promise<number> {
  return runPeer("containerd", mode, name, extra);
}

/**
 * CRI-O or containerd: started in temp dirs (bench/lib.ts startPeer), critest run against it through
 * run-critest.sh holding the critest lock, then everything removed. For containerd's validation
 * critest's host paths (TMPDIR) go to a mount peer of containerd's private namespace, so its mount
 * propagation specs can pass (see ContainerdOptions.sharedDir).
 */
export async function runPeer(peer: PeerName, mode: "benchmark" | "validate", name: string, extra: string[] = []): Promise<number> {
  const tmp = mkdtempSync(join(process.env.TMPDIR ?? "/var/tmp", `${peer}-critest-`));
  const conflist = {
    cniVersion: "1.0.0",
    name: `${peer}-critest`,
    plugins: [
      {
        type: "bridge",
        bridge: BRIDGES[peer],
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: { type: "host-local", dataDir: join(tmp, "ipam"), routes: [{ dst: "0.0.0.0/0" }], ranges: [[{ subnet: "10.89.0.0/16", gateway: "10.89.0.1" }]] },
      },
      { type: "portmap", capabilities: { portMappings: true }, snat: true },
    ],
  };
  await egressGuard(true);
  try {
    const c = await startPeer(peer, {
      registryHost: REGISTRY,
      mirrors: MIRRORS,
      pauseImage: "registry.k8s.io/pause:3.9",
      conflist: JSON.stringify(conflist, null, 2),
      sharedDir: peer === "containerd" && mode === "validate",
      clampInfraOom: peer === "crio",
    });
    try {
      say(`${c.label} pid ${c.pid} on ${c.socket}`);
      const argv = ["flock", "-o", LOCK, "bash", join(SHARED, "run-critest.sh"), mode, name, `unix://${c.socket}`, ...extra];
      return await sh(argv, c.sharedDir ? { TMPDIR: c.sharedDir } : {});
    } finally {
      await c.stop();
    }
  } finally {
    await runRaw(["ip", "link", "del", BRIDGES[peer]]);
    await egressGuard(false);
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * One run, retried once when it leaves no complete result (meant for causes outside the runtime,
 * e.g. a port taken meanwhile, or critest's 60 s benchmark timeouts on a loaded machine); the failed
 * attempt's folder is kept as NAME.attempt1 and its last critest step quoted in the returned note.
 */
async function attempt(label: string, name: string, mode: "benchmark" | "validate", fn: () => Promise<number>): Promise<string> {
  const dir = join(RESULTS_DIR, name);
  const done = () => (mode === "benchmark" ? runComplete(dir) : existsSync(join(dir, "specs.tsv")));
  let note = "";
  for (let i = 1; i <= 2; i++) {
    if (!lockHolder) await waitExclusive();
    say(`${label}: ${mode} run ${i} (loadavg ${loadavg()})`);
    const rc = await fn();
    say(`${label}: exit code ${rc} (loadavg ${loadavg()})`);
    if (done()) return note;
    // the other runtimes still run; this one's section cells stay empty (its spec lines say why)
    if (i === 2) return `${note}; ${label}: the retry left no complete result either (critest exit code ${rc}; ${failureLine(join(dir, "critest.log"))})`;
    const kept = `${dir}.attempt1`;
    rmSync(kept, { recursive: true, force: true });
    if (existsSync(dir)) renameSync(dir, kept);
    note = `${label}: the first attempt left no complete result (critest exit code ${rc}; ${failureLine(join(kept, "critest.log"))}; kept in ${kept}), so it ran again`;
    say(note);
  }
  return note;
}

/** The first panic or failure line of a critest log (critest -benchmark forces ginkgo's succinct output: no steps). */
function failureLine(log: string): string {
  if (!existsSync(log)) return "no critest.log";
  const bad = readFileSync(log, "utf8")
    .split("\n")
    .find((l) => /panic|Timed out|\[FAILED\]|\[PANICKED\]|configuration issues/.test(l));
  return bad ? bad.trim().slice(0, 200) : "no failure line in critest.log";
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("run as root");
  if (!existsSync(join(ANCHORS, "bin/critest"))) throw new Error(`critest not found in ${ANCHORS}/bin (cri-tools v1.26.1; never built by this repository)`);
  if (!existsSync(join(REPO, "dist/crio"))) throw new Error("dist/crio missing: bun run build");
  const { names, skipped } = wantedRuntimes();
  if (args.validate && !names.includes("containerd")) throw new Error("--validate runs against containerd: keep it in BENCH_RUNTIMES");
  const notes: string[] = [];
  const loads: string[] = [`start ${loadavg()}`];
  if (!args["report-only"]) {
    if (args["one-lock"]) await holdLock();
    if ((await sh(["bash", join(SHARED, "registry.sh"), "start"])) !== 0) throw new Error("registry.sh start failed");
    if ((await sh(["bash", "-c", `bash "$1/images.sh" > /dev/null`, "_", SHARED])) !== 0) throw new Error("images.sh failed");
    for (let r = 1; r <= ROUNDS; r++) {
      const k = (r - 1) % names.length;
      for (const n of [...names.slice(k), ...names.slice(0, k)]) {
        const name = runName(n, r);
        const label = `${RUNTIME_LABEL[n]} r${r}`;
        notes.push(await attempt(label, name, "benchmark", () => (n === "ours" ? runOurs(name) : runPeer(n, "benchmark", name))));
      }
      loads.push(`after round ${r} ${loadavg()}`);
    }
    if (args.validate) {
      notes.push(await attempt("containerd validate", "containerd", "validate", () => runPeer("containerd", "validate", "containerd")));
      loads.push(`after validation ${loadavg()}`);
    }
  }
  await releaseLock();
  const rounds = Array.from({ length: ROUNDS }, (_, i) => i + 1);
  const reported = (["ours", "crio", "containerd"] as const).filter((n) => names.includes(n) || existsSync(join(RESULTS_DIR, runName(n, 1))));
  const runs = reported.map((n) => ({ n, runs: rounds.map((r) => readBenchRun(join(RESULTS_DIR, runName(n, r)), runName(n, r))) }));
  writeSection("critest-benchmark", await section(runs, loads, [...skipped, ...notes.filter(Boolean)]));
  say(`wrote the critest-benchmark section of bench/RESULTS.md`);
}

async function section(runs: { n: RuntimeName; runs: BenchRun[] }[], loads: string[], notes: string[]): Promise<string> {
  const head = (await runRaw(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])).stdout.trim();
  const all = runs.flatMap((x) => x.runs);
  const loadLines = all.map((r) => `- \`${r.name}\`: ${r.load.join("; ") || "no load.txt"}`).join("\n");
  const labels = new Map<RuntimeName, string>([["ours", "ours"]]);
  for (const { n } of runs) if (n !== "ours") labels.set(n, await peerLabel(n));
  const v = validationSummary(join(RESULTS_DIR, "containerd"));
  const vText = Object.keys(v.counts).length
    ? `critest validation (same harness, \`run-critest.sh validate containerd\`) against ${await peerLabel("containerd")} as configured here ` +
      `(critest's TMPDIR on a mount peer of containerd's private mount namespace, so the mount propagation specs see the host's mounts): ` +
      `${Object.entries(v.counts)
        .map(([s, n]) => `${n} ${s}`)
        .join(", ")}.${v.failed.length ? `\n\n${v.failed.map((f) => `- ${f}`).join("\n")}` : ""}`
    : "critest validation against containerd: not run (`--validate`).";
  return `## critest -benchmark (cri-tools v1.26.1) beside CRI-O 1.26 and containerd 1.6 — \`bun bench/critest-benchmark.ts\`

${machine()}; dist/crio built ${statSync(join(REPO, "dist/crio")).mtime.toISOString().slice(0, 16)}Z (checkout at ${head}); ${[...labels.values()].join(", ")}; ${runs[0]?.runs.length ?? 0} round(s), the runtimes one after the other, the first one rotating by round.
critest's own benchmark specs, serial (50 pods, 50 containers, 20 image pulls, 20 image lists), through the
steering repo's harness: ours via \`conformance/run.sh benchmark\`, CRI-O and containerd via bench/lib.ts's startPeer
(bench/reference/: temp dirs, private mount namespaces, registry mirrors for ${MIRRORS.join(", ")} → ${REGISTRY}
(CRI-O: registries.conf prefixes; containerd: hosts.toml), pause image registry.k8s.io/pause:3.9, a bridge + portmap
conflist like ours on 10.89.0.0/16), each with the loopback registry of look-alike images; every critest run
holds /var/tmp/critest.lock.
Milliseconds per call; ratios = ours / the peer's (below 1: ours faster). "pod + container from scratch" is one
timed RunPodSandbox + CreateContainer + StartContainer + StopPodSandbox + RemovePodSandbox per run.

The machine is shared (2 cores; other sessions ran tests meanwhile): read the ratios, not the absolute times.
run-critest.sh waits (up to 15 min) for a nearly idle machine before each run and notes the load:
${loadLines}
- this script's load averages: ${loads.join("; ")}

${sideBySide(runs.map(({ n, runs: rs }) => ({ label: labels.get(n)!, short: n === "containerd" ? "ctd" : n === "crio" ? "CRI-O" : "ours", samples: pool(rs) })))}

Benchmark specs:
${specLines(all)}

By design: critest's pods leave the PID namespace mode at the CRI default (POD), so every runtime starts an
infra (pause) container in RunPodSandbox here (ours and CRI-O despite drop_infra_ctr = true) and stops it in
StopPodSandbox. CRI-O 1.26 gives that infra container oom_score_adj -998, which this machine refuses (no
CAP_SYS_RESOURCE): its runc is a wrapper that sets a negative oom_score_adj in the bundle to 0 before
\`runc create\` (as containerd's restrict_oom_score_adj and ours do), which adds one \`sh\` exec to each of its
runc calls (~1 ms) and a \`sed\` to each create; everything else is CRI-O's default. containerd's CreateContainer
defers \`runc create\` to StartContainer (ours and CRI-O run it in CreateContainer, under their monitor), hence
the opposite ratios of those two rows; containerd pulls through its content store and snapshotter, CRI-O
through containers/storage, ours into its own layer store.
${notes.length ? `\nNotes: ${notes.join("; ")}\n` : ""}
${vText}
`;
}

if (import.meta.main) await main();
