// crio.service in a systemd node (test/systemd-node/run.sh): installed by install.sh, started,
// reloaded, restarted and stopped by systemd, with a watchdog; NOTIFY_SOCKET stays the daemon's.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { ContainerState } from "../../src/gen/runtime/v1/api_pb.ts";
import { criClient } from "../support/cri-client.ts";
import { ctrConfig, podConfig } from "../support/pods.ts";
import { waitFor } from "../harness.ts";
import { cri, ensureActive, nodeEnviron, nodePath, nodeProcs, setUpNode, sh, shRaw, socketPath, unitProp } from "./node.ts";

let images: { busybox: string; pause: string };
beforeAll(async () => {
  images = await setUpNode();
}, 600_000);
afterAll(async () => {
  await removeAllPods();
});

async function removeAllPods(): Promise<void> {
  await ensureActive();
  for (const p of (await cri().listPodSandbox({})).items) await cri().removePodSandbox({ podSandboxId: p.id }, { timeoutMs: 120_000 });
}

/** A kubelet-style pod in its besteffort slice with one running container. */
async function runningContainer(name: string, cmd = ["sleep", "3600"]) {
  const pod = podConfig(name, "/var/log");
  pod.linux!.cgroupParent = `kubepods-besteffort-pod${pod.metadata!.uid}.slice`;
  await sh(["mkdir", "-p", pod.logDirectory!]);
  const { podSandboxId } = await cri().runPodSandbox({ config: pod });
  const { containerId } = await cri().createContainer({ podSandboxId, config: ctrConfig(name, images.busybox, cmd, {}, pod), sandboxConfig: pod });
  await cri().startContainer({ containerId });
  const st = await cri().containerStatus({ containerId, verbose: true });
  const pid = Number(JSON.parse(st.info.info ?? "{}").pid);
  expect(pid).toBeGreaterThan(1);
  return { pod, podSandboxId, containerId, pid };
}

/** The pid of container `id`'s monitor, inside the node. */
async function monitorOf(id: string): Promise<number> {
  const m = await nodeProcs((a) => a.includes("conmon") && a[a.indexOf("--id") + 1] === id && a.includes("create"));
  expect(m.length).toBe(1);
  return m[0]!.pid;
}

describe("crio.service", () => {
  test("install.sh installed it as the operator would: Type=notify, KillMode=process, cgroup_manager systemd", async () => {
    expect(existsSync(nodePath("/etc/crio/crio.conf"))).toBe(true);
    expect(existsSync(nodePath("/etc/cni/net.d/10-crio-bridge.conflist"))).toBe(true);
    expect(await unitProp("crio.service", "UnitFileState")).toBe("enabled");
    expect(await unitProp("crio.service", "Type")).toBe("notify");
    expect(await unitProp("crio.service", "KillMode")).toBe("process");
    expect(await unitProp("crio.service", "ActiveState")).toBe("active");
    expect(await sh(["crio", "status", "config"])).toMatch(/^cgroup_manager = "systemd"$/m);
    const v = await cri().version({});
    expect(v.runtimeName).toBeTruthy();
  });

  test("systemctl start returns once the socket serves (Type=notify, READY=1 after recovery)", async () => {
    await sh(["systemctl", "stop", "crio.service"], { timeoutMs: 60_000 });
    expect(await unitProp("crio.service", "ActiveState")).toBe("inactive");
    await sh(["systemctl", "start", "crio.service"], { timeoutMs: 120_000 });
    // no retry, no wait: a fresh connection right after `start` returned answers
    const c = criClient(socketPath());
    try {
      const v = await c.version({}, { timeoutMs: 3_000 });
      expect(v.runtimeApiVersion).toBe("v1");
    } finally {
      c.close();
    }
    expect(await unitProp("crio.service", "StatusText")).toMatch(/^serving CRI on /);
  });

  test("systemctl reload is a SIGHUP reload: same process, new reloadable options in effect", async () => {
    const pid = await unitProp("crio.service", "MainPID");
    await sh(["sh", "-c", 'printf "[crio.runtime]\\nlog_level = \\"warn\\"\\n" > /etc/crio/crio.conf.d/60-reload.conf']);
    try {
      await sh(["systemctl", "reload", "crio.service"]);
      await waitFor(async () => /^log_level = "warn"$/m.test(await sh(["crio", "status", "config"])), 20_000, "log_level warn after reload");
      expect(await unitProp("crio.service", "MainPID")).toBe(pid);
      expect(await unitProp("crio.service", "ActiveState")).toBe("active");
    } finally {
      await sh(["rm", "-f", "/etc/crio/crio.conf.d/60-reload.conf"]);
      await sh(["systemctl", "reload", "crio.service"]);
    }
  });

  test("systemctl restart keeps running containers and their monitors, and recovers them", async () => {
    const c = await runningContainer("survivor");
    const monitor = await monitorOf(c.containerId);
    const before = await unitProp("crio.service", "MainPID");
    await sh(["systemctl", "restart", "crio.service"], { timeoutMs: 120_000 });
    expect(await unitProp("crio.service", "MainPID")).not.toBe(before);
    // the same container and monitor processes, adopted by the new daemon
    await sh(["kill", "-0", String(c.pid), String(monitor)]);
    expect(await monitorOf(c.containerId)).toBe(monitor);
    const st = (await cri().containerStatus({ containerId: c.containerId })).status!;
    expect(st.state).toBe(ContainerState.CONTAINER_RUNNING);
    const r = await cri().execSync({ containerId: c.containerId, cmd: ["echo", "after restart"], timeout: 10n });
    expect(new TextDecoder().decode(r.stdout)).toBe("after restart\n");
    await cri().stopContainer({ containerId: c.containerId, timeout: 2n });
    expect((await cri().containerStatus({ containerId: c.containerId })).status!.state).toBe(ContainerState.CONTAINER_EXITED);
    await cri().removePodSandbox({ podSandboxId: c.podSandboxId });
  });

  test("systemctl stop ends inactive, not failed", async () => {
    await sh(["systemctl", "stop", "crio.service"], { timeoutMs: 60_000 });
    expect(await unitProp("crio.service", "ActiveState")).toBe("inactive");
    expect(await unitProp("crio.service", "Result")).toBe("success");
    expect((await shRaw(["systemctl", "is-failed", "crio.service"])).stdout.trim()).not.toBe("failed");
    await ensureActive();
  });

  test("WatchdogSec: the daemon pings; NOTIFY_SOCKET and WATCHDOG_* never reach runc, monitors or containers", async () => {
    await sh(["mkdir", "-p", "/etc/systemd/system/crio.service.d"]);
    await sh(["sh", "-c", 'printf "[Service]\\nWatchdogSec=4\\n" > /etc/systemd/system/crio.service.d/50-watchdog.conf']);
    try {
      await sh(["systemctl", "daemon-reload"]);
      await sh(["systemctl", "restart", "crio.service"], { timeoutMs: 120_000 });
      expect(await unitProp("crio.service", "WatchdogUSec")).toBe("4s");
      const main = Number(await unitProp("crio.service", "MainPID"));
      // the daemon itself got the variables from systemd
      expect((await nodeEnviron(main)).some((e) => e.startsWith("NOTIFY_SOCKET="))).toBe(true);
      const t0 = Number(await unitProp("crio.service", "WatchdogTimestampMonotonic"));
      await waitFor(async () => Number(await unitProp("crio.service", "WatchdogTimestampMonotonic")) > t0, 10_000, "a watchdog ping");
      const t1 = Number(await unitProp("crio.service", "WatchdogTimestampMonotonic"));
      await waitFor(async () => Number(await unitProp("crio.service", "WatchdogTimestampMonotonic")) > t1, 10_000, "a second watchdog ping");

      // a container started now: its runc, monitor and process are the daemon's children
      const c = await runningContainer("notify");
      const monitor = await monitorOf(c.containerId);
      const exec = await cri().execSync({ containerId: c.containerId, cmd: ["sh", "-c", "env"], timeout: 10n });
      for (const env of [await nodeEnviron(monitor), await nodeEnviron(c.pid), new TextDecoder().decode(exec.stdout).split("\n")])
        expect(env.filter((e) => /^(NOTIFY_SOCKET|WATCHDOG_USEC|WATCHDOG_PID)=/.test(e))).toEqual([]);
      // runc would have waited for a READY from the container had it inherited the socket
      expect((await cri().containerStatus({ containerId: c.containerId })).status!.state).toBe(ContainerState.CONTAINER_RUNNING);
      await sh(["sleep", "5"]); // longer than WatchdogSec: still the same process
      expect(Number(await unitProp("crio.service", "MainPID"))).toBe(main);
      expect(await unitProp("crio.service", "NRestarts")).toBe("0");
      await cri().removePodSandbox({ podSandboxId: c.podSandboxId });
    } finally {
      await sh(["rm", "-f", "/etc/systemd/system/crio.service.d/50-watchdog.conf"]);
      await sh(["systemctl", "daemon-reload"]);
      await sh(["systemctl", "restart", "crio.service"], { timeoutMs: 120_000 });
    }
  });
});

test("the journal has the daemon's log lines (stderr under systemd)", async () => {
  const j = await sh(["journalctl", "-u", "crio.service", "--no-pager", "-o", "cat", "-n", "200"]);
  expect(j).toContain("State recovery finished");
  expect(readFileSync(nodePath("/etc/hostname"), "utf8").trim()).toBe("crio-node");
});
