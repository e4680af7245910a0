/**
 * The second reference runtime for the benchmarks: CRI-O 1.26.4, built by hand outside the repo
 * (no script here builds it; see bench/README.md) and found through `CRIO_REFERENCE_BINARY`
 * (default /var/tmp/ref/crio) with its `pinns` beside it (`CRIO_REFERENCE_PINNS`). It runs as root
 * with Debian's conmon and runc, cgroupfs, overlay storage, every path (root, runroot, socket,
 * runc root, exits, attach sockets, pinned namespaces, CNI config, hooks, policy, registries,
 * storage.conf) in one temp dir, and only the loopback registry (plain HTTP) to pull from.
 *
 * libcni keeps its result cache in /var/lib/cni whatever CRI-O is told, so CRI-O runs in a private
 * mount namespace (`unshare --mount`) where /var/lib is an overlay: the host's /var/lib below, read
 * as it is, every write going to an upper dir in the temp dir. /run is left alone (iptables' lock
 * file lives there and must stay the host's). Pods' mounts (pinned namespaces, shm, rootfs
 * overlays) live in that namespace and vanish with it.
 */
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { runRaw } from "../../src/sys/exec.ts";
import { untilStatus } from "./until-status.ts";
import { bridgeConflist } from "./containerd-config.ts";

/** The CRI-O binary (built from the v1.26.4 tag; see bench/README.md). */
export const CRIO_REF_BIN = process.env.CRIO_REFERENCE_BINARY ?? "/var/tmp/ref/crio";
/** Its pinns helper (`make -C pinns` of the same checkout). */
export const CRIO_REF_PINNS = process.env.CRIO_REFERENCE_PINNS ?? join(dirname(CRIO_REF_BIN), "pinns");
/** Debian's conmon (apt-get install conmon). */
export const CONMON_BIN = process.env.CONMON_BINARY ?? "/usr/bin/conmon";

/** Why the CRI-O reference cannot run here, or undefined when it can. */
export function crioUnavailable(): string | undefined {
  if (!existsSync(CRIO_REF_BIN))
    return `CRI-O reference skipped: no binary at ${CRIO_REF_BIN} (build CRI-O v1.26.4 as bench/README.md says, or set CRIO_REFERENCE_BINARY)`;
  if (!existsSync(CRIO_REF_PINNS))
    return `CRI-O reference skipped: no pinns at ${CRIO_REF_PINNS} (make -C pinns in the CRI-O checkout, or set CRIO_REFERENCE_PINNS)`;
  if (!existsSync(CONMON_BIN)) return `CRI-O reference skipped: no conmon at ${CONMON_BIN} (apt-get install conmon, or set CONMON_BINARY)`;
  return undefined;
}

/** CRI-O's version, e.g. "1.26.4". */
export async function crioVersion(): Promise<string> {
  const r = await runRaw([CRIO_REF_BIN, "--version"]);
  return /^Version:\s+(\S+)/m.exec(r.stdout)?.[1] ?? "unknown";
}

export interface CrioOptions {
  /** "127.0.0.1:PORT" of the loopback registry (an insecure registry for CRI-O). */
  registryHost: string;
  /** pause_image (pulled only for pods that need an infra container). */
  pauseImage: string;
  /** A conflist text for CRI-O's network_dir; default: none (host-network pods only) unless `bridge`. */
  conflist?: string;
  /** Write a bridge conflist with a bridge name and a private /24 of its own (the bridge is deleted on stop). */
  bridge?: boolean;
  /** CRI-O's log level; default "warn". */
  logLevel?: string;
  /** Extra TOML appended to crio.conf. */
  extraConfig?: string;
  /** Upstream registry hosts (e.g. "registry.k8s.io", "docker.io") whose pulls go to `registryHost` over plain HTTP, repository path kept. */
  mirrors?: string[];
  /**
   * runtime_path is a wrapper of runc that sets a negative process.oomScoreAdj in the bundle's
   * config.json to 0 before `runc create`: CRI-O 1.26 gives every infra container -998, which a
   * machine without CAP_SYS_RESOURCE refuses (containerd's restrict_oom_score_adj does the same).
   */
  clampInfraOom?: boolean;
}

export interface Crio {
  socket: string;
  pid: number;
  dir: string;
  logFile: string;
  bridgeName?: string;
  /** ms from the spawn of the wrapper to the exec of crio (not CRI-O's own start-up). */
  wrapperMs: number;
  /** Pids of the conmon processes of this CRI-O (found by their --exit-dir). */
  conmonPids(): number[];
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const live = new Set<Crio>();
process.on("exit", () => {
  for (const c of live) {
    try {
      process.kill(c.pid, "SIGKILL");
    } catch {}
    for (const p of c.conmonPids()) {
      try {
        process.kill(p, "SIGKILL");
      } catch {}
    }
  }
});

const EXEC_NS_FILE = "exec-ns";
const RUNC_BIN = "/usr/sbin/runc";

/** The runc wrapper of `clampInfraOom`: only a call with --bundle (create, run) edits the bundle's config.json. */
const OOM_CLAMP_WRAPPER = `#!/bin/sh
prev=
for a in "$@"; do
  if [ "$prev" = --bundle ] || [ "$prev" = -b ]; then
    sed -i 's/"oomScoreAdj": *-[0-9][0-9]*/"oomScoreAdj": 0/' "$a/config.json" || exit 1
  fi
  prev=$a
done
exec ${RUNC_BIN} "$@"
`;

/** crio.conf with every path below `dir`. */
function crioConfig(dir: string, o: CrioOptions): string {
  const s = (x: string) => JSON.stringify(x);
  return `[crio]
root = ${s(join(dir, "root"))}
runroot = ${s(join(dir, "run"))}
storage_driver = "overlay"
log_dir = ${s(join(dir, "pods"))}
version_file = ${s(join(dir, "run", "version"))}
version_file_persist = ${s(join(dir, "root", "version"))}
clean_shutdown_file = ${s(join(dir, "root", "clean.shutdown"))}

[crio.api]
listen = ${s(join(dir, "crio.sock"))}
stream_address = "127.0.0.1"
stream_port = "0"

[crio.runtime]
default_runtime = "runc"
conmon = ${s(CONMON_BIN)}
conmon_cgroup = "pod"
cgroup_manager = "cgroupfs"
log_level = ${s(o.logLevel ?? "warn")}
hooks_dir = [${s(join(dir, "hooks.d"))}]
default_mounts_file = ${s(join(dir, "mounts.conf"))}
container_exits_dir = ${s(join(dir, "run", "exits"))}
container_attach_socket_dir = ${s(join(dir, "run", "attach"))}
namespaces_dir = ${s(join(dir, "run", "ns"))}
pinns_path = ${s(CRIO_REF_PINNS)}
decryption_keys_path = ${s(join(dir, "keys"))}
cdi_spec_dirs = [${s(join(dir, "cdi"))}]
# absent on purpose: with a file there, CRI-O 1.26 saves the banned CPU mask to /etc/sysconfig/orig_irq_banned_cpus
irqbalance_config_file = ${s(join(dir, "irqbalance-absent"))}

[crio.runtime.runtimes.runc]
runtime_path = ${s(o.clampInfraOom ? join(dir, "runc-oom-clamp") : RUNC_BIN)}
runtime_type = "oci"
runtime_root = ${s(join(dir, "runc"))}

[crio.image]
pause_image = ${s(o.pauseImage)}
pause_command = "/pause"
signature_policy = ${s(join(dir, "policy.json"))}
insecure_registries = [${s(o.registryHost)}]
big_files_temporary_dir = ${s(join(dir, "tmp"))}

[crio.network]
network_dir = ${s(join(dir, "net.d"))}
plugin_dirs = ["/usr/lib/cni"]

[crio.metrics]
enable_metrics = false
${o.extraConfig ?? ""}`;
}

/** Starts CRI-O on a temp socket; resolves once its CRI Status call answers (within 30 s). */
export async function startCrio(o: CrioOptions): Promise<Crio> {
  const why = crioUnavailable();
  if (why) throw new Error(why);
  const dir = mkdtempSync(join(process.env.CRIO_TEST_TMP ?? tmpdir(), "crio-ref-"));
  for (const d of ["root", "run", "pods", "hooks.d", "keys", "cdi", "net.d", "tmp", "crio.conf.d", "runc", "varlib-upper", "varlib-work"])
    mkdirSync(join(dir, d), { recursive: true });
  const socket = join(dir, "crio.sock");
  const logFile = join(dir, "crio.log");
  writeFileSync(join(dir, "mounts.conf"), "");
  writeFileSync(join(dir, "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
  writeFileSync(
    join(dir, "registries.conf"),
    `unqualified-search-registries = []\n\n[[registry]]\nlocation = ${JSON.stringify(o.registryHost)}\ninsecure = true\n${(o.mirrors ?? [])
      .map((m) => `\n[[registry]]\nprefix = ${JSON.stringify(m)}\nlocation = ${JSON.stringify(o.registryHost)}\ninsecure = true\n`)
      .join("")}`,
  );
  if (o.clampInfraOom) writeFileSync(join(dir, "runc-oom-clamp"), OOM_CLAMP_WRAPPER, { mode: 0o755 });
  writeFileSync(
    join(dir, "storage.conf"),
    `[storage]\ndriver = "overlay"\nrunroot = ${JSON.stringify(join(dir, "run"))}\ngraphroot = ${JSON.stringify(join(dir, "root"))}\n`,
  );
  const br = o.bridge ? bridgeConflist(join(dir, "ipam")) : undefined;
  if (br) writeFileSync(join(dir, "net.d", "10-bench-bridge.conflist"), br.text);
  else if (o.conflist) writeFileSync(join(dir, "net.d", "10-bench.conflist"), o.conflist);
  const configFile = join(dir, "crio.conf");
  writeFileSync(configFile, crioConfig(dir, o));
  const q = (x: string) => `'${x.replace(/'/g, "'\\''")}'`;
  const script = join(dir, "start.sh");
  writeFileSync(
    script,
    `set -e
mount -n -t overlay overlay -o lowerdir=/var/lib,upperdir=${q(join(dir, "varlib-upper"))},workdir=${q(join(dir, "varlib-work"))} /var/lib
date +%s%N > ${q(join(dir, EXEC_NS_FILE))}
exec ${q(CRIO_REF_BIN)} --config ${q(configFile)} --config-dir ${q(join(dir, "crio.conf.d"))} --registries-conf ${q(join(dir, "registries.conf"))} --registries-conf-dir ${q(join(dir, "registries.conf.d"))}
`,
    { mode: 0o700 },
  );
  mkdirSync(join(dir, "registries.conf.d"));

  const newCgroups = absentCgroupParents();
  const fd = openSync(logFile, "a");
  const spawnedAt = performance.timeOrigin + performance.now();
  let proc: ReturnType<typeof Bun.spawn>;
  try {
    const pre = existsSync("/usr/bin/setpriv") ? ["/usr/bin/setpriv", "--pdeathsig", "TERM"] : [];
    proc = Bun.spawn([...pre, "unshare", "--mount", "--propagation", "private", "/bin/sh", script], {
      stdin: "ignore",
      stdout: fd,
      stderr: fd,
      cwd: dir,
      env: {
        PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        TMPDIR: join(dir, "tmp"),
        CONTAINERS_STORAGE_CONF: join(dir, "storage.conf"),
        CONTAINERS_REGISTRIES_CONF: join(dir, "registries.conf"),
      },
    });
  } finally {
    closeSync(fd);
  }
  const exitDir = join(dir, "run", "exits");
  const conmonPids = () => findConmons(exitDir);
  let stopped: Promise<void> | undefined;
  const c: Crio = {
    socket,
    pid: proc.pid,
    dir,
    logFile,
    bridgeName: br?.bridge,
    wrapperMs: NaN,
    conmonPids,
    stop: () => (stopped ??= stopAll(c, proc, newCgroups)),
    [Symbol.asyncDispose]: () => c.stop(),
  };
  live.add(c);
  try {
    const tail = () => readFileSync(logFile, "utf8").trim().split("\n").slice(-10).join("\n");
    await untilStatus(socket, () => proc.exitCode !== null || proc.signalCode !== null, "crio", { timeoutMs: 30000, detail: tail });
    c.wrapperMs = Number(readFileSync(join(dir, EXEC_NS_FILE), "utf8").trim()) / 1e6 - spawnedAt;
  } catch (e) {
    await c.stop();
    throw e;
  }
  return c;
}

/** conmon pids whose command line names `exitDir` as their --exit-dir. */
function findConmons(exitDir: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
      if (!argv[0]?.endsWith("conmon")) continue;
      const i = argv.indexOf("--exit-dir");
      if (i >= 0 && argv[i + 1] === exitDir) out.push(Number(p));
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * On cgroupfs CRI-O puts pods without a cgroup_parent below /crio in every hierarchy; runc removes
 * the leaves, not that parent. The parents absent now are the ones this CRI-O will make, and stop()
 * removes them again when they are empty.
 */
function absentCgroupParents(): string[] {
  const roots = existsSync("/sys/fs/cgroup/cgroup.controllers") ? ["/sys/fs/cgroup"] : readdirSync("/sys/fs/cgroup").map((h) => join("/sys/fs/cgroup", h));
  return roots.map((r) => join(r, "crio")).filter((d) => !existsSync(d));
}

async function stopAll(c: Crio, proc: ReturnType<typeof Bun.spawn>, newCgroups: string[]): Promise<void> {
  if (proc.exitCode === null && proc.signalCode === null) {
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await proc.exited;
    clearTimeout(t);
  }
  // CRI-O leaves containers running when it exits: kill and delete what the caller did not remove.
  const runcRoot = join(c.dir, "runc");
  if (existsSync(runcRoot)) {
    for (const id of readdirSync(runcRoot)) {
      await runRaw(["runc", "--root", runcRoot, "kill", id, "KILL"], { timeoutMs: 10_000 });
      await runRaw(["runc", "--root", runcRoot, "delete", "--force", id], { timeoutMs: 10_000 });
    }
  }
  for (const pid of c.conmonPids()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  const deadline = Date.now() + 5000;
  while (c.conmonPids().length > 0 && Date.now() < deadline) await Bun.sleep(20);
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m.startsWith(c.dir + "/"))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) Bun.spawnSync(["umount", "-l", m]);
  if (c.bridgeName) await runRaw(["ip", "link", "del", c.bridgeName], { timeoutMs: 10_000 });
  for (const d of newCgroups) {
    try {
      rmdirSync(d); // EBUSY while something is still below it: then it stays
    } catch {}
  }
  if (!process.env.CRIO_TEST_KEEP) rmSync(c.dir, { recursive: true, force: true });
  live.delete(c);
}
