// Monitor memory on a probed node (issue #20, "no monitor above 3 MB PSS"): PODS pods, one busybox
// `sleep` container each, PROBED of them probed by ExecSync `true` every 10 s each (spread over the
// period, as bench/node.ts does), for DURATION seconds. Every SAMPLE ms it reads smaps_rollup of
// every monitor of ours and files the sample under the monitor's kind and moment: a probed
// container's monitor in an exec, within 1 s after one, later; an unprobed one; a standby waiting
// (create, exec, exec-sync); a monitor in its first seconds. Also: ExecSync latency, the probed
// monitors' own CPU per exec (schedstat of all their threads; runc's CPU is not in it) and the
// daemon's CPU. Ours only (CRIO_BINARY picks the binary: A/B by running it twice).
// Usage (root, after `bun run build`): bun bench/monitor-memory.ts [--pods 40] [--probed 20] [--duration 60] [--sample-ms 250]
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { busyboxImage, pauseImage, pushImage } from "../test/support/images.ts";
import { ctrConfig, podConfig } from "../test/support/pods.ts";
import { startRegistry } from "../test/support/registry.ts";
import { BENCH_CGROUP_PARENT, removeBenchCgroupParent, cpuTicks, fmt, loadavg, median, pidsWhere, quantile, startRuntime } from "./lib.ts";

const { values: args } = parseArgs({
  options: {
    pods: { type: "string", default: "40" },
    probed: { type: "string", default: "20" },
    duration: { type: "string", default: "60" },
    "sample-ms": { type: "string", default: "500" },
    json: { type: "string" },
  },
});
const PODS = Number(args.pods);
const PROBED = Number(args.probed);
const DURATION_S = Number(args.duration);
const SAMPLE_MS = Number(args["sample-ms"]);
for (const [k, v] of [
  ["pods", PODS],
  ["probed", PROBED],
  ["duration", DURATION_S],
  ["sample-ms", SAMPLE_MS],
] as const)
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer, not ${String(args[k as keyof typeof args])}`);
if (PROBED > PODS) throw new Error(`--probed (${PROBED}) must not exceed --pods (${PODS})`);

interface Sample {
  pid: number;
  kind: string;
  pss: number;
  anon: number;
  file: number;
  rss: number;
  age: number;
}

/** smaps_rollup of `pid` in MB: Pss, Pss_Anon, Pss_File, Rss; undefined when gone. */
function rollup(pid: number): { pss: number; anon: number; file: number; rss: number } | undefined {
  try {
    const t = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const f = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(t)?.[1] ?? 0) / 1024;
    return { pss: f("Pss"), anon: f("Pss_Anon"), file: f("Pss_File"), rss: f("Rss") };
  } catch {
    return undefined;
  }
}

/** Seconds since `pid` started. */
function ageS(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const start = Number(s.slice(s.lastIndexOf(")") + 2).split(" ")[19]) / 100;
    return Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]) - start;
  } catch {
    return 0;
  }
}

/** CPU ns of every thread of `pid` (schedstat). */
function cpuNs(pid: number): number {
  try {
    let n = 0;
    for (const t of readdirSync(`/proc/${pid}/task`)) n += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]);
    return n;
  } catch {
    return 0;
  }
}

function argvOf(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return undefined;
  }
}

const reg = await startRegistry();
const samples: Sample[] = [];
const probes: number[] = [];
let probeFailures = 0;
let execs = 0;
let result = "";
try {
  await pushImage(reg, await busyboxImage());
  await pushImage(reg, await pauseImage());
  const rt = await startRuntime("ours", reg);
  try {
    const clients = Array.from({ length: 10 }, () => rt.client());
    const prober = rt.client();
    const ids: string[] = [];
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      clients.map(async (cri) => {
        for (let i = next++; i < PODS; i = next++) {
          const p = podConfig(`mm-${i}`, rt.dir, { hostNetwork: false });
          p.linux = { ...p.linux, cgroupParent: `${BENCH_CGROUP_PARENT}/pod${p.metadata!.uid}` };
          mkdirSync(p.logDirectory!, { recursive: true });
          const { podSandboxId } = await cri.runPodSandbox({ config: p });
          const { containerId } = await cri.createContainer({ podSandboxId, config: ctrConfig("c", rt.busybox, ["sleep", "36000"], {}, p), sandboxConfig: p });
          await cri.startContainer({ containerId });
          ids[i] = containerId;
        }
      }),
    );
    console.log(`${PODS} pods up in ${fmt((performance.now() - t0) / 1000, 1)} s (load ${loadavg()})`);
    await Bun.sleep(5000);
    const probed = new Set(ids.slice(0, PROBED));
    const inExec = new Map<string, number>(); // id → execs in flight
    const lastExecEnd = new Map<string, number>();

    const kindOf = (argv: string[]): { kind: string; id?: string } => {
      const mode = argv[argv.indexOf("--mode") + 1] ?? "?";
      if (argv.includes("--standby")) return { kind: `standby ${mode}` };
      const i = argv.indexOf("--id");
      const id = i >= 0 ? argv[i + 1] : undefined;
      if (mode === "create" || !argv.includes("--mode")) {
        if (!id || !probed.has(id)) return { kind: "container, unprobed", id };
        if ((inExec.get(id) ?? 0) > 0) return { kind: "container, probed: in an exec", id };
        const since = performance.now() - (lastExecEnd.get(id) ?? -1e9);
        return { kind: since < 1000 ? "container, probed: < 1 s after an exec" : "container, probed: later", id };
      }
      return { kind: `${mode} monitor`, id };
    };

    // rt.helpers() finds container monitors; a standby's argv names the runtime root (under rt.dir) instead
    const monitorPids = () => [
      ...new Set([...rt.helpers(), ...pidsWhere((a) => a.includes("conmon") && a.includes("--standby") && a.some((x) => x.includes(rt.dir)))]),
    ];
    const probedPids = () => monitorPids().filter((p) => probed.has(kindOf(argvOf(p) ?? []).id ?? ""));
    const pp0 = probedPids();
    const cpu0 = new Map(pp0.map((p) => [p, cpuNs(p)]));
    const d0 = cpuTicks(rt.pid);
    const w0 = performance.now();
    const until = w0 + DURATION_S * 1000;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        for (const pid of monitorPids()) {
          const argv = argvOf(pid);
          if (!argv) continue;
          const { kind } = kindOf(argv);
          const r = rollup(pid);
          if (!r) continue;
          const age = ageS(pid);
          // a container monitor started cold shows the argv it was started with (--bundle …); a warm one was retitled
          const origin = kind.startsWith("container") ? (argv.includes("--bundle") ? " (cold)" : " (warm)") : "";
          samples.push({ pid, kind: age < 3 && !kind.startsWith("standby") ? "any, first 3 s of its life" : kind + origin, ...r, age });
        }
        await Bun.sleep(SAMPLE_MS);
      }
    })();
    await Promise.all(
      [...probed].map(async (id, i) => {
        await Bun.sleep((i * 10_000) / PROBED);
        while (performance.now() < until) {
          const t = performance.now();
          inExec.set(id, (inExec.get(id) ?? 0) + 1);
          try {
            const res = await prober.execSync({ containerId: id, cmd: ["true"], timeout: 5n });
            if (res.exitCode !== 0) probeFailures++;
          } catch {
            probeFailures++;
          }
          inExec.set(id, inExec.get(id)! - 1);
          lastExecEnd.set(id, performance.now());
          execs++;
          probes.push(performance.now() - t);
          const wait = 10_000 - (performance.now() - t);
          if (wait > 0) await Bun.sleep(Math.min(wait, Math.max(0, until - performance.now())));
        }
      }),
    );
    sampling = false;
    await sampler;
    const wall = (performance.now() - w0) / 1000;
    const monCpuMs = pp0.reduce((a, p) => a + cpuNs(p) - cpu0.get(p)!, 0) / 1e6;
    const daemonCpu = ((cpuTicks(rt.pid) - d0) / 100 / wall) * 100;
    const kinds = [...new Set(samples.map((s) => s.kind))].sort();
    const rows = kinds.map((k) => {
      const s = samples.filter((x) => x.kind === k);
      const col = (f: (x: Sample) => number) => `${fmt(median(s.map(f)), 2)} / ${fmt(Math.max(...s.map(f)), 2)}`;
      return `| ${k} | ${s.length} | ${col((x) => x.pss)} | ${col((x) => x.anon)} | ${col((x) => x.file)} | ${s.filter((x) => x.pss > 3).length} |`;
    });
    const all = samples.filter((x) => !x.kind.startsWith("any"));
    result = `${PODS} pods, ${PROBED} probed every 10 s, ${DURATION_S} s, samples every ${SAMPLE_MS} ms; load at the end ${loadavg()}

| monitor, moment | samples | PSS median / max (MB) | anon median / max | file median / max | samples > 3 MB |
|---|--:|--:|--:|--:|--:|
${rows.join("\n")}

settled monitors (all but the first 3 s): PSS median ${fmt(median(all.map((x) => x.pss)), 2)}, p99 ${fmt(
      quantile(
        all.map((x) => x.pss),
        0.99,
      ),
      2,
    )}, max ${fmt(Math.max(...all.map((x) => x.pss)), 2)} MB
ExecSync: ${probes.length} (${probeFailures} failed), p50 ${fmt(quantile(probes, 0.5), 1)} ms, p99 ${fmt(quantile(probes, 0.99), 1)} ms
probed monitors' own CPU per exec: ${fmt(monCpuMs / Math.max(1, execs), 2)} ms (${execs} execs); daemon CPU ${fmt(daemonCpu, 2)} % of a core`;
    console.log(result);
    for (const c of [...clients, prober]) c.close();
  } finally {
    await rt.stop();
    removeBenchCgroupParent();
  }
} finally {
  await reg.stop();
}
if (args.json) await Bun.write(args.json, JSON.stringify({ samples, probes, result }));
