/**
 * The reference runtime for the benchmarks: Debian's containerd 1.6 (`apt-get install containerd`)
 * with its CRI plugin, run as root with every path (root, state, sockets, runc root, CNI config,
 * registry hosts, the opt plugin) in one temp dir, so the machine's /etc/containerd,
 * /var/lib/containerd and /run/containerd are never read or written. It is configured like our
 * daemon in the benches: cgroupfs, runc through the runc v2 shim, overlayfs, the pause look-alike
 * on the loopback registry as sandbox image, that registry spoken to over plain HTTP.
 */
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runRaw } from "../../src/sys/exec.ts";
import { untilStatus } from "./until-status.ts";
import { bridgeConflist, containerdConfig, EXEC_NS_FILE, hostsToml, privateRunScript } from "./containerd-config.ts";
import type { CriClient } from "../../test/support/cri-client.ts";

/** The containerd binary the reference runs (Debian's package puts it here). */
export const CONTAINERD_BIN = process.env.CONTAINERD_BINARY ?? "/usr/bin/containerd";

/** The shim containerd starts per pod (runtime_type io.containerd.runc.v2). */
export const SHIM_NAME = "containerd-shim-runc-v2";

/** Options for {@link startContainerd}. */
export interface ContainerdOptions {
  /** "127.0.0.1:PORT" of the loopback registry: marked as a plain-HTTP registry in hosts.toml. */
  registryHost: string;
  /** The sandbox (pause) image reference, e.g. "127.0.0.1:PORT/pause:latest". */
  pauseImage: string;
  /** CNI configs (*.conf, *.conflist) to copy into containerd's own temp conf_dir; default none (host-network pods only). */
  cniConfDir?: string;
  /** Write a bridge conflist with a bridge name and a private /24 of its own into the conf_dir (the bridge is deleted on stop). */
  bridge?: boolean;
  /** Where the CNI plugins are; default /usr/lib/cni. */
  cniBinDir?: string;
  /** containerd's log level; default "warn". */
  logLevel?: string;
  /**
   * Upstream registry hosts (e.g. "registry.k8s.io", "docker.io") whose pulls all go to
   * `registryHost` over plain HTTP, repository paths unchanged (the upstream host is dropped):
   * one hosts.toml per upstream under the temp certs.d. Default none.
   */
  mirrors?: string[];
  /**
   * Make `<dir>/shared` a shared bind mount on the host whose copy in containerd's private mount
   * namespace is its peer (every other mount there is made private), so mounts below it propagate
   * both ways: critest's mount propagation specs need their host paths there (TMPDIR). Default off.
   */
  sharedDir?: boolean;
}

/** A running containerd; stop() (or `await using`) ends it and everything it started, and removes its dir. */
export interface Containerd {
  /** The CRI (and containerd API) unix socket. */
  socket: string;
  /** containerd's pid. */
  pid: number;
  /** The temp dir holding config, root, state, sockets and the log; put pod log directories below it. */
  dir: string;
  /** containerd's log file (stdout and stderr). */
  logFile: string;
  /** `<dir>/shared` when the `sharedDir` option is on: a mount peer between the host and containerd's namespace. */
  sharedDir?: string;
  /** The bridge the `bridge` option configured, if any. */
  bridgeName?: string;
  /** ms from the spawn of the wrapper (setpriv, unshare, sh, mount) to the exec of containerd: not containerd's own start-up. */
  wrapperMs: number;
  /** Pids of the runc v2 shims this containerd started (found by their -address argument). */
  shimPids(): number[];
  /** SIGTERM containerd (SIGKILL after 10 s), kill its leftover containers and shims, unmount and remove the dir. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Whether the reference can run here: the containerd binary and its runc v2 shim are installed. */
/** Stops and removes every pod a reference runtime still has, then closes the client (bench clean-up). */
export async function removeAllPods(cri: CriClient): Promise<void> {
  const { items } = await cri.listPodSandbox({}).catch(() => ({ items: [] }));
  for (const p of items) {
    await cri.stopPodSandbox({ podSandboxId: p.id }, { timeoutMs: 60_000 }).catch(() => {});
    await cri.removePodSandbox({ podSandboxId: p.id }, { timeoutMs: 60_000 }).catch(() => {});
  }
  cri.close();
}

export function containerdAvailable(): boolean {
  return existsSync(CONTAINERD_BIN) && existsSync(`/usr/bin/${SHIM_NAME}`);
}

/** containerd's version line, e.g. "1.6.20~ds1". */
export async function containerdVersion(): Promise<string> {
  const r = await runRaw([CONTAINERD_BIN, "--version"]);
  return r.stdout.trim().split(/\s+/)[2] ?? "unknown";
}

const live = new Set<Containerd>();
process.on("exit", () => {
  for (const c of live) {
    try {
      process.kill(c.pid, "SIGKILL");
    } catch {}
    for (const p of c.shimPids()) {
      try {
        process.kill(p, "SIGKILL");
      } catch {}
    }
  }
});

/** Starts containerd on a temp socket; resolves once its CRI Status call answers (within 20 s). */
export async function startContainerd(o: ContainerdOptions): Promise<Containerd> {
  if (!containerdAvailable()) throw new Error(`${CONTAINERD_BIN} is missing: install the Debian package containerd (apt-get install -y containerd)`);
  const dir = mkdtempSync(join(process.env.CRIO_TEST_TMP ?? tmpdir(), "ctd-"));
  const socket = join(dir, "containerd.sock");
  const logFile = join(dir, "containerd.log");
  const confDir = join(dir, "net.d");
  mkdirSync(confDir, { recursive: true });
  if (o.cniConfDir)
    for (const f of readdirSync(o.cniConfDir).filter((f) => /\.(conf|conflist|json)$/.test(f))) copyFileSync(join(o.cniConfDir, f), join(confDir, f));
  const br = o.bridge ? bridgeConflist(join(dir, "ipam")) : undefined;
  if (br) writeFileSync(join(confDir, "10-bench-bridge.conflist"), br.text);
  for (const host of [o.registryHost, ...(o.mirrors ?? [])]) {
    mkdirSync(join(dir, "certs.d", host), { recursive: true });
    writeFileSync(join(dir, "certs.d", host, "hosts.toml"), hostsToml(o.registryHost));
  }
  const configFile = join(dir, "config.toml");
  writeFileSync(configFile, containerdConfig(dir, o, confDir));

  const startScript = join(dir, "start.sh");
  const sharedDir = o.sharedDir ? join(dir, "shared") : undefined;
  writeFileSync(startScript, privateRunScript(dir, CONTAINERD_BIN, configFile, sharedDir), { mode: 0o700 });
  if (sharedDir) {
    mkdirSync(sharedDir, { mode: 0o755 });
    for (const argv of [
      ["mount", "--bind", sharedDir, sharedDir],
      ["mount", "--make-shared", sharedDir],
    ]) {
      const r = await runRaw(argv, { timeoutMs: 10_000 });
      if (r.code !== 0) {
        unmountBelow(dir);
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`${argv.join(" ")} failed: ${r.stderr.trim()}`);
      }
    }
  }

  const newCgroups = absentCgroupParents();
  const fd = openSync(logFile, "a");
  const spawnedAt = performance.timeOrigin + performance.now();
  let proc: ReturnType<typeof Bun.spawn>;
  try {
    // setpriv --pdeathsig: containerd dies with the bench even when that one is SIGKILLed.
    // unshare (no --fork) and sh's exec keep one pid: proc.pid is containerd's.
    const pre = existsSync("/usr/bin/setpriv") ? ["/usr/bin/setpriv", "--pdeathsig", "TERM"] : [];
    proc = Bun.spawn([...pre, "unshare", "--mount", "--propagation", sharedDir ? "unchanged" : "private", "/bin/sh", startScript], {
      stdin: "ignore",
      stdout: fd,
      stderr: fd,
      cwd: dir,
      env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", TMPDIR: dir },
    });
  } finally {
    closeSync(fd);
  }

  const shimPids = () => findShims(socket);
  let stopped: Promise<void> | undefined;
  const c: Containerd = {
    socket,
    pid: proc.pid,
    dir,
    logFile,
    shimPids,
    bridgeName: br?.bridge,
    sharedDir,
    wrapperMs: NaN,
    stop: () => (stopped ??= stopAll(c, proc, newCgroups)),
    [Symbol.asyncDispose]: () => c.stop(),
  };
  live.add(c);
  try {
    const tail = () => readFileSync(logFile, "utf8").trim().split("\n").slice(-10).join("\n");
    await untilStatus(socket, () => proc.exitCode !== null || proc.signalCode !== null, "containerd", { timeoutMs: 20000, detail: tail });
    c.wrapperMs = Number(readFileSync(join(dir, EXEC_NS_FILE), "utf8").trim()) / 1e6 - spawnedAt;
  } catch (e) {
    await c.stop();
    throw e;
  }
  return c;
}

/** Shim pids whose command line names `socket` as the containerd address. */
function findShims(socket: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
      if (!argv[0]?.endsWith(SHIM_NAME)) continue;
      const i = argv.indexOf("-address");
      if (i >= 0 && argv[i + 1] === socket) out.push(Number(p));
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * Without a cgroup_parent in the pod config, containerd puts containers under /k8s.io/<id> in
 * every hierarchy; runc removes the leaves, not that parent. The parents absent now are the ones
 * this containerd will make, and stop() removes them again when they are empty.
 */
function absentCgroupParents(): string[] {
  const roots = existsSync("/sys/fs/cgroup/cgroup.controllers") ? ["/sys/fs/cgroup"] : readdirSync("/sys/fs/cgroup").map((h) => join("/sys/fs/cgroup", h));
  return roots.map((r) => join(r, CGROUP_PARENT)).filter((d) => !existsSync(d));
}

/** The cgroup parent containerd's CRI plugin uses for pods without cgroup_parent (its namespace). */
const CGROUP_PARENT = "k8s.io";

async function stopAll(c: Containerd, proc: ReturnType<typeof Bun.spawn>, newCgroups: string[]): Promise<void> {
  if (proc.exitCode === null && proc.signalCode === null) {
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await proc.exited;
    clearTimeout(t);
  }
  // Containers the caller did not remove: kill and delete them through runc with our root.
  const runcRoot = join(c.dir, "runc");
  if (existsSync(runcRoot)) {
    for (const ns of readdirSync(runcRoot)) {
      const root = join(runcRoot, ns);
      for (const id of readdirSync(root)) {
        await runRaw(["runc", "--root", root, "kill", id, "KILL"], { timeoutMs: 10_000 });
        await runRaw(["runc", "--root", root, "delete", "--force", id], { timeoutMs: 10_000 });
      }
    }
  }
  for (const pid of c.shimPids()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  const deadline = Date.now() + 5000;
  while (c.shimPids().length > 0 && Date.now() < deadline) await Bun.sleep(20);
  unmountBelow(c.dir);
  if (c.bridgeName) await runRaw(["ip", "link", "del", c.bridgeName], { timeoutMs: 10_000 });
  for (const d of newCgroups) {
    try {
      rmdirSync(d); // fails (EBUSY) while another containerd's containers are below it: then it stays
    } catch {}
  }
  if (!process.env.CRIO_TEST_KEEP) rmSync(c.dir, { recursive: true, force: true });
  live.delete(c);
}

/** Unmounts (lazily, deepest first) every mount at or below `dir`: rootfs overlays, shm, netns files. */
function unmountBelow(dir: string): void {
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m.startsWith(dir + "/"))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) Bun.spawnSync(["umount", "-l", m]);
}
