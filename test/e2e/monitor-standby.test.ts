// The warm exec-sync monitor (src/monitor/standby.ts, protocol.ts §1) with real runc: the
// second ExecSync runs on the monitor the first left waiting, concurrent ones start their own,
// a standby whose request pipe closes exits, and the daemon leaves none behind when it stops
// (SIGTERM) or is killed (SIGKILL: the standby sees its pipe close). The warm exec (session)
// monitor likewise serves the second streaming exec, with and without a terminal.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { AttachConnection } from "../../src/monitor/index.ts";
import { applyExecRequest, buildArgs, encodeExecRequest, parseArgs, type MonitorArgs } from "../../src/conmon/protocol.ts";
import { Monitors, startStandby } from "../../src/monitor/index.ts";
import { cleanupPods, ctrConfig, podConfig, startEnv } from "../support/pods.ts";
import { removeDaemonDirs, startDaemon, waitFor, type TestDaemon } from "../harness.ts";
import { canRun, MonitorWorld } from "./monitor-support.ts";
import { channelData, WsClient } from "../support/streaming-client.ts";

setDefaultTimeout(60_000);

const proc = (args: string[]) => ({ args, env: ["PATH=/bin"], cwd: "/", user: { uid: 0, gid: 0 }, terminal: false });
const dec = new TextDecoder();
const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
};
/** Standby monitors (anyone's) for this runtime root, from /proc: exec-sync and exec ones unless `modes` says. */
const standbys = (runtimeRoot: string, modes = ["exec-sync", "exec"]) =>
  readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
        return (
          argv.includes("conmon") &&
          argv.includes("--standby") &&
          (argv[argv.indexOf("--runtime-command") + 1] ?? "").includes(JSON.stringify(runtimeRoot)) &&
          modes.includes(argv[argv.indexOf("--mode") + 1]!)
        );
      } catch {
        return false;
      }
    })
    .map(Number);

test("protocol: a standby's argv and its request", () => {
  const base: MonitorArgs = {
    mode: "exec-sync",
    standby: true,
    id: "",
    container: "",
    runtime: ["/usr/sbin/runc", "--root", "/run/r"],
    dir: "",
    terminal: false,
    stdin: false,
    stdinOnce: false,
    logSizeMax: 0,
    timeoutMs: 0,
    attachTimeoutMs: 0,
  };
  const argv = buildArgs(base);
  expect(argv).not.toContain("--id");
  expect(parseArgs(argv)).toEqual(base);
  const a = applyExecRequest(parseArgs(argv), encodeExecRequest({ id: "e1", container: "c1", dir: "/run/m/e1", timeoutMs: 1500.2 }).trim());
  expect(a).toEqual({ ...base, standby: false, id: "e1", container: "c1", dir: "/run/m/e1", timeoutMs: 1501 });
  expect(() => applyExecRequest(base, JSON.stringify({ id: "../x", container: "c1", dir: "/d", timeoutMs: 0 }))).toThrow("invalid id");
  expect(() => applyExecRequest(base, JSON.stringify({ id: "e", container: "c1", dir: "rel", timeoutMs: 0 }))).toThrow("invalid dir");
  expect(() => applyExecRequest(base, JSON.stringify({ id: "e", container: "c1", dir: "/d", timeoutMs: -1 }))).toThrow("timeoutMs");
  expect(() => parseArgs([...argv, "--id", "x"])).toThrow("request");
  expect(() => parseArgs(["--mode", "create", "--standby", "--runtime-command", '["/r"]'])).toThrow("--exit-dir");
});

test("protocol: a standby create monitor's argv and its request", () => {
  const base: MonitorArgs = {
    mode: "create",
    standby: true,
    id: "",
    container: "",
    runtime: ["/usr/sbin/runc", "--root", "/run/r"],
    dir: "",
    exitDir: "/run/exits",
    terminal: false,
    stdin: false,
    stdinOnce: false,
    logSizeMax: 0,
    timeoutMs: 0,
    attachTimeoutMs: 0,
  };
  const argv = buildArgs(base);
  expect(argv).not.toContain("--id");
  expect(parseArgs(argv)).toEqual(base);
  const req = {
    id: "c1",
    dir: "/run/m/c1",
    bundle: "/var/b/c1",
    logPath: "/var/log/pods/p/c/0.log",
    terminal: true,
    stdin: true,
    stdinOnce: true,
    logSizeMax: 4096,
    noSyncLog: true,
  };
  expect(applyExecRequest(parseArgs(argv), encodeExecRequest(req).trim())).toEqual({
    ...base,
    standby: false,
    id: "c1",
    container: "c1",
    dir: "/run/m/c1",
    bundle: "/var/b/c1",
    logPath: "/var/log/pods/p/c/0.log",
    terminal: true,
    stdin: true,
    stdinOnce: true,
    logSizeMax: 4096,
    noSyncLog: true,
  });
  expect(applyExecRequest(base, JSON.stringify({ ...req, noSyncLog: false }))).not.toHaveProperty("noSyncLog");
  expect(() => applyExecRequest(base, JSON.stringify({ ...req, id: "../c" }))).toThrow("invalid id");
  expect(() => applyExecRequest(base, JSON.stringify({ ...req, bundle: "rel/b" }))).toThrow("invalid bundle");
  expect(() => applyExecRequest(base, JSON.stringify({ ...req, logPath: "/var/log/../../etc/x" }))).toThrow("invalid logPath");
  expect(() => applyExecRequest(base, JSON.stringify({ ...req, logSizeMax: 1.5 }))).toThrow("invalid logSizeMax");
  expect(() => applyExecRequest(base, JSON.stringify({ ...req, stdinOnce: 1 }))).toThrow("invalid stdinOnce");
  for (const extra of [["--id", "x"], ["--bundle", "/b"], ["--log-path", "/l"], ["--terminal"], ["--no-sync-log"]])
    expect(() => parseArgs([...argv, ...extra])).toThrow("request");
});

test("protocol: a standby exec (session) monitor's argv and its request", () => {
  const base: MonitorArgs = {
    mode: "exec",
    standby: true,
    id: "",
    container: "",
    runtime: ["/usr/sbin/runc", "--root", "/run/r"],
    dir: "",
    terminal: false,
    stdin: false,
    stdinOnce: true,
    logSizeMax: 0,
    timeoutMs: 0,
    attachTimeoutMs: 0,
  };
  const argv = buildArgs(base);
  expect(parseArgs(argv)).toEqual(base);
  const line = encodeExecRequest({ id: "e1", container: "c1", dir: "/run/m/e1", terminal: true, stdin: true, attachTimeoutMs: 60_000.5 }).trim();
  expect(applyExecRequest(parseArgs(argv), line)).toEqual({
    ...base,
    standby: false,
    id: "e1",
    container: "c1",
    dir: "/run/m/e1",
    terminal: true,
    stdin: true,
    attachTimeoutMs: 60_001,
  });
  const ok = { id: "e", container: "c1", dir: "/d", terminal: false, stdin: false, attachTimeoutMs: 0 };
  expect(applyExecRequest(base, JSON.stringify(ok))).toMatchObject({ attachTimeoutMs: 0, terminal: false });
  expect(() => applyExecRequest(base, JSON.stringify({ ...ok, terminal: "yes" }))).toThrow("invalid terminal");
  expect(() => applyExecRequest(base, JSON.stringify({ ...ok, attachTimeoutMs: -1 }))).toThrow("attachTimeoutMs");
  for (const extra of [["--terminal"], ["--stdin"], ["--attach-timeout-ms", "5"]]) expect(() => parseArgs([...argv, ...extra])).toThrow("request");
});

describe.skipIf(!canRun())("monitor: warm container monitor (create standby)", () => {
  test("the second container's monitor is the warm one: its log, attach socket, exit file and ps title are a cold one's", async () => {
    await using w = new MonitorWorld();
    const m = new Monitors(w.config);
    try {
      const cold = w.id();
      await m.spawn({ id: cold, bundle: w.bundle(cold, ["sleep", "1000"]), logPath: w.logPath(cold) });
      expect(m.createStandby.stats()).toMatchObject({ hits: 0, misses: 1 });
      const [warm] = await waitFor(() => m.createStandby.stats().pids.length === 1 && m.createStandby.stats().pids, 10_000, "a create standby");
      // read until it says so: a read of /proc/<pid>/cmdline that lands while the just-started process
      // is still being set up (exec, its title) gave "" once in CI
      const standbyArgv = await waitFor(
        () => {
          const a = readFileSync(`/proc/${warm}/cmdline`, "utf8").split("\0");
          return a.includes("--standby") && a;
        },
        5_000,
        "the standby's command line",
      ).catch(() => readFileSync(`/proc/${warm}/cmdline`, "utf8").split("\0"));
      expect(standbyArgv).toContain("--standby");

      const id = w.id();
      const r = await m.spawn({ id, bundle: w.bundle(id, "echo from-warm; echo err >&2; exit 7"), logPath: w.logPath(id) });
      expect(r.monitorPid).toBe(warm!);
      expect(m.createStandby.stats()).toMatchObject({ hits: 1, misses: 1 });
      // ps shows it as a container's monitor, by id, no longer as a standby
      const argv = readFileSync(`/proc/${warm}/cmdline`, "utf8").split("\0");
      expect(argv.slice(1, 6)).toEqual(["conmon", "--mode", "create", "--id", id]);
      expect(argv).not.toContain("--standby");
      expect(Number(readFileSync(join(w.config.socketDir, id, "monitor.pid"), "utf8"))).toBe(warm!);
      expect(existsSync(join(w.config.socketDir, id, "attach"))).toBe(true);
      await w.runc("start", id);
      const exit = await waitFor(() => m.readExit(id), 10_000, "the exit file");
      expect(exit!.exitCode).toBe(7);
      expect(w.logLines(id).map((l) => l.replace(/^\S+ /, ""))).toEqual(["stdout F from-warm", "stderr F err"]);
      await waitFor(() => !alive(warm!), 10_000, "the monitor to exit after its container");

      // a runtime error through a warm monitor is reported as through a cold one, dir removed
      await waitFor(() => m.createStandby.stats().pids.length === 1, 10_000, "a replacement");
      const bad = w.id();
      const bundle = w.bundle(bad, ["/no/such/binary"]);
      const err = await m.spawn({ id: bad, bundle: `${bundle}-missing`, logPath: w.logPath(bad) }).catch((e) => e);
      expect(err).toMatchObject({ kind: "unknown" });
      expect(existsSync(join(w.config.socketDir, bad))).toBe(false);
      expect(m.createStandby.stats()).toMatchObject({ hits: 2 });
    } finally {
      m.close();
    }
    expect(standbys(w.runtimeRoot, ["create"])).toEqual([]);
  });
});

describe.skipIf(!canRun())("monitor: warm exec-sync standby", () => {
  test("the second ExecSync uses the warm monitor; concurrent ones start their own; close kills it", async () => {
    await using w = new MonitorWorld();
    const m = new Monitors({ ...w.config, execSyncDirect: false, execSyncInContainerMonitor: false });
    try {
      const id = w.id();
      await m.spawn({ id, bundle: w.bundle(id, ["sleep", "1000"]), logPath: w.logPath(id) });
      await w.runc("start", id);
      expect(m.standby.stats()).toEqual({ hits: 0, misses: 0, pids: [] }); // lazy: none before the first ExecSync

      const first = await m.execSync({ containerId: id, process: proc(["echo", "cold"]) });
      expect(dec.decode(first.stdout)).toBe("cold\n");
      const [warm] = await waitFor(() => m.standby.stats().pids.length === 1 && m.standby.stats().pids, 10_000, "a standby");
      expect(m.standby.stats()).toMatchObject({ hits: 0, misses: 1 });

      const r = await m.execSync({ containerId: id, process: proc(["sh", "-c", "echo out; echo err >&2; exit 6"]) });
      expect({ ...r, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) }).toEqual({ exitCode: 6, stdout: "out\n", stderr: "err\n", timedOut: false });
      expect(m.standby.stats()).toMatchObject({ hits: 1, misses: 1 });
      await waitFor(() => !alive(warm!), 10_000, "the used standby to exit");
      const [next] = await waitFor(() => m.standby.stats().pids.length === 1 && m.standby.stats().pids, 10_000, "a replacement");
      expect(next).not.toBe(warm);

      // the same timeout kill-tree and cap through a warm monitor
      const t0 = Date.now();
      const slow = await m.execSync({ containerId: id, process: proc(["sh", "-c", "sleep 4321 & sleep 4322"]), timeoutMs: 500 });
      expect([slow.timedOut, Date.now() - t0 < 5000]).toEqual([true, true]);
      await waitFor(() => m.standby.stats().pids.length === 1, 10_000, "a replacement");
      const big = await m.execSync({ containerId: id, process: proc(["head", "-c", "300000", "/dev/zero"]), maxOutput: 100_000 });
      expect([big.exitCode, big.stdout.length]).toEqual([0, 100_000]);
      expect(m.standby.stats()).toMatchObject({ hits: 3, misses: 1 });
      const left = await m.execSync({ containerId: id, process: proc(["sh", "-c", "ps -o args | grep '[s]leep 432' || true"]) });
      expect(dec.decode(left.stdout)).toBe("");

      // three at once: one takes the standby, the others start monitors as before
      await waitFor(() => m.standby.stats().pids.length === 1, 10_000, "a replacement");
      const before = m.standby.stats();
      const many = await Promise.all([1, 2, 3].map((n) => m.execSync({ containerId: id, process: proc(["sh", "-c", `echo ${n}; exit ${n}`]) })));
      expect(many.map((x) => [x.exitCode, dec.decode(x.stdout)])).toEqual([
        [1, "1\n"],
        [2, "2\n"],
        [3, "3\n"],
      ]);
      expect(m.standby.stats()).toMatchObject({ hits: before.hits + 1, misses: before.misses + 2 });
      expect(readdirSync(w.config.socketDir)).toEqual([id]); // exec sessions leave no dir behind

      const [last] = await waitFor(() => m.standby.stats().pids.length === 1 && m.standby.stats().pids, 10_000, "a replacement");
      m.close();
      await waitFor(() => !alive(last!), 10_000, "close() to kill the standby");
      expect(m.standby.stats().pids).toEqual([]);
      // after close() an ExecSync still works (cold) and leaves nothing waiting
      expect((await m.execSync({ containerId: id, process: proc(["true"]) })).exitCode).toBe(0);
      await Bun.sleep(100);
      expect(standbys(w.runtimeRoot)).toEqual([]);
    } finally {
      m.close();
    }
  });

  test("streaming exec sessions on warm monitors: held output, stdin, exit code, terminal; close kills it", async () => {
    await using w = new MonitorWorld();
    const m = new Monitors({ ...w.config, execSyncInContainerMonitor: false });
    try {
      const id = w.id();
      await m.spawn({ id, bundle: w.bundle(id, ["sleep", "1000"]), logPath: w.logPath(id) });
      await w.runc("start", id);
      const session = async (cmd: string[], o: { stdin?: boolean; terminal?: boolean }, send: (c: AttachConnection) => void) => {
        const s = await m.spawnExec({ containerId: id, process: { ...proc(cmd), env: ["PATH=/bin", "TERM=xterm"] }, ...o });
        let out = "";
        let err = "";
        const c = await m.attach(s.execId, { stdout: (d) => (out += dec.decode(d)), stderr: (d) => (err += dec.decode(d)) });
        await waitFor(() => out.length > 0, 10_000, "output written before attach");
        send(c);
        const code = await c.exit;
        await waitFor(() => !existsSync(`${w.config.socketDir}/${s.execId}`), 10_000, "session dir removed");
        return { code, out, err };
      };
      const plain = (c: AttachConnection) => {
        c.stdin("piped\n");
        c.closeStdin();
      };
      // the first one starts cold, and leaves one waiting
      expect(await session(["sh", "-c", "echo early; cat; echo late >&2; exit 9"], { stdin: true }, plain)).toEqual({
        code: 9,
        out: "early\npiped\n",
        err: "late\n",
      });
      expect(m.execStandby.stats()).toMatchObject({ hits: 0, misses: 1 });
      const [warm] = await waitFor(() => m.execStandby.stats().pids.length === 1 && m.execStandby.stats().pids, 10_000, "a standby");

      expect(await session(["sh", "-c", "echo early; cat; echo late >&2; exit 9"], { stdin: true }, plain)).toEqual({
        code: 9,
        out: "early\npiped\n",
        err: "late\n",
      });
      expect(m.execStandby.stats()).toMatchObject({ hits: 1, misses: 1 });
      await waitFor(() => !alive(warm!), 10_000, "the used standby to exit");
      const [next] = await waitFor(() => m.execStandby.stats().pids.length === 1 && m.execStandby.stats().pids, 10_000, "a replacement");
      expect(next).not.toBe(warm);

      const tty = await session(["sh", "-c", "echo ready; read x; stty size; exit 2"], { stdin: true, terminal: true }, (c) => {
        c.resize(20, 77);
        c.stdin("go\r");
      });
      expect([tty.code, tty.out]).toEqual([2, expect.stringContaining("20 77\r\n")]);
      expect(m.execStandby.stats()).toMatchObject({ hits: 2, misses: 1 });

      // a failing start reports the runtime's error through a warm monitor too
      await waitFor(() => m.execStandby.stats().pids.length === 1, 10_000, "a replacement");
      const missing = await m.spawnExec({ containerId: id, process: proc(["/bin/nope"]) }).catch((e) => e);
      expect(missing).toMatchObject({ name: "RuntimeError", kind: "unknown" });
      expect(m.execStandby.stats()).toMatchObject({ hits: 3, misses: 1 });
      expect(readdirSync(w.config.socketDir)).toEqual([id]);

      const [last] = await waitFor(() => m.execStandby.stats().pids.length === 1 && m.execStandby.stats().pids, 10_000, "a replacement");
      m.close();
      await waitFor(() => !alive(last!), 10_000, "close() to kill the standby");
      expect(standbys(w.runtimeRoot)).toEqual([]);
    } finally {
      m.close();
    }
  });

  test("a standby exits when its request pipe closes unused; a bad request is refused", async () => {
    await using w = new MonitorWorld();
    const idle = startStandby("exec-sync", w.config);
    await waitFor(() => standbys(w.runtimeRoot).includes(idle.monitor.pid), 10_000, "the standby to start");
    idle.close(); // what the kernel does for a daemon killed with SIGKILL
    expect(await idle.monitor.exited).toBe(0);

    const bad = startStandby("exec-sync", w.config);
    try {
      expect(bad.hand({ id: "no/slash", container: "c", dir: "/tmp/x", timeoutMs: 0 })).toBe(true);
      const [msg] = await bad.monitor.messages(1, 10_000, "bad request");
      expect(msg).toMatchObject({ error: expect.stringContaining("invalid exec-sync request") });
      expect(await bad.monitor.exited).toBe(2);
    } finally {
      bad.kill();
    }
    const idleExec = startStandby("exec", w.config);
    await waitFor(() => standbys(w.runtimeRoot).includes(idleExec.monitor.pid), 10_000, "the exec standby to start");
    idleExec.close();
    expect(await idleExec.monitor.exited).toBe(0);
  });

  test("the daemon: SIGTERM kills its standby; a SIGKILLed daemon's standby exits by itself", async () => {
    const env = await startEnv({ logLevel: "info" });
    let d: TestDaemon = env.d;
    const { dir, runroot, runcRoot } = d;
    try {
      await d.cri.pullImage({ image: { image: env.busybox } });
      const pod = podConfig("standby", dir, { hostNetwork: true });
      const { podSandboxId } = await d.cri.runPodSandbox({ config: pod });
      const { containerId } = await d.cri.createContainer({
        podSandboxId,
        config: ctrConfig("c", env.busybox, ["sleep", "3600"], {}, pod),
        sandboxConfig: pod,
      });
      await d.cri.startContainer({ containerId });
      // Execs run in the container's own monitor; with that monitor gone (killed) the daemon falls
      // back to monitors of their own, the warm standbys.
      const monitorPid = Number(readFileSync(join(runroot, "monitor", containerId, "monitor.pid"), "utf8"));
      process.kill(monitorPid, "SIGKILL");
      // kill() returns before the process is gone: an exec sent now may reach the dying monitor's
      // still-open socket (and fail with INTERNAL, as it would on a node).
      await waitFor(() => !alive(monitorPid), 10_000, "the killed monitor to be gone");
      const twice = async () => {
        for (const n of [1, 2]) {
          const r = await d.cri.execSync({ containerId, cmd: ["sh", "-c", `echo hi${n}; exit ${n}`], timeout: 10n });
          expect([r.exitCode, dec.decode(r.stdout)]).toEqual([n, `hi${n}\n`]);
          const { url } = await d.cri.exec({ containerId, cmd: ["sh", "-c", `echo hi${n}`], stdout: true, stderr: true });
          const { ws } = await WsClient.connect(url, ["v4.channel.k8s.io"]);
          await ws.closed;
          expect(channelData(ws.messages).get(1)?.toString()).toBe(`hi${n}\n`);
        }
        return await waitFor(() => standbys(runcRoot).length === 2 && standbys(runcRoot), 10_000, "the daemon's standbys");
      };

      const byTerm = await twice();
      // the first CreateContainer started a warm container monitor for the next one
      byTerm.push(...(await waitFor(() => standbys(runcRoot, ["create"]).length === 1 && standbys(runcRoot, ["create"]), 10_000, "the create standby")));
      expect(await d.stop("SIGTERM")).toBe(0);
      await waitFor(() => byTerm.every((p) => !alive(p)), 10_000, "SIGTERM to kill the standbys");

      d = await startDaemon({ dir, logLevel: "info" });
      const byKill = await twice();
      const c2 = await d.cri.createContainer({ podSandboxId, config: ctrConfig("c2", env.busybox, ["sleep", "3600"], {}, pod), sandboxConfig: pod });
      await d.cri.startContainer({ containerId: c2.containerId });
      byKill.push(...(await waitFor(() => standbys(runcRoot, ["create"]).length === 1 && standbys(runcRoot, ["create"]), 10_000, "the create standby")));
      d.proc.kill("SIGKILL");
      await d.proc.exited;
      await waitFor(() => byKill.every((p) => !alive(p)), 10_000, "the standbys of a killed daemon to exit");
      // A replacement may have been starting when the daemon died: it too must go on its own.
      const all = ["exec-sync", "exec", "create"];
      await waitFor(() => standbys(runcRoot, all).length === 0, 10_000, "every standby of the killed daemon to exit");
      expect(standbys(runcRoot, all)).toEqual([]);
      // the container's monitor outlived the daemon, as every one does
      expect(alive(Number(readFileSync(join(runroot, "monitor", c2.containerId, "monitor.pid"), "utf8")))).toBe(true);

      d = await startDaemon({ dir, logLevel: "info" }); // to remove the pod
    } finally {
      await cleanupPods(d);
      await d[Symbol.asyncDispose]();
      await env.reg.stop();
      removeDaemonDirs(dir, runroot);
    }
  });
});
