// Per-call CPU of the daemon's gRPC/HTTP/2 layer, two compiled binaries side by side (issue #20,
// "h2"): both daemons up at once, the same calls sent to each in alternating blocks, the process
// CPU of each (utime+stime from /proc) divided by the calls it answered. The client is grpc-js
// (its CPU is not counted), sending `:authority` as kubelet does ("localhost") or as critest v1.26
// does (the socket path). Also start-up (exec → first Status, and the process CPU by then;
// BENCH_STARTS each, alternately) and idle anonymous memory (both up, BENCH_IDLE_S after start).
// Usage (root, after building both):
//   bun bench/h2.ts <binary A> <binary B>     BENCH_CALLS=3000 per method and binary, BENCH_ROUNDS=3
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { removeDaemonDirs } from "../test/harness.ts";
import { criClient, type CriClient } from "../test/support/cri-client.ts";
import { cpuTicks, loadavg, median } from "./lib.ts";

const [binA, binB] = process.argv.slice(2).map((b) => resolve(b));
if (!binA || !binB) throw new Error("usage: bun bench/h2.ts <binary A> <binary B>");
const CALLS = Number(process.env.BENCH_CALLS ?? 3000);
const BLOCK = 250;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

interface Daemon {
  bin: string;
  pid: number;
  socket: string;
  cri: CriClient;
  criPath: CriClient;
  stop(): Promise<void>;
}

async function start(bin: string, pollMs = 50): Promise<Daemon> {
  const dir = mkdtempSync(join(process.env.CRIO_TEST_TMP ?? "/var/tmp", "crio-h2-"));
  const socket = join(dir, "crio.sock");
  const conf = join(dir, "crio.conf");
  writeFileSync(
    conf,
    [
      "[crio]",
      `root = "${dir}/root"`,
      `runroot = "${dir}/run"`,
      `log_dir = "${dir}/logs"`,
      `version_file = "${dir}/version"`,
      `clean_shutdown_file = "${dir}/clean.shutdown"`,
      "[crio.api]",
      `listen = "${socket}"`,
      "[crio.runtime]",
      `log_level = "info"`,
      `cgroup_manager = "cgroupfs"`,
      "[crio.runtime.runtimes.runc]",
      `runtime_root = "${dir}/runc"`,
      "[crio.image]",
      `signature_policy = "${dir}/policy.json"`,
      `registries_conf = "${dir}/registries.conf"`,
      "[crio.network]",
      `network_dir = "${dir}/net.d"`,
      "",
    ].join("\n"),
  );
  writeFileSync(join(dir, "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
  writeFileSync(join(dir, "registries.conf"), "");
  const proc = Bun.spawn([bin, "--config", conf, "--config-dir", join(dir, "conf.d")], { stdin: "ignore", stdout: "ignore", stderr: "ignore", cwd: dir });
  const cri = criClient(socket);
  // the socket file first (grpc-js backs off ~1 s after a failed connect), then Status
  for (const end = Date.now() + 30_000; ; await Bun.sleep(pollMs)) {
    if (Date.now() > end) throw new Error(`${bin} did not serve in 30 s`);
    if (existsSync(socket) && (await cri.status({}, { timeoutMs: 1000 }).catch(() => undefined)) !== undefined) break;
  }
  const criPath = criClient(socket, { authority: socket });
  return {
    bin,
    pid: proc.pid,
    socket,
    cri,
    criPath,
    async stop() {
      cri.close();
      criPath.close();
      proc.kill("SIGTERM");
      await proc.exited;
      removeDaemonDirs(dir, `${dir}/run`);
    },
  };
}

type Op = [string, (c: CriClient) => Promise<unknown>, "localhost" | "socket path"];
const ops: Op[] = [
  ["Version", (c) => c.version({ version: "0.1.0" }), "localhost"],
  ["Version", (c) => c.version({ version: "0.1.0" }), "socket path"],
  ["ImageStatus", (c) => c.imageStatus({ image: { image: "docker.io/library/busybox:missing" } }), "localhost"],
  ["ListImages", (c) => c.listImages({}), "localhost"],
];

// start-up: exec → first Status answered (wall) and the process CPU spent by then, alternately
const STARTS = Number(process.env.BENCH_STARTS ?? 9);
const starts: Array<{ ms: number[]; cpu: number[] }> = [
  { ms: [], cpu: [] },
  { ms: [], cpu: [] },
];
for (let r = 0; r < STARTS; r++) {
  for (const [i, bin] of [binA, binB].entries()) {
    const t0 = performance.now();
    const d = await start(bin, 2);
    starts[i]!.ms.push(performance.now() - t0);
    starts[i]!.cpu.push(cpuTicks(d.pid) * 10);
    await d.stop();
  }
}

const ds = [await start(binA), await start(binB)];
console.log(`load ${loadavg()}`);
// idle memory: both up, no calls yet but the first Status
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 30);
await Bun.sleep(IDLE_S * 1000);
const anon = ds.map((d) => Number(/^Anonymous:\s+(\d+)/m.exec(readFileSync(`/proc/${d.pid}/smaps_rollup`, "utf8"))![1]) / 1024);
const rows: string[] = [];
try {
  for (const [name, call, auth] of ops) {
    const perRound: number[][] = [[], []];
    for (let r = 0; r < ROUNDS; r++) {
      const ticks = [0, 0];
      for (let done = 0; done < CALLS; done += BLOCK) {
        for (const [i, d] of ds.entries()) {
          const c = auth === "localhost" ? d.cri : d.criPath;
          const t0 = cpuTicks(d.pid);
          for (let k = 0; k < BLOCK; k++) await call(c);
          ticks[i]! += cpuTicks(d.pid) - t0;
        }
      }
      for (const i of [0, 1]) perRound[i]!.push((ticks[i]! * 10_000) / CALLS); // µs per call
    }
    const [a, b] = perRound.map((xs) => median(xs));
    rows.push(`| ${name} (${auth}) | ${a!.toFixed(0)} | ${b!.toFixed(0)} | ${(b! / a!).toFixed(2)} |`);
    console.log(rows.at(-1), perRound.map((xs) => xs.map((x) => x.toFixed(0)).join("/")).join("  "));
  }
} finally {
  for (const d of ds) await d.stop().catch((e) => console.error(`stopping ${d.bin}: ${e}`));
}
console.log(`load ${loadavg()}`);
const m = (xs: number[]) => median(xs).toFixed(0);
rows.push(`| idle anonymous memory ${IDLE_S} s after start (MB) | ${anon[0]!.toFixed(1)} | ${anon[1]!.toFixed(1)} | ${(anon[1]! / anon[0]!).toFixed(2)} |`);
rows.push(
  `| exec → first Status answered (ms, median of ${STARTS}) | ${m(starts[0]!.ms)} | ${m(starts[1]!.ms)} | ${(median(starts[1]!.ms) / median(starts[0]!.ms)).toFixed(2)} |`,
);
rows.push(
  `| process CPU by then (ms, median) | ${m(starts[0]!.cpu)} | ${m(starts[1]!.cpu)} | ${(median(starts[1]!.cpu) / median(starts[0]!.cpu)).toFixed(2)} |`,
);
console.log(["| measure | A | B | B / A |", "|---|--:|--:|--:|", ...rows].join("\n"));
