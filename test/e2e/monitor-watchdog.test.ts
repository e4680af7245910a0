// A container whose monitor dies (kill -9): the daemon notices within its watchdog period. A
// container that then exits is reported EXITED with code 255 and a message saying why (nobody
// recorded its exit code); one still running is reported as running without its monitor, and
// StopContainer and RemoveContainer still work and leave nothing behind.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ContainerState } from "../../src/gen/runtime/v1/api_pb.ts";
import { waitFor } from "../harness.ts";
import { ctrConfig, podConfig, startEnv, type Env } from "../support/pods.ts";

setDefaultTimeout(60_000);

let env: Env;
beforeAll(async () => {
  env = await startEnv({ logLevel: "info" });
  await env.d.cri.pullImage({ image: { image: env.busybox } });
}, 120_000);
afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
});

async function runningWithKilledMonitor(name: string, cmd: string[]) {
  const pod = podConfig(name, env.d.dir);
  const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
  const { containerId } = await env.d.cri.createContainer({ podSandboxId, config: ctrConfig(name, env.busybox, cmd, {}, pod), sandboxConfig: pod });
  await env.d.cri.startContainer({ containerId });
  const monitorPid = Number(readFileSync(join(env.d.runroot, "monitor", containerId, "monitor.pid"), "utf8"));
  expect(readFileSync(`/proc/${monitorPid}/cmdline`, "utf8")).toContain("conmon");
  process.kill(monitorPid, "SIGKILL");
  await waitFor(
    () => !existsSync(`/proc/${monitorPid}/status`) || readFileSync(`/proc/${monitorPid}/status`, "utf8").includes("State:\tZ"),
    10_000,
    "the monitor to die",
  );
  return { podSandboxId, containerId };
}

describe("monitor watchdog", () => {
  test("a container that exits after its monitor died: EXITED, code 255, with the reason", async () => {
    const { containerId } = await runningWithKilledMonitor("orphan-exit", ["sh", "-c", "sleep 2; exit 3"]);
    const st = await waitFor(
      async () => {
        const s = (await env.d.cri.containerStatus({ containerId })).status!;
        return s.state === ContainerState.CONTAINER_EXITED && s;
      },
      20_000,
      "EXITED",
    );
    expect([st.exitCode, st.reason]).toEqual([255, "Error"]);
    expect(st.message).toContain("monitor died");
    expect(env.d.logs()).toContain(`container ${containerId} exited after its monitor died`);
    await env.d.cri.removeContainer({ containerId });
  });

  test("a container still running without its monitor: reported once, and stop and remove still work", async () => {
    const { podSandboxId, containerId } = await runningWithKilledMonitor("orphan-run", ["sleep", "3600"]);
    await env.d.waitForLog(new RegExp(`container ${containerId} is running without its monitor`), 20_000);
    expect((await env.d.cri.containerStatus({ containerId })).status!.state).toBe(ContainerState.CONTAINER_RUNNING);
    await env.d.cri.stopContainer({ containerId, timeout: 1n });
    expect((await env.d.cri.containerStatus({ containerId })).status!.state).toBe(ContainerState.CONTAINER_EXITED);
    await env.d.cri.removeContainer({ containerId });
    await env.d.cri.stopPodSandbox({ podSandboxId });
    await env.d.cri.removePodSandbox({ podSandboxId });
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(containerId);
    expect(existsSync(join(env.d.runroot, "monitor", containerId))).toBe(false);
  });
});
