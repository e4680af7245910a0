// Crash injection at chosen steps (issue #17): runc is a wrapper (runtime_path) that, when the
// test arms it, stops at one verb — before running the real runc, or after it finished and
// before it reports — and waits there; the test then SIGKILLs runc (the wrapper), the monitor
// that ran it, or the daemon, and lets the step go on. After each: the request got a gRPC error,
// the daemon (restarted where it was killed) lists every container with the state the runtime
// has, and nothing is left of what failed: mounts, monitor dirs, processes, cgroups, pins.
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ContainerState } from "../../src/gen/runtime/v1/api_pb.ts";
import { CRIO, startDaemon, waitFor, type TestDaemon } from "../harness.ts";
import { ctrConfig, podConfig, startEnv, type Env } from "../support/pods.ts";
import { powerCut, processesOf, truthAndLeaks } from "../support/crash-churn.ts";
import { cleanupNet, pinFiles, pluginDir, rulesMentioning, testNet } from "../support/network.ts";

type Verb = "create" | "start" | "exec";
type Phase = "before" | "after";

let env: Env;
let d: TestDaemon;
let podId: string;
let pod: ReturnType<typeof podConfig>;
let ctl: string;
let plugins: ReturnType<typeof pluginDir>;
const net = testNet({ dualStack: false });
const NO_IPAM = net.ipamDir;
/** A runtime or monitor failure: UNKNOWN for the runtime's own error (as CRI-O's plain errors), INTERNAL otherwise. */
const RUNTIME_FAILED = [status.UNKNOWN, status.INTERNAL];

/** The wrapper: holds the first call of an armed verb (hold-<verb> holds the phase) until `release` exists. */
function wrapper(dir: string): string {
  const real = Bun.which("runc") ?? "/usr/sbin/runc";
  const path = join(dir, "runc-hold");
  writeFileSync(
    path,
    `#!/bin/sh
ctl=${JSON.stringify(dir)}
verb=
for a in "$@"; do case $a in create|start|exec|kill|delete|state|list|features|update|pause|resume|ps|events) verb=$a; break ;; esac; done
if [ -n "$verb" ] && mv "$ctl/hold-$verb" "$ctl/taken-$verb" 2>/dev/null; then
  phase=$(cat "$ctl/taken-$verb")
  rc=0
  if [ "$phase" = after ]; then ${real} "$@"; rc=$?; fi
  echo $$ > "$ctl/held.tmp" && mv "$ctl/held.tmp" "$ctl/held"
  while [ ! -e "$ctl/release" ]; do sleep 0.05; done
  rm -f "$ctl/release"
  [ "$phase" = after ] && exit $rc
fi
exec ${real} "$@"
`,
  );
  chmodSync(path, 0o755);
  return path;
}

/** Arms `verb` at `phase`; resolves to the held wrapper's pid once a call reached it. */
async function hold(verb: Verb, phase: Phase, what: Promise<unknown>): Promise<number> {
  const pid = await waitFor(async () => {
    if (existsSync(join(ctl, "held"))) return Number(readFileSync(join(ctl, "held"), "utf8").trim()) || undefined;
    // the call ended without reaching the verb: say how
    const early = await Promise.race([what.then((v) => ({ v }), (e) => ({ e })), Bun.sleep(0).then(() => undefined)]);
    if (early) throw new Error(`the call ended before ${verb} was held: ${JSON.stringify(early)}`);
    return undefined;
  }, 60_000, `runc ${verb} held ${phase}`);
  rmSync(join(ctl, "held"));
  return pid;
}

function arm(verb: Verb, phase: Phase): void {
  for (const f of ["held", "release"]) rmSync(join(ctl, f), { force: true });
  writeFileSync(join(ctl, `hold-${verb}`), phase);
}

function release(): void {
  writeFileSync(join(ctl, "release"), "");
}

function parentOf(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[1]);
}

function kill(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {}
}

/** The gRPC code a call ended with (0 when it succeeded). */
async function codeOf(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
    return { code: 0, message: "" };
  } catch (e) {
    const x = e as { code?: number; details?: string; message?: string };
    if (process.env.INJECT_VERBOSE) console.log(`code ${x.code}: ${x.details ?? x.message}`);
    return { code: x.code ?? -1, message: x.details ?? x.message ?? String(e) };
  }
}

async function restart(): Promise<void> {
  d.cri.close();
  d = await startDaemon({ dir: env.d.dir });
}

async function killDaemon(): Promise<void> {
  d.proc.kill("SIGKILL");
  await d.proc.exited;
}

async function running(name: string): Promise<string> {
  const { containerId } = await d.cri.createContainer({ podSandboxId: podId, config: ctrConfig(name, env.busybox, ["sh", "-c", "while :; do echo tick; sleep 1; done"], {}, pod), sandboxConfig: pod });
  await d.cri.startContainer({ containerId });
  return containerId;
}

async function created(name: string): Promise<string> {
  const { containerId } = await d.cri.createContainer({ podSandboxId: podId, config: ctrConfig(name, env.busybox, ["sleep", "3600"], {}, pod), sandboxConfig: pod });
  return containerId;
}

function createCall(name: string): Promise<{ containerId: string }> {
  return d.cri.createContainer({ podSandboxId: podId, config: ctrConfig(name, env.busybox, ["sleep", "3600"], {}, pod), sandboxConfig: pod }, { timeoutMs: 120_000 });
}

/** Truthful states and no leaks; also: no held wrapper or runc of ours left running. */
async function expectConsistent(): Promise<void> {
  expect(await truthAndLeaks(d, NO_IPAM)).toEqual([]);
}

/** Truthful states and no leaks within 20 s (a monitor's death is noticed by the 5 s watchdog). */
async function eventuallyConsistent(what: string): Promise<void> {
  let last: string[] = [];
  for (const end = Date.now() + 20_000; Date.now() < end; await Bun.sleep(500)) if ((last = await truthAndLeaks(d, NO_IPAM)).length === 0) return;
  expect({ what, violations: last }).toEqual({ what, violations: [] });
}

async function stateOf(id: string): Promise<string> {
  const st = (await d.cri.containerStatus({ containerId: id })).status!;
  return ContainerState[st.state]!;
}

beforeAll(async () => {
  env = await startEnv({ logLevel: "info", cniConf: net.conflist });
  ctl = env.d.dir;
  const runc = wrapper(ctl);
  env.d.cri.close();
  await env.d.stop("SIGTERM");
  plugins = pluginDir(join(ctl, "cni-bin"));
  writeFileSync(join(env.d.configDir, "10-hold.conf"), `[crio.runtime.runtimes.runc]\nruntime_path = ${JSON.stringify(runc)}\n[crio.network]\nplugin_dirs = [${JSON.stringify(plugins.dir)}]\n`);
  d = await startDaemon({ dir: env.d.dir, logLevel: "info" });
  await d.cri.pullImage({ image: { image: env.busybox } });
  pod = podConfig("inject", d.dir);
  ({ podSandboxId: podId } = await d.cri.runPodSandbox({ config: pod }));
}, 120_000);

afterAll(async () => {
  release();
  if (d.proc.exitCode === null && d.proc.signalCode === null) {
    const { items } = await d.cri.listPodSandbox({}).catch(() => ({ items: [] }));
    for (const p of items) await d.cri.removePodSandbox({ podSandboxId: p.id }).catch(() => {});
    d.cri.close();
    await d.stop("SIGTERM");
  }
  env.d = d; // the env's clean-up stops the daemon that runs now
  await env[Symbol.asyncDispose]();
  await cleanupNet(net);
}, 120_000);

describe("SIGKILL of runc", () => {
  for (const phase of ["before", "after"] as const) {
    test(`at create (${phase} the real runc create): CreateContainer fails, nothing of the container is left`, async () => {
      arm("create", phase);
      const call = createCall(`rc-${phase}`);
      kill(await hold("create", phase, call));
      const r = await codeOf(call);
      expect(RUNTIME_FAILED).toContain(r.code);
      expect(r.message).toMatch(/runtime create.*(status|exit) 137/);
      expect((await d.cri.listContainers({})).containers.filter((c) => c.metadata?.name === `rc-${phase}`)).toEqual([]);
      await expectConsistent();
    });

    test(`at start (${phase} the real runc start): StartContainer fails, the container is EXITED and not running`, async () => {
      const id = await created(`rs-${phase}`);
      arm("start", phase);
      const call = d.cri.startContainer({ containerId: id }, { timeoutMs: 120_000 });
      kill(await hold("start", phase, call));
      const r = await codeOf(call);
      expect(RUNTIME_FAILED).toContain(r.code);
      expect(r.message).toMatch(/start.*(status|exit) 137/);
      expect(await stateOf(id)).toBe("CONTAINER_EXITED");
      await expectConsistent();
      await d.cri.removeContainer({ containerId: id });
      await expectConsistent();
    });

    test(`at exec (${phase} the real runc exec): ExecSync fails, the container runs on`, async () => {
      const id = await running(`re-${phase}`);
      arm("exec", phase);
      const call = d.cri.execSync({ containerId: id, cmd: ["sh", "-c", "sleep 0.2; echo done"], timeout: 30n }, { timeoutMs: 120_000 });
      kill(await hold("exec", phase, call));
      const r = await codeOf(call);
      expect(RUNTIME_FAILED).toContain(r.code);
      expect(r.message).toMatch(/exec.*(status|exit) 137/);
      expect(await stateOf(id)).toBe("CONTAINER_RUNNING");
      const again = await d.cri.execSync({ containerId: id, cmd: ["echo", "again"], timeout: 30n });
      expect(new TextDecoder().decode(again.stdout)).toBe("again\n");
      await expectConsistent();
      await d.cri.removeContainer({ containerId: id });
    });
  }
});

describe("SIGKILL of the monitor", () => {
  for (const phase of ["before", "after"] as const) {
    test(`during create (${phase} the real runc create): CreateContainer fails; a runc create that goes on afterwards leaves nothing`, async () => {
      arm("create", phase);
      const call = createCall(`mc-${phase}`);
      const wrap = await hold("create", phase, call);
      const monitor = parentOf(wrap);
      expect(readFileSync(`/proc/${monitor}/cmdline`, "utf8")).toContain("conmon");
      kill(monitor);
      const r = await codeOf(call);
      release(); // runc create goes on (or returns), with its monitor gone
      expect(RUNTIME_FAILED).toContain(r.code);
      expect(r.message).toContain("monitor");
      await waitFor(() => !existsSync(`/proc/${wrap}`) || readFileSync(`/proc/${wrap}/stat`, "utf8").split(") ")[1]!.startsWith("Z"), 30_000, "the orphaned runc create to end");
      await expectConsistent();
    });
  }

  test("during start (runc start held): what is listed is what runc says", async () => {
    const id = await created("ms");
    arm("start", "before");
    const call = d.cri.startContainer({ containerId: id }, { timeoutMs: 120_000 });
    const wrap = await hold("start", "before", call);
    // runc start is the daemon's child; the container's monitor waits for the init: kill it
    const monitor = Number(readFileSync(join(d.runroot, "monitor", id, "monitor.pid"), "utf8"));
    expect(processesOf(d).some((p) => p.id === id && p.what === `monitor process ${monitor}`)).toBe(true);
    kill(monitor);
    release();
    const r = await codeOf(call);
    // with its monitor gone the start may succeed or not; either way what is listed is true
    await eventuallyConsistent(`after start (${JSON.stringify(r)})`);
    void wrap;
    await d.cri.removeContainer({ containerId: id });
    await expectConsistent();
  });

  test("during exec (runc exec held): ExecSync fails, the container's state is what runc says", async () => {
    const id = await running("me");
    arm("exec", "before");
    const call = d.cri.execSync({ containerId: id, cmd: ["echo", "x"], timeout: 30n }, { timeoutMs: 120_000 });
    const wrap = await hold("exec", "before", call);
    const monitor = parentOf(wrap);
    expect(readFileSync(`/proc/${monitor}/cmdline`, "utf8")).toContain(id);
    kill(monitor);
    const r = await codeOf(call);
    release();
    expect(RUNTIME_FAILED).toContain(r.code);
    expect(r.message).toContain("monitor");
    await eventuallyConsistent("after exec");
    await d.cri.removeContainer({ containerId: id });
    await expectConsistent();
  });
});

describe("SIGKILL of the daemon, restarted", () => {
  test("during create (runc create held, released after the restart): the container is not listed and leaves nothing", async () => {
    arm("create", "before");
    const call = createCall("dc");
    const wrap = await hold("create", "before", call);
    await killDaemon();
    expect((await codeOf(call)).code).toBe(status.UNAVAILABLE);
    await restart();
    release();
    await waitFor(() => !existsSync(`/proc/${wrap}`), 30_000, "the held runc create to end");
    expect((await d.cri.listContainers({})).containers.filter((c) => c.metadata?.name === "dc")).toEqual([]);
    await expectConsistent();
  });

  test("during start (runc start held, released before the restart): the container is RUNNING", async () => {
    const id = await created("ds");
    arm("start", "before");
    const call = d.cri.startContainer({ containerId: id }, { timeoutMs: 120_000 });
    const wrap = await hold("start", "before", call);
    await killDaemon();
    expect((await codeOf(call)).code).toBe(status.UNAVAILABLE);
    release();
    await waitFor(() => !existsSync(`/proc/${wrap}`), 30_000, "the held runc start to end");
    await restart();
    expect(await stateOf(id)).toBe("CONTAINER_RUNNING");
    await expectConsistent();
    await d.cri.removeContainer({ containerId: id });
  });

  test("during exec (runc exec held): the container runs on and answers an exec after the restart", async () => {
    const id = await running("de");
    arm("exec", "before");
    const call = d.cri.execSync({ containerId: id, cmd: ["echo", "x"], timeout: 30n }, { timeoutMs: 120_000 });
    await hold("exec", "before", call);
    await killDaemon();
    expect((await codeOf(call)).code).toBe(status.UNAVAILABLE);
    await restart();
    release();
    expect(await stateOf(id)).toBe("CONTAINER_RUNNING");
    const r = await d.cri.execSync({ containerId: id, cmd: ["echo", "after"], timeout: 30n });
    expect(new TextDecoder().decode(r.stdout)).toBe("after\n");
    await expectConsistent();
    await d.cri.removeContainer({ containerId: id });
  });
});

test("SIGKILL of the daemon during RunPodSandbox (bridge ADD held), then `crio wipe -f` (what uninstall runs): no pin, mount, lease or rule of the half-made pod is left", async () => {
  const marker = join(ctl, "add.pid");
  plugins.slow("bridge", marker, join(ctl, "add.release"));
  try {
    const call = d.cri.runPodSandbox({ config: podConfig("half-made", d.dir, { hostNetwork: false }) }, { timeoutMs: 120_000 });
    call.catch(() => {}); // awaited below
    await waitFor(() => existsSync(marker) || d.proc.exitCode !== null, 60_000, "the bridge ADD to be held");
    expect({ exit: d.proc.exitCode, log: d.proc.exitCode === null ? "" : d.logs().slice(-3000) }).toEqual({ exit: null, log: "" });
    expect(pinFiles(d.runroot).length).toBeGreaterThan(0);
    await killDaemon();
    expect((await codeOf(call)).code).toBe(status.UNAVAILABLE);
  } finally {
    plugins.fix("bridge");
  }
  const w = Bun.spawnSync([CRIO, "--config", d.configFile, "--config-dir", d.configDir, "wipe", "-f"], { stdout: "pipe", stderr: "pipe" });
  expect({ code: w.exitCode, err: w.exitCode ? w.stderr.toString() : "" }).toEqual({ code: 0, err: "" });
  expect(pinFiles(d.runroot)).toEqual([]);
  const mounts = readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4] ?? "").filter((m) => m.startsWith(d.runroot + "/") || m.startsWith(d.root + "/"));
  expect(mounts).toEqual([]);
  expect(await rulesMentioning([`name: \\"${net.name}\\"`])).toEqual([]);
  await restart();
  expect((await d.cri.listPodSandbox({})).items).toEqual([]);
  await expectConsistent();
  await d.cri.pullImage({ image: { image: env.busybox } }); // wipe -f took the images too
  ({ podSandboxId: podId } = await d.cri.runPodSandbox({ config: pod }));
});

test("power cut: daemon, monitors and containers killed together, runroot wiped as a reboot does; after the restart pods are NOTREADY, containers EXITED, nothing of the old boot is left, new pods work", async () => {
  const cniPod = podConfig("before-cut", d.dir, { hostNetwork: false });
  const { podSandboxId: oldPod } = await d.cri.runPodSandbox({ config: cniPod });
  const run = async (p: string, cfg: ReturnType<typeof podConfig>, name: string, cmd: string[]) => {
    const { containerId } = await d.cri.createContainer({ podSandboxId: p, config: ctrConfig(name, env.busybox, cmd, {}, cfg), sandboxConfig: cfg });
    await d.cri.startContainer({ containerId });
    return containerId;
  };
  const sleeper = await run(oldPod, cniPod, "sleeper", ["sleep", "3600"]);
  const seven = await run(oldPod, cniPod, "seven", ["sh", "-c", "exit 7"]);
  const hostSleeper = await run(podId, pod, "host-sleeper", ["sleep", "3600"]);
  await waitFor(async () => (await stateOf(seven)) === "CONTAINER_EXITED", 20_000, "the exit-7 container to end");
  expect(await rulesMentioning([oldPod])).not.toEqual([]);
  const oldIds = [oldPod, podId, sleeper, seven, hostSleeper];

  await killDaemon();
  powerCut(d, net.ipamDir, net.name);
  expect(existsSync(d.runroot)).toBe(false);
  await restart();

  const pods = new Map((await d.cri.listPodSandbox({})).items.map((p) => [p.id, p.state]));
  expect(Object.fromEntries(pods)).toEqual({ [oldPod]: 1, [podId]: 1 }); // SANDBOX_NOTREADY
  const ctrs = new Map((await d.cri.listContainers({})).containers.map((c) => [c.id, ContainerState[c.state]]));
  expect(Object.fromEntries(ctrs)).toEqual({ [sleeper]: "CONTAINER_EXITED", [seven]: "CONTAINER_EXITED", [hostSleeper]: "CONTAINER_EXITED" });
  expect((await d.cri.containerStatus({ containerId: seven })).status!.exitCode).toBe(7); // recorded before the cut: kept
  await expectConsistent();

  // a new pod on the same network works: an address, a running container, an exec
  const fresh = podConfig("after-cut", d.dir, { hostNetwork: false });
  const { podSandboxId: newPod } = await d.cri.runPodSandbox({ config: fresh });
  expect((await d.cri.podSandboxStatus({ podSandboxId: newPod })).status!.network!.ip).toMatch(/^10\./);
  const c = await run(newPod, fresh, "fresh", ["sleep", "3600"]);
  const r = await d.cri.execSync({ containerId: c, cmd: ["echo", "new boot"], timeout: 30n });
  expect(new TextDecoder().decode(r.stdout)).toBe("new boot\n");

  // the old pods go as the kubelet removes them; nothing of them is left
  for (const p of [oldPod, podId]) await d.cri.removePodSandbox({ podSandboxId: p });
  await expectConsistent();
  expect(await rulesMentioning(oldIds)).toEqual([]);
  await d.cri.removePodSandbox({ podSandboxId: newPod });
  ({ podSandboxId: podId } = await d.cri.runPodSandbox({ config: pod }));
});
