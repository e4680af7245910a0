import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removeDaemonDirs, startDaemon } from "../test/harness.ts";
import { criClient, type CriClient } from "../test/support/cri-client.ts";
import { imageRef } from "../test/support/images.ts";
import type { Registry } from "../test/support/registry.ts";
import { cleanupNet, ipamReservations, testNet, vethsOn, type TestNet } from "../test/support/network.ts";
import { containerdAvailable, containerdVersion, startContainerd } from "./reference/containerd.ts";
import { crioUnavailable, crioVersion, startCrio } from "./reference/crio.ts";
import { untilStatus } from "./reference/until-status.ts";

export { untilStatus };

/** The reference runtimes. */
export type PeerName = "crio" | "containerd";

/** What a reference runtime is started with; everything else stays at its defaults (bench/README.md). */
export interface PeerOptions {
  /** "127.0.0.1:PORT" of the loopback registry, spoken to over plain HTTP. */
  registryHost: string;
  /** The pause image (CRI-O: pause_image, pulled only for pods that need an infra container; containerd: sandbox_image). */
  pauseImage: string;
  /** One CNI conflist (its text) for the runtime's own conf dir; default none (host-network pods only). */
  conflist?: string;
  /** Upstream registry hosts (registry.k8s.io, docker.io, …) whose pulls go to `registryHost`, repository path kept. */
  mirrors?: string[];
  /** containerd only: `<dir>/shared`, a mount peer of its private namespace (critest's mount propagation specs). */
  sharedDir?: boolean;
  /**
   * CRI-O only: its runc is a wrapper that sets a negative oom_score_adj in a bundle's config.json to 0
   * before `runc create`. CRI-O 1.26 gives every infra container -998 (PodInfraOOMAdj, no setting),
   * which this machine refuses (no CAP_SYS_RESOURCE), so without it a pod that needs an infra
   * container (PID namespace POD) fails; containerd clamps the same way (restrict_oom_score_adj),
   * and so does ours. Costs CRI-O one `sh` exec per runc call (~1 ms) and a `sed` per create.
   */
  clampInfraOom?: boolean;
}

/** A reference runtime up and serving. */
export interface Peer {
  name: PeerName;
  /** e.g. "CRI-O 1.26.4", "containerd 1.6.20~ds1". */
  label: string;
  socket: string;
  pid: number;
  dir: string;
  /** ms from the spawn of its wrapper (setpriv, unshare, sh, mounts) to its own exec. */
  wrapperMs: number;
  /** containerd with `sharedDir`: that dir. */
  sharedDir?: string;
  /** CRI-O's conmons, containerd's shims. */
  helpers(): number[];
  stop(): Promise<void>;
}

const versions = new Map<PeerName, string>();
/** "CRI-O 1.26.4" or "containerd 1.6.20~ds1" (asked once per process). */
export async function peerLabel(name: PeerName): Promise<string> {
  let v = versions.get(name);
  if (v === undefined) versions.set(name, (v = name === "crio" ? await crioVersion() : await containerdVersion()));
  return `${RUNTIME_LABEL[name]} ${v}`;
}

/**
 * Starts CRI-O 1.26.4 (bench/reference/crio.ts) or containerd 1.6 (bench/reference/containerd.ts):
 * the one place the benches start a reference runtime. Resolves once its Status answers.
 */
export async function startPeer(name: PeerName, o: PeerOptions): Promise<Peer> {
  const label = await peerLabel(name);
  if (name === "crio") {
    const c = await startCrio({
      registryHost: o.registryHost,
      pauseImage: o.pauseImage,
      conflist: o.conflist,
      mirrors: o.mirrors,
      clampInfraOom: o.clampInfraOom,
    });
    return { name, label, socket: c.socket, pid: c.pid, dir: c.dir, wrapperMs: c.wrapperMs, helpers: () => c.conmonPids(), stop: () => c.stop() };
  }
  let confDir: string | undefined;
  if (o.conflist) {
    confDir = mkdtempSync(join(process.env.CRIO_TEST_TMP ?? tmpdir(), "bench-ctd-net-"));
    writeFileSync(join(confDir, "10-crio-bridge.conflist"), o.conflist);
  }
  try {
    const c = await startContainerd({
      registryHost: o.registryHost,
      pauseImage: o.pauseImage,
      cniConfDir: confDir,
      mirrors: o.mirrors,
      sharedDir: o.sharedDir,
    });
    return {
      name,
      label,
      socket: c.socket,
      pid: c.pid,
      dir: c.dir,
      wrapperMs: c.wrapperMs,
      sharedDir: c.sharedDir,
      helpers: () => c.shimPids(),
      stop: () => c.stop(),
    };
  } finally {
    if (confDir) rmSync(confDir, { recursive: true, force: true });
  }
}

/** A runtime with no pods and no network of its own, for start-up, idle memory, unary calls and pulls. */
export interface IdleRuntime {
  name: RuntimeName;
  label: string;
  socket: string;
  pid: number;
  dir: string;
  /** The references' wrapper time before their own exec (0 for ours); not part of their start-up. */
  wrapperMs: number;
  cri: CriClient;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts one runtime with no network (host-network pods only) on fresh temp dirs and resolves once
 * its Status answers, polled alike for the three (every 5 ms). `registryHost` (default a closed
 * port: nothing is pulled) is the loopback registry each may pull from over plain HTTP.
 */
export async function startIdle(name: RuntimeName, o: { registryHost?: string; logLevel?: string } = {}): Promise<IdleRuntime> {
  const host = o.registryHost ?? "127.0.0.1:1";
  if (name !== "ours") {
    const p = await startPeer(name, { registryHost: host, pauseImage: `${host}/pause:latest` });
    const cri = criClient(p.socket);
    const stop = async () => {
      cri.close();
      await p.stop();
    };
    return { name, label: p.label, socket: p.socket, pid: p.pid, dir: p.dir, wrapperMs: p.wrapperMs, cri, stop, [Symbol.asyncDispose]: stop };
  }
  const dir = mkdtempSync(join(process.env.CRIO_TEST_TMP ?? tmpdir(), "crio-bench-"));
  writeFileSync(join(dir, "registries.conf"), `[[registry]]\nlocation = "${host}"\ninsecure = true\n`);
  const d = await startDaemon({ dir, logLevel: o.logLevel ?? "info", noWait: true });
  const stop = async () => {
    await d[Symbol.asyncDispose]();
    removeDaemonDirs(dir, d.runroot);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await untilStatus(d.socket, () => d.proc.exitCode !== null, "our daemon");
  } catch (e) {
    await stop();
    throw new Error(`${String(e)}: ${d.logs().slice(-2000)}`);
  }
  return { name, label: "ours", socket: d.socket, pid: d.proc.pid, dir, wrapperMs: 0, cri: d.cri, stop, [Symbol.asyncDispose]: stop };
}

/** bench/RESULTS.md: each benchmark owns one section between markers and rewrites only it. */
export const RESULTS = join(import.meta.dir, "RESULTS.md");

/** Replaces (or appends) the section `name` of RESULTS.md. */
export function writeSection(name: string, markdown: string): void {
  const begin = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  let text = existsSync(RESULTS)
    ? readFileSync(RESULTS, "utf8")
    : "# Benchmark results\n\nWritten by the scripts in bench/; medians and ratios (the machines are shared and noisy).\n";
  const block = `${begin}\n${markdown.trim()}\n${end}`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(RESULTS, text);
}

/** The q-quantile (0..1) of a list of numbers. */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

/** The median. */
export const median = (xs: number[]) => quantile(xs, 0.5);

/** A number with a fixed number of decimals. */
export const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");

/** Machine facts for the report header. */
export function machine(): string {
  const cpus = readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown cpu";
  return `${new Date().toISOString().slice(0, 10)}, ${navigator.hardwareConcurrency} cores (${cpus}), Bun ${Bun.version}`;
}

// ---------------------------------------------------------------------------------------------
// The three runtimes side by side: ours (dist/crio), CRI-O 1.26.4 (bench/reference/crio.ts, binary
// from CRIO_REFERENCE_BINARY) and containerd 1.6 (bench/reference/containerd.ts), each started on
// a bridge CNI network of its own with the same conflist shape, pulling from one loopback registry.

export type RuntimeName = "ours" | "crio" | "containerd";
export const RUNTIME_LABEL: Record<RuntimeName, string> = { ours: "ours", crio: "CRI-O", containerd: "containerd" };

/** One runtime under test, up and serving on a bridge network of its own. */
export interface BenchRuntime {
  name: RuntimeName;
  /** e.g. "CRI-O 1.26.4". */
  label: string;
  cri: CriClient;
  socket: string;
  /** The daemon's pid. */
  pid: number;
  /** Where pod log directories go. */
  dir: string;
  busybox: string;
  net: TestNet;
  /** A new client (its own connection). */
  client(): CriClient;
  /** The per-pod helper processes: our monitors (standby ones included), CRI-O's conmons, containerd's shims. */
  helpers(): number[];
  /** What is left once every pod is gone: processes, veths, IPAM leases, mounts, pinned namespaces. Empty when clean. */
  leaks(): Promise<string[]>;
  stop(): Promise<void>;
  /**
   * Ours only: the daemon stopped and started again on the same dirs (pods keep running), with `env`
   * added (BENCH_PROFILE_WINDOW) and, when given, `config` as its extra TOML from then on.
   */
  restart?(env: Record<string, string>, config?: string): Promise<void>;
}

/** Which runtimes to run: BENCH_RUNTIMES (comma list; default all three); the absent ones skipped with their reason. */
export function wantedRuntimes(): { names: RuntimeName[]; skipped: string[] } {
  const asked = (process.env.BENCH_RUNTIMES ?? "ours,crio,containerd")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean) as RuntimeName[];
  const names: RuntimeName[] = [];
  const skipped: string[] = [];
  for (const n of asked) {
    if (!(n in RUNTIME_LABEL)) throw new Error(`BENCH_RUNTIMES: unknown runtime ${n} (ours, crio, containerd)`);
    const why =
      n === "crio"
        ? crioUnavailable()
        : n === "containerd" && !containerdAvailable()
          ? "containerd reference skipped: install the Debian package containerd (apt-get install -y containerd)"
          : undefined;
    if (why) {
      console.warn(why);
      skipped.push(why);
    } else names.push(n);
  }
  return { names, skipped };
}

/** Pids whose command line satisfies `match`. */
export function pidsWhere(match: (argv: string[]) => boolean): number[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .map(Number)
    .filter((pid) => {
      try {
        return match(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0"));
      } catch {
        return false;
      }
    });
}

/** Mount points at or below `path` in this mount namespace. */
function mountsBelow(path: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m.startsWith(path + "/"));
}

/** Network leaks common to all three: veths on the bridge, host-local leases. */
async function netLeaks(net: TestNet): Promise<string[]> {
  const out: string[] = [];
  const veths = await vethsOn(net.bridge);
  if (veths.length) out.push(`${veths.length} veths on ${net.bridge}`);
  const leases = ipamReservations(net);
  if (leases.length) out.push(`${leases.length} IPAM leases`);
  return out;
}

/**
 * Starts one runtime on its own bridge network (the shipped default conflist, IPv4 only unless
 * `dualStack`, its bridge/subnet/IPAM dir unique), pulling from `reg` (busybox and the pause
 * look-alike pushed); `config` is extra TOML for ours.
 * The busybox image (and containerd's sandbox image) are pulled before it returns.
 */
export async function startRuntime(name: RuntimeName, reg: Registry, o: { config?: string; dualStack?: boolean } = {}): Promise<BenchRuntime> {
  const net = testNet({ dualStack: o.dualStack ?? false });
  const busybox = imageRef(reg, "busybox");
  const pause = imageRef(reg, "pause");
  /** A reference runtime (CRI-O or containerd) as a BenchRuntime; `word` names its helpers in leak reports. */
  const peer = (
    label: string,
    c: { socket: string; pid: number; dir: string; stop(): Promise<void> },
    cri: CriClient,
    helpers: () => number[],
    word: string,
  ): BenchRuntime => ({
    name,
    label,
    cri,
    socket: c.socket,
    pid: c.pid,
    dir: c.dir,
    busybox,
    net,
    client: () => criClient(c.socket),
    helpers,
    async leaks() {
      const out = await netLeaks(net);
      const n = helpers().length;
      if (n) out.push(`${n} ${word}`);
      return out;
    },
    async stop() {
      await removeEverything(cri);
      cri.close();
      await c.stop();
      await cleanupNet(net);
    },
  });
  try {
    if (name === "ours") {
      const dir = mkdtempSync(join(process.env.CRIO_TEST_TMP ?? tmpdir(), "crio-bench-"));
      writeFileSync(join(dir, "registries.conf"), `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
      mkdirSync(join(dir, "cni", "net.d"), { recursive: true });
      writeFileSync(join(dir, "cni", "net.d", "10-test.conflist"), net.conflist);
      // BENCH_PROFILE_DIR: the daemon writes a CPU profile there when it exits (Markdown; with
      // BENCH_PROFILE_JSON=1 Chrome's .cpuprofile, with every sample's time: what ran when)
      const prof = process.env.BENCH_PROFILE_DIR;
      const env = prof
        ? {
            BUN_OPTIONS: `${process.env.BENCH_PROFILE_JSON ? "--cpu-prof" : "--cpu-prof-md"} --cpu-prof-interval=${process.env.BENCH_PROFILE_INTERVAL ?? 500} --cpu-prof-dir=${prof}`,
          }
        : undefined;
      const base = `[crio.image]\npause_image = "${pause}"\npause_command = "/pause"\n`;
      let config = base + (o.config ?? "");
      let d = await startDaemon({ dir, logLevel: "info", env, config });
      try {
        await d.cri.pullImage({ image: { image: busybox } });
      } catch (e) {
        await d[Symbol.asyncDispose]();
        removeDaemonDirs(dir, d.runroot);
        rmSync(dir, { recursive: true, force: true });
        throw e;
      }
      // A monitor shows `… conmon … --runtime-command ["runc","--root","<root>"]` (a standby one
      // too), or, when its retitled argv has no room for that, `… conmon … --id <id>`: then its dir
      // in <runroot>/monitor tells.
      const ours = (argv: string[]) =>
        argv.includes("conmon") &&
        ((argv[argv.indexOf("--runtime-command") + 1] ?? "").includes(JSON.stringify(d.runcRoot)) ||
          (argv.includes("--id") && existsSync(join(d.runroot, "monitor", argv[argv.indexOf("--id") + 1] ?? "-"))));
      const rt: BenchRuntime = {
        name,
        label: "ours",
        cri: d.cri,
        socket: d.socket,
        pid: d.proc.pid,
        dir,
        busybox,
        net,
        client: () => criClient(d.socket),
        helpers: () => pidsWhere(ours),
        async leaks() {
          const out = await netLeaks(net);
          const monitors = pidsWhere((a) => ours(a) && !a.includes("--standby"));
          if (monitors.length) out.push(`${monitors.length} container monitors`);
          // <runroot>/ns and <runroot>/idmap themselves are private bind mounts the daemon makes (pinned
          // namespaces, idmapped layers below them): what is mounted below them is what leaks
          const own = new Set([join(d.runroot, "ns"), join(d.runroot, "idmap")]);
          const m = [...mountsBelow(d.runroot), ...mountsBelow(d.root)].filter((x) => !own.has(x));
          if (m.length) out.push(`${m.length} mounts (${m.slice(0, 3).join(", ")})`);
          for (const k of ["net", "ipc", "uts", "user"]) {
            const p = join(d.runroot, "ns", `${k}ns`); // <namespaces_dir>/<kind>ns/<id>, CRI-O's layout
            const n = existsSync(p) ? readdirSync(p).length : 0;
            if (n) out.push(`${n} pinned ${k} namespaces`);
          }
          const runc = existsSync(d.runcRoot) ? readdirSync(d.runcRoot).length : 0;
          if (runc) out.push(`${runc} runc states`);
          return out;
        },
        async stop() {
          await removeEverything(d.cri);
          await d[Symbol.asyncDispose]();
          removeDaemonDirs(dir, d.runroot);
          rmSync(dir, { recursive: true, force: true });
          await cleanupNet(net);
        },
        async restart(env2, config2) {
          if (config2 !== undefined) config = base + config2;
          d.cri.close();
          await d.stop();
          // recovery of a full node may take longer than startDaemon's 20 s on a loaded machine
          d = await startDaemon({ dir, logLevel: "info", env: { ...env, ...env2 }, config, noWait: true });
          for (const until = Date.now() + 180_000; ; await Bun.sleep(500)) {
            const ok = await d.cri.status({}, { timeoutMs: 2000 }).then(
              () => true,
              () => false,
            );
            if (ok) break;
            if (d.proc.exitCode !== null || Date.now() > until) throw new Error(`the restarted daemon did not serve: ${d.logs().slice(-2000)}`);
          }
          rt.cri = d.cri;
          rt.pid = d.proc.pid;
        },
      };
      return rt;
    }
    const c = await startPeer(name, { registryHost: reg.host, pauseImage: pause, conflist: net.conflist });
    const cri = criClient(c.socket);
    try {
      await cri.pullImage({ image: { image: busybox } });
      // containerd runs a pause container per pod: its sandbox image is pulled before any timing
      if (name === "containerd") await cri.pullImage({ image: { image: pause } });
    } catch (e) {
      cri.close();
      await c.stop();
      throw e;
    }
    return peer(c.label, c, cri, c.helpers, name === "crio" ? "conmons" : "shims");
  } catch (e) {
    await cleanupNet(net);
    throw e;
  }
}

/**
 * Removes every pod a runtime has, 10 at a time: containers stopped with no grace first (a busybox
 * `sleep` as pid 1 ignores SIGTERM, and StopPodSandbox would give each its 10 s grace in turn).
 */
async function removeEverything(cri: CriClient): Promise<void> {
  const { containers } = await cri.listContainers({}).catch(() => ({ containers: [] as Array<{ id: string }> }));
  const { items } = await cri.listPodSandbox({}).catch(() => ({ items: [] as Array<{ id: string }> }));
  const inTens = async <T>(xs: T[], f: (x: T) => Promise<unknown>) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        for (let i = next++; i < xs.length; i = next++) await f(xs[i]!).catch(() => {});
      }),
    );
  };
  await inTens(containers, (c) => cri.stopContainer({ containerId: c.id, timeout: 0n }, { timeoutMs: 60_000 }));
  await inTens(items, async (p) => {
    await cri.stopPodSandbox({ podSandboxId: p.id }, { timeoutMs: 60_000 });
    await cri.removePodSandbox({ podSandboxId: p.id }, { timeoutMs: 60_000 });
  });
}

/**
 * A cgroup parent of the bench's own (cgroupfs): pods get `<it>/pod<uid>` as cgroup_parent, as the
 * kubelet gives them one (containerd's pod stats need one). removeBenchCgroupParent() removes it.
 */
export const BENCH_CGROUP_PARENT = `/crio-bench-${process.pid}`;

/** rmdir of BENCH_CGROUP_PARENT in every hierarchy, children first (the runtimes remove their own leaves). */
export function removeBenchCgroupParent(): void {
  const roots = existsSync("/sys/fs/cgroup/cgroup.controllers") ? ["/sys/fs/cgroup"] : readdirSync("/sys/fs/cgroup").map((h) => join("/sys/fs/cgroup", h));
  const rmTree = (d: string) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rmTree(join(d, e.name));
    try {
      rmdirSync(d);
    } catch {}
  };
  for (const r of roots) rmTree(join(r, BENCH_CGROUP_PARENT));
}

/** The 1-, 5- and 15-minute load averages. */
export const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

/** utime+stime of a process (clock ticks of 10 ms); 0 when it is gone. */
export function cpuTicks(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

/** VmRSS (MB). */
export const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
/** PSS (MB); 0 when the process is gone. */
export function pssMb(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))![1]) / 1024;
  } catch {
    return 0;
  }
}
