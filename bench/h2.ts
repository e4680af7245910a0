// Per-call CPU of the daemon's gRPC/HTTP/2 layer, two compiled binaries side by side (issue #20,
// "h2"): both daemons up at once, the same calls sent to each in alternating blocks, the process
// CPU of each (utime+stime from /proc) divided by the calls it answered. The client is grpc-js
// (its CPU is not counted), sending `:authority` as kubelet does ("localhost") or as critest v1.26
// does (the socket path). Usage (root, after building both):
//   bun bench/h2.ts <binary A> <binary B>     BENCH_CALLS=3000 per method and binary
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { waitFor } from "../test/harness.ts";
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

async function start(bin: string): Promise<Daemon> {
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
  await waitFor(async () => (await cri.status({}, { timeoutMs: 1000 }).catch(() => undefined)) !== undefined, 30_000, `${bin} to serve`);
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
      rmSync(dir, { recursive: true, force: true });
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

const ds = [await start(binA), await start(binB)];
console.log(`load ${loadavg()}`);
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
  for (const d of ds) await d.stop();
}
console.log(`load ${loadavg()}`);
console.log(["| call (authority) | A µs CPU/call | B µs CPU/call | B / A |", "|---|--:|--:|--:|", ...rows].join("\n"));
