// Crash injection at chosen steps (issue #17), the daemon's part: the daemon is SIGKILLed while runc
// (a runtime_path wrapper, test/support/inject.ts) is held in a create, start or exec, or while the
// bridge plugin's ADD is held, and restarted (or `crio wipe -f` run, as install.sh --uninstall
// does); and a "power cut": daemon, monitors and containers killed together, runroot, leases, rules
// and cgroups gone as after a reboot. Each time: what is listed is true and nothing is left.
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ContainerState } from "../../src/gen/runtime/v1/api_pb.ts";
import { CRIO, waitFor } from "../harness.ts";
import { ctrConfig, podConfig } from "../support/pods.ts";
import { powerCut } from "../support/crash-churn.ts";
import { pinFiles, rulesMentioning } from "../support/network.ts";
import {
  arm,
  codeOf,
  created,
  createCall,
  expectConsistent,
  hold,
  killDaemon,
  release,
  restart,
  running,
  S,
  setUp,
  stateOf,
  tearDown,
} from "../support/inject.ts";

beforeAll(setUp, 120_000);
afterAll(tearDown, 120_000);

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
    expect((await S.d.cri.listContainers({})).containers.filter((c) => c.metadata?.name === "dc")).toEqual([]);
    await expectConsistent();
  });

  test("during start (runc start held, released before the restart): the container is RUNNING", async () => {
    const id = await created("ds");
    arm("start", "before");
    const call = S.d.cri.startContainer({ containerId: id }, { timeoutMs: 120_000 });
    const wrap = await hold("start", "before", call);
    await killDaemon();
    expect((await codeOf(call)).code).toBe(status.UNAVAILABLE);
    release();
    await waitFor(() => !existsSync(`/proc/${wrap}`), 30_000, "the held runc start to end");
    await restart();
    expect(await stateOf(id)).toBe("CONTAINER_RUNNING");
    await expectConsistent();
    await S.d.cri.removeContainer({ containerId: id });
  });

  test("during exec (runc exec held): the container runs on and answers an exec after the restart", async () => {
    const id = await running("de");
    arm("exec", "before");
    const call = S.d.cri.execSync({ containerId: id, cmd: ["echo", "x"], timeout: 30n }, { timeoutMs: 120_000 });
    await hold("exec", "before", call);
    await killDaemon();
    expect((await codeOf(call)).code).toBe(status.UNAVAILABLE);
    await restart();
    release();
    expect(await stateOf(id)).toBe("CONTAINER_RUNNING");
    const r = await S.d.cri.execSync({ containerId: id, cmd: ["echo", "after"], timeout: 30n });
    expect(new TextDecoder().decode(r.stdout)).toBe("after\n");
    await expectConsistent();
    await S.d.cri.removeContainer({ containerId: id });
  });
});

test("SIGKILL of the daemon during RunPodSandbox (bridge ADD held), then `crio wipe -f` (what uninstall runs): no pin, mount, lease or rule of the half-made pod is left", async () => {
  const marker = join(S.ctl, "add.pid");
  S.plugins.slow("bridge", marker, join(S.ctl, "add.release"));
  try {
    const call = S.d.cri.runPodSandbox({ config: podConfig("half-made", S.d.dir, { hostNetwork: false }) }, { timeoutMs: 120_000 });
    call.catch(() => {}); // awaited below
    await waitFor(() => existsSync(marker) || S.d.proc.exitCode !== null, 60_000, "the bridge ADD to be held");
    expect({ exit: S.d.proc.exitCode, log: S.d.proc.exitCode === null ? "" : S.d.logs().slice(-3000) }).toEqual({ exit: null, log: "" });
    expect(pinFiles(S.d.runroot).length).toBeGreaterThan(0);
    await killDaemon();
    expect((await codeOf(call)).code).toBe(status.UNAVAILABLE);
  } finally {
    S.plugins.fix("bridge");
  }
  const w = Bun.spawnSync([CRIO, "--config", S.d.configFile, "--config-dir", S.d.configDir, "wipe", "-f"], { stdout: "pipe", stderr: "pipe" });
  expect({ code: w.exitCode, err: w.exitCode ? w.stderr.toString() : "" }).toEqual({ code: 0, err: "" });
  expect(pinFiles(S.d.runroot)).toEqual([]);
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m.startsWith(S.d.runroot + "/") || m.startsWith(S.d.root + "/"));
  expect(mounts).toEqual([]);
  expect(await rulesMentioning([`name: \\"${S.net.name}\\"`])).toEqual([]);
  await restart();
  expect((await S.d.cri.listPodSandbox({})).items).toEqual([]);
  await expectConsistent();
  await S.d.cri.pullImage({ image: { image: S.env.busybox } }); // wipe -f took the images too
  S.podId = (await S.d.cri.runPodSandbox({ config: S.pod })).podSandboxId;
});

test("power cut: daemon, monitors and containers killed together, runroot wiped as a reboot does; after the restart pods are NOTREADY, containers EXITED, nothing of the old boot is left, new pods work", async () => {
  const cniPod = podConfig("before-cut", S.d.dir, { hostNetwork: false });
  const { podSandboxId: oldPod } = await S.d.cri.runPodSandbox({ config: cniPod });
  const run = async (p: string, cfg: ReturnType<typeof podConfig>, name: string, cmd: string[]) => {
    const { containerId } = await S.d.cri.createContainer({ podSandboxId: p, config: ctrConfig(name, S.env.busybox, cmd, {}, cfg), sandboxConfig: cfg });
    await S.d.cri.startContainer({ containerId });
    return containerId;
  };
  const sleeper = await run(oldPod, cniPod, "sleeper", ["sleep", "3600"]);
  const seven = await run(oldPod, cniPod, "seven", ["sh", "-c", "exit 7"]);
  const hostSleeper = await run(S.podId, S.pod, "host-sleeper", ["sleep", "3600"]);
  await waitFor(async () => (await stateOf(seven)) === "CONTAINER_EXITED", 20_000, "the exit-7 container to end");
  expect(await rulesMentioning([oldPod])).not.toEqual([]);
  const oldIds = [oldPod, S.podId, sleeper, seven, hostSleeper];

  await killDaemon();
  powerCut(S.d, S.net.ipamDir, S.net.name);
  expect(existsSync(S.d.runroot)).toBe(false);
  await restart();

  const pods = new Map((await S.d.cri.listPodSandbox({})).items.map((p) => [p.id, p.state]));
  expect(Object.fromEntries(pods)).toEqual({ [oldPod]: 1, [S.podId]: 1 }); // SANDBOX_NOTREADY
  const ctrs = new Map((await S.d.cri.listContainers({})).containers.map((c) => [c.id, ContainerState[c.state]]));
  expect(Object.fromEntries(ctrs)).toEqual({ [sleeper]: "CONTAINER_EXITED", [seven]: "CONTAINER_EXITED", [hostSleeper]: "CONTAINER_EXITED" });
  expect((await S.d.cri.containerStatus({ containerId: seven })).status!.exitCode).toBe(7); // recorded before the cut: kept
  await expectConsistent();

  // a new pod on the same network works: an address, a running container, an exec
  const fresh = podConfig("after-cut", S.d.dir, { hostNetwork: false });
  const { podSandboxId: newPod } = await S.d.cri.runPodSandbox({ config: fresh });
  expect((await S.d.cri.podSandboxStatus({ podSandboxId: newPod })).status!.network!.ip).toMatch(/^10\./);
  const c = await run(newPod, fresh, "fresh", ["sleep", "3600"]);
  const r = await S.d.cri.execSync({ containerId: c, cmd: ["echo", "new boot"], timeout: 30n });
  expect(new TextDecoder().decode(r.stdout)).toBe("new boot\n");

  // the old pods go as the kubelet removes them; nothing of them is left
  for (const p of [oldPod, S.podId]) await S.d.cri.removePodSandbox({ podSandboxId: p });
  await expectConsistent();
  expect(await rulesMentioning(oldIds)).toEqual([]);
  await S.d.cri.removePodSandbox({ podSandboxId: newPod });
  S.podId = (await S.d.cri.runPodSandbox({ config: S.pod })).podSandboxId;
});
