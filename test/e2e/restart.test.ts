// Restart recovery: containers outlive a kill -9 of the daemon, keep logging, and an exit that
// happens while the daemon is down is reported after it comes back.
import { expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ContainerState, PodSandboxState } from "../../src/gen/runtime/v1/api_pb.ts";
import { startDaemon, waitFor } from "../harness.ts";
import { cleanupPods, ctrConfig, podConfig, startEnv } from "../support/pods.ts";

test("kill -9 of the daemon: containers keep running and logging; exits while down are reported", async () => {
  await using env = await startEnv();
  const { d } = env;
  await d.cri.pullImage({ image: { image: env.busybox } });
  const pod = podConfig("survivor", d.dir, { sharedPid: true });
  const { podSandboxId } = await d.cri.runPodSandbox({ config: pod });
  const mk = async (name: string, cmd: string[]) => {
    const { containerId } = await d.cri.createContainer({ podSandboxId, config: ctrConfig(name, env.busybox, cmd, {}, pod), sandboxConfig: pod });
    await d.cri.startContainer({ containerId });
    return containerId;
  };
  const ticker = await mk("ticker", ["sh", "-c", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done"]);
  const quitter = await mk("quitter", ["sh", "-c", "while [ ! -e /tmp/quit ]; do sleep 0.1; done; exit 42"]);
  const tickLog = join(pod.logDirectory!, "ticker.log");
  await waitFor(() => existsSync(tickLog) && readFileSync(tickLog, "utf8").includes("tick 2"));

  d.proc.kill("SIGKILL");
  await d.proc.exited;
  // while the daemon is down: the quitter exits, the ticker keeps logging
  const pid = Number(JSON.parse(Bun.spawnSync(["runc", "--root", d.runcRoot, "state", quitter]).stdout.toString()).pid);
  Bun.spawnSync(["nsenter", "-t", String(pid), "-m", "touch", "/tmp/quit"]);
  const before = readFileSync(tickLog, "utf8").length;
  await waitFor(() => readFileSync(tickLog, "utf8").length > before + 20);

  await using d2 = await startDaemon({ dir: d.dir });
  const q = (await d2.cri.containerStatus({ containerId: quitter })).status!;
  expect(q).toMatchObject({ state: ContainerState.CONTAINER_EXITED, exitCode: 42, reason: "Error" });
  expect((await d2.cri.containerStatus({ containerId: ticker })).status?.state).toBe(ContainerState.CONTAINER_RUNNING);
  expect((await d2.cri.podSandboxStatus({ podSandboxId })).status?.state).toBe(PodSandboxState.SANDBOX_READY);
  const n = readFileSync(tickLog, "utf8").length;
  await waitFor(() => readFileSync(tickLog, "utf8").length > n);
  // the restarted daemon can still stop and remove what the old one created
  await d2.cri.stopPodSandbox({ podSandboxId });
  await d2.cri.removePodSandbox({ podSandboxId });
  expect((await d2.cri.listContainers({})).containers).toEqual([]);
  await cleanupPods(d2);
});

test("after a reboot (empty runroot) pods come back NOTREADY and containers EXITED", async () => {
  await using env = await startEnv();
  const { d } = env;
  await d.cri.pullImage({ image: { image: env.busybox } });
  const pod = podConfig("rebooted", d.dir);
  const { podSandboxId } = await d.cri.runPodSandbox({ config: pod });
  const { containerId } = await d.cri.createContainer({ podSandboxId, config: ctrConfig("c", env.busybox, ["sleep", "3600"]), sandboxConfig: pod });
  await d.cri.startContainer({ containerId });
  await d.stop("SIGTERM");
  // simulate the reboot: every process gone, runroot (tmpfs) emptied, pinned namespaces gone
  Bun.spawnSync(["runc", "--root", d.runcRoot, "delete", "--force", containerId]);
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const mp = line.split(" ")[4];
    if (mp?.startsWith(d.runroot)) Bun.spawnSync(["umount", "-l", mp]);
  }
  rmSync(d.runroot, { recursive: true, force: true });
  await using d2 = await startDaemon({ dir: d.dir });
  expect((await d2.cri.podSandboxStatus({ podSandboxId })).status?.state).toBe(PodSandboxState.SANDBOX_NOTREADY);
  expect((await d2.cri.containerStatus({ containerId })).status?.state).toBe(ContainerState.CONTAINER_EXITED);
  await d2.cri.removePodSandbox({ podSandboxId });
  expect((await d2.cri.listPodSandbox({})).items).toEqual([]);
});
