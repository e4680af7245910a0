// Where monitors run and how they treat the log (runtime handler keys, on the compiled daemon with
// real runc, cgroupfs): monitor_cgroup places each container's monitor in a cgroup of its own
// under the pod's cgroup parent (`<parent>/crio-conmon-<id>`, every hierarchy), removed with the
// container; no_sync_log turns off the monitor's fsync of the log (checked with strace); wrong
// values of monitor_cgroup stop the daemon at start with the key named.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { ContainerState } from "../../src/gen/runtime/v1/api_pb.ts";
import { cgroupDirsForPath, detectCgroupLayout } from "../../src/sys/cgroup.ts";
import { Monitors } from "../../src/monitor/index.ts";
import { startDaemon, tempDir, waitFor } from "../harness.ts";
import { MonitorWorld } from "./monitor-support.ts";
import { ctrConfig, podConfig, startEnv, type Env } from "../support/pods.ts";

const roots = tempDir("crio-moncg-");
const PARENT = `/crio-moncg-${process.pid}`;
const layout = detectCgroupLayout();
let env: Env;

beforeAll(async () => {
  env = await startEnv({
    config: [
      "[crio.runtime.runtimes.nosync]",
      `runtime_path = ${JSON.stringify(Bun.which("runc") ?? "/usr/sbin/runc")}`,
      `runtime_root = ${JSON.stringify(join(roots.path, "nosync"))}`,
      "no_sync_log = true",
      `monitor_cgroup = "pod"`,
      "",
    ].join("\n"),
  });
  await env.d.cri.pullImage({ image: { image: env.busybox } });
}, 120_000);

afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
  // the pod's cgroup parent is the kubelet's to remove; here it is ours
  for (const d of cgroupDirsForPath(layout, PARENT).reverse()) {
    try {
      rmdirSync(d);
    } catch {}
  }
  roots[Symbol.dispose]();
});

let seq = 0;
async function runIn(handler: string, o: { sharedPid?: boolean; cmd?: string[] } = {}) {
  const name = `mcg${++seq}`;
  const pod = podConfig(name, env.d.dir, { sharedPid: o.sharedPid });
  pod.linux!.cgroupParent = PARENT;
  const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod, runtimeHandler: handler });
  const { containerId } = await env.d.cri.createContainer({
    podSandboxId,
    config: ctrConfig(name, env.busybox, o.cmd ?? ["sleep", "3600"], {}, pod),
    sandboxConfig: pod,
  });
  await env.d.cri.startContainer({ containerId });
  return { podSandboxId, containerId, monitorPid: monitorPidOf(containerId) };
}

function monitorPidOf(id: string): number {
  return Number(readFileSync(join(env.d.runroot, "monitor", id, "monitor.pid"), "utf8"));
}

/** The cgroup paths of a process, hierarchy line → path. */
function cgroupsOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cgroup`, "utf8")
    .trim()
    .split("\n")
    .map((l) => l.slice(l.indexOf(":", l.indexOf(":") + 1) + 1));
}

describe("monitor_cgroup", () => {
  test("a container's monitor runs in <pod cgroup parent>/crio-conmon-<id> in every hierarchy, apart from the container; removed with it", async () => {
    for (const handler of ["runc", "nosync"]) {
      // "" (the default) and "pod"
      const { podSandboxId, containerId, monitorPid } = await runIn(handler);
      const own = `${PARENT}/crio-conmon-${containerId}`;
      expect(new Set(cgroupsOf(monitorPid))).toEqual(new Set([own]));
      const st = (await env.d.cri.containerStatus({ containerId, verbose: true })).info;
      const initPid = Number(JSON.parse(st.info ?? "{}").pid);
      expect(initPid).toBeGreaterThan(0);
      expect(cgroupsOf(initPid).every((p) => p === `${PARENT}/crio-${containerId}`)).toBe(true);
      const dirs = cgroupDirsForPath(layout, own);
      expect(dirs.length).toBeGreaterThan(1);
      for (const d of dirs) expect(readFileSync(join(d, "cgroup.procs"), "utf8").trim().split("\n")).toContain(String(monitorPid));

      await env.d.cri.removeContainer({ containerId });
      for (const d of dirs) expect(existsSync(d)).toBe(false);
      await env.d.cri.stopPodSandbox({ podSandboxId });
      await env.d.cri.removePodSandbox({ podSandboxId });
    }
  });

  test("a shared-PID pod's infra container monitor is placed too, and removed with the pod", async () => {
    const { podSandboxId, containerId } = await runIn("runc", { sharedPid: true });
    const dirsOf = (id: string) => cgroupDirsForPath(layout, `${PARENT}/crio-conmon-${id}`);
    expect(dirsOf(containerId).every(existsSync)).toBe(true);
    expect(dirsOf(podSandboxId).every(existsSync)).toBe(true);
    expect(cgroupsOf(monitorPidOf(podSandboxId))).toContain(`${PARENT}/crio-conmon-${podSandboxId}`);
    await env.d.cri.stopPodSandbox({ podSandboxId });
    await env.d.cri.removePodSandbox({ podSandboxId });
    for (const id of [containerId, podSandboxId]) expect(dirsOf(id).some(existsSync)).toBe(false);
  });

  test("a container that exited: its monitor's cgroup goes with RemoveContainer", async () => {
    const { podSandboxId, containerId } = await runIn("runc", { cmd: ["sh", "-c", "exit 3"] });
    await waitFor(async () => (await env.d.cri.containerStatus({ containerId })).status?.state === ContainerState.CONTAINER_EXITED, 10_000, "the exit");
    const dirs = cgroupDirsForPath(layout, `${PARENT}/crio-conmon-${containerId}`);
    expect(dirs.every(existsSync)).toBe(true);
    await env.d.cri.removeContainer({ containerId });
    expect(dirs.some(existsSync)).toBe(false);
    await env.d.cri.removePodSandbox({ podSandboxId });
  });

  test("wrong values stop the daemon at start, naming the key", async () => {
    const cases: Array<[string, string]> = [
      [`cgroup_manager = "cgroupfs"`, `monitor_cgroup = "kubepods.slice"`],
      [`cgroup_manager = "cgroupfs"`, `monitor_cgroup = "/sys/fs/cgroup/x"`],
      [`cgroup_manager = "systemd"`, `monitor_cgroup = "not-a-slice"`],
    ];
    for (const [manager, value] of cases) {
      await using d = await startDaemon({ config: `[crio.runtime]\n${manager}\n[crio.runtime.runtimes.runc]\n${value}\n`, noWait: true });
      expect(await d.proc.exited).toBe(1);
      const line = d
        .logs()
        .split("\n")
        .find((l) => l.includes("monitor_cgroup"));
      expect(line).toContain(`crio.runtime.runtimes.runc.monitor_cgroup`);
    }
  });
});

describe("a stuck monitor", () => {
  test("still in its cgroup 5 s after its container is gone: killed, and the cgroup removed", async () => {
    await using w = new MonitorWorld();
    const m = new Monitors({ ...w.config, createStandby: 0 });
    try {
      const id = w.id();
      const r = await m.spawn({
        id,
        bundle: w.bundle(id, ["sleep", "1000"]),
        logPath: w.logPath(id),
        cgroup: { manager: "cgroupfs", setting: "", parent: PARENT, id },
      });
      expect(r.cgroup).toBe(`${PARENT}/crio-conmon-${id}`);
      const dirs = cgroupDirsForPath(layout, r.cgroup!);
      process.kill(r.monitorPid, "SIGSTOP"); // it will never leave its cgroup by itself
      await w.runc("delete", "--force", id);
      const t0 = Date.now();
      await m.remove(id);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(4_500);
      expect(dirs.some(existsSync)).toBe(false);
      await waitFor(
        () => !existsSync(`/proc/${r.monitorPid}/status`) || /State:\s+Z/.test(readFileSync(`/proc/${r.monitorPid}/status`, "utf8")),
        5_000,
        "the monitor to be killed",
      );
      expect(existsSync(join(w.config.socketDir, id))).toBe(false);
    } finally {
      m.close();
    }
  });
});

describe("no_sync_log", () => {
  /** Starts strace on the monitor; resolves with its output once the monitor exited. */
  function traceFsync(pid: number) {
    const out = join(roots.path, `strace-${pid}.txt`);
    const p = Bun.spawn(["strace", "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync", "-o", out, "-p", String(pid)], { stdout: "ignore", stderr: "pipe" });
    return {
      ready: waitFor(
        () => existsSync(`/proc/${pid}/status`) && /TracerPid:\s+[1-9]/.test(readFileSync(`/proc/${pid}/status`, "utf8")),
        10_000,
        "strace to attach",
      ),
      /** The fsync calls on `path` (-y prints each fd's path: the exit file is synced too). */
      calls: async (path: string) => {
        await p.exited;
        return readFileSync(out, "utf8")
          .split("\n")
          .filter((l) => /\bf(data)?sync\(/.test(l) && l.includes(`<${path}>`));
      },
    };
  }

  test("the monitor fsyncs the log on reopen and at the end by default; not with no_sync_log", async () => {
    const seen: Record<string, number> = {};
    for (const handler of ["runc", "nosync"]) {
      const { podSandboxId, containerId, monitorPid } = await runIn(handler, { cmd: ["sh", "-c", "echo hello; sleep 3600"] });
      const t = traceFsync(monitorPid);
      await t.ready;
      await env.d.cri.reopenContainerLog({ containerId }); // rotation: the old file is synced first
      await env.d.cri.stopContainer({ containerId, timeout: 0n });
      const { logPath } = (await env.d.cri.containerStatus({ containerId })).status!;
      seen[handler] = (await t.calls(logPath)).length;
      expect(readFileSync(logPath, "utf8")).toMatch(/ stdout F hello\n$/);
      await env.d.cri.removePodSandbox({ podSandboxId });
    }
    expect(seen.runc).toBeGreaterThanOrEqual(2); // on reopen and at the end
    expect(seen.nosync).toBe(0);
  });
});
