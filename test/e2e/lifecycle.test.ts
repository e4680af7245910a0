// Pods and containers on the compiled daemon with real runc: the walkthrough of DESIGN §2 minus
// network and attach, exits, OOM, logs, exec, stop, filters, idempotency, bad input, cleanup.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status as grpc } from "@grpc/grpc-js";
import { existsSync, readFileSync, renameSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ContainerState, NamespaceMode, PodSandboxState } from "../../src/gen/runtime/v1/api_pb.ts";
import { waitFor } from "../harness.ts";
import { ctrConfig, logLines, podConfig, startEnv, type Env, type PodConfig } from "../support/pods.ts";

let env: Env;
beforeAll(async () => {
  env = await startEnv();
  await env.d.cri.pullImage({ image: { image: env.busybox } });
}, 120_000);
afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
});

async function runningContainer(name: string, cmd: string[], extra = {}, pod = podConfig(name, env.d.dir)) {
  const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
  const { containerId } = await env.d.cri.createContainer({ podSandboxId, config: ctrConfig(name, env.busybox, cmd, extra, pod), sandboxConfig: pod });
  await env.d.cri.startContainer({ containerId });
  return { podSandboxId, containerId, pod, logPath: join(pod.logDirectory!, `${name}.log`) };
}

async function waitExited(containerId: string) {
  return await waitFor(
    async () => {
      const { status } = await env.d.cri.containerStatus({ containerId });
      return status?.state === ContainerState.CONTAINER_EXITED ? status : undefined;
    },
    30_000,
    `container ${containerId} to exit`,
  );
}

describe("pods and containers", () => {
  test("the walkthrough: runp, create, start, status, logs, exec, stop, rm, stopp, rmp", async () => {
    const pod = podConfig("walk", env.d.dir, { sharedPid: true, labels: { app: "walk" } });
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    const ps = await env.d.cri.podSandboxStatus({ podSandboxId, verbose: true });
    expect(ps.status).toMatchObject({ id: podSandboxId, state: PodSandboxState.SANDBOX_READY, metadata: { name: "walk", namespace: "default" } });
    expect(JSON.parse(ps.info.info!).infraContainerId).toBe(podSandboxId); // shared PID namespace needs the infra container

    const cfg = ctrConfig("web", env.busybox, ["sh", "-c", "echo hello; echo oops >&2; exec sleep 3600"], { labels: { tier: "front" } }, pod);
    const { containerId } = await env.d.cri.createContainer({ podSandboxId, config: cfg, sandboxConfig: pod });
    expect((await env.d.cri.containerStatus({ containerId })).status?.state).toBe(ContainerState.CONTAINER_CREATED);
    await env.d.cri.startContainer({ containerId });
    const st = (await env.d.cri.containerStatus({ containerId, verbose: true })).status!;
    expect(st).toMatchObject({ state: ContainerState.CONTAINER_RUNNING, image: { image: env.busybox }, logPath: join(pod.logDirectory!, "web.log") });
    expect(st.startedAt).toBeGreaterThan(0n);

    const logPath = join(pod.logDirectory!, "web.log");
    const lines = await waitFor(() => (existsSync(logPath) && logLines(logPath).length >= 2 ? logLines(logPath) : undefined));
    expect(lines.map((l) => [l.stream, l.tag, l.text]).sort()).toEqual([
      ["stderr", "F", "oops"],
      ["stdout", "F", "hello"],
    ]);
    expect(lines[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);

    const ex = await env.d.cri.execSync({ containerId, cmd: ["sh", "-c", "echo out; echo err >&2; exit 7"], timeout: 10n });
    expect([new TextDecoder().decode(ex.stdout), new TextDecoder().decode(ex.stderr), ex.exitCode]).toEqual(["out\n", "err\n", 7]);

    const list = await env.d.cri.listContainers({ filter: { podSandboxId } });
    expect(list.containers.map((c) => c.id)).toEqual([containerId]);

    await env.d.cri.stopContainer({ containerId, timeout: 10n });
    const ex2 = await waitExited(containerId);
    expect(ex2.exitCode).toBe(143); // sh exec'd sleep: SIGTERM
    await env.d.cri.removeContainer({ containerId });
    await env.d.cri.stopPodSandbox({ podSandboxId });
    expect((await env.d.cri.podSandboxStatus({ podSandboxId })).status?.state).toBe(PodSandboxState.SANDBOX_NOTREADY);
    await env.d.cri.removePodSandbox({ podSandboxId });
    expect((await env.d.cri.listPodSandbox({ filter: { id: podSandboxId } })).items).toEqual([]);
  });

  test("a container that exits 3 reports 3 and reason Error; exit 0 reports Completed", async () => {
    const a = await runningContainer("exit3", ["sh", "-c", "exit 3"]);
    expect(await waitExited(a.containerId)).toMatchObject({ exitCode: 3, reason: "Error" });
    const b = await runningContainer("exit0", ["true"]);
    const st = await waitExited(b.containerId);
    expect(st).toMatchObject({ exitCode: 0, reason: "Completed" });
    expect(st.finishedAt).toBeGreaterThanOrEqual(st.startedAt);
  });

  test("an OOM-killed container reports OOMKilled", async () => {
    const c = await runningContainer("oom", ["sh", "-c", "x=a; while :; do x=$x$x$x$x; done"], {
      linux: { resources: { memoryLimitInBytes: 16n * 1024n * 1024n } },
    });
    expect(await waitExited(c.containerId)).toMatchObject({ reason: "OOMKilled", exitCode: 137 });
  });

  test("a long line without newline is logged as P chunks then F; ReopenContainerLog follows rotation", async () => {
    const c = await runningContainer("long", [
      "sh",
      "-c",
      "head -c 40000 /dev/zero | tr '\\0' x; echo; echo first; while :; do if [ -e /tmp/go ]; then echo second; rm /tmp/go; fi; sleep 0.05; done",
    ]);
    const lines = await waitFor(() => {
      const l = existsSync(c.logPath) ? logLines(c.logPath) : [];
      return l.some((x) => x.text === "first") ? l : undefined;
    });
    const long = lines.slice(
      0,
      lines.findIndex((l) => l.text === "first"),
    );
    expect(long.length).toBeGreaterThan(1);
    expect(long.slice(0, -1).every((l) => l.tag === "P")).toBe(true);
    expect(long.at(-1)!.tag).toBe("F");
    expect(long.map((l) => l.text).join("")).toBe("x".repeat(40000));
    renameSync(c.logPath, c.logPath + ".1");
    await env.d.cri.reopenContainerLog({ containerId: c.containerId });
    await env.d.cri.execSync({ containerId: c.containerId, cmd: ["touch", "/tmp/go"], timeout: 5n });
    const after = await waitFor(() => (existsSync(c.logPath) && logLines(c.logPath).some((l) => l.text === "second") ? logLines(c.logPath) : undefined));
    expect(after.map((l) => l.text)).toEqual(["second"]);
  });

  test("ExecSync honours its timeout by killing the process", async () => {
    const c = await runningContainer("exect", ["sleep", "3600"]);
    const t0 = Date.now();
    const err = await env.d.cri.execSync({ containerId: c.containerId, cmd: ["sleep", "30"], timeout: 1n }).catch((e) => e);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(err.code).toBe(grpc.DEADLINE_EXCEEDED);
    const ps = await env.d.cri.execSync({ containerId: c.containerId, cmd: ["ps", "-o", "args"], timeout: 5n });
    expect(new TextDecoder().decode(ps.stdout)).not.toContain("sleep 30");
  });

  test("an ExecSync running when its container stops gets the exec's exit status, not an error", async () => {
    for (let i = 0; i < 5; i++) {
      const c = await runningContainer(`exstop${i}`, ["sleep", "3600"]);
      const exec = env.d.cri.execSync({ containerId: c.containerId, cmd: ["sleep", "30"], timeout: 20n });
      // the exec runs: its `sleep 30` is in the container's cgroup (a fixed sleep is not enough on a
      // loaded machine, where `runc exec` may still be joining the namespaces when the stop comes)
      await waitFor(() => execRunning(c.containerId, "sleep\u000030\u0000"), 20_000, "the exec's process to run");
      await env.d.cri.stopContainer({ containerId: c.containerId, timeout: 0n });
      // killed with the container's pid namespace: SIGKILL, 128 + 9
      expect((await exec).exitCode).toBe(137);
    }
  });

  test("stop gives a process that ignores SIGTERM its grace period, then SIGKILL", async () => {
    const c = await runningContainer("stubborn", ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"]);
    await waitFor(() => existsSync(c.logPath) && readFileSync(c.logPath, "utf8").includes("ready"));
    const t0 = Date.now();
    await env.d.cri.stopContainer({ containerId: c.containerId, timeout: 2n });
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(took).toBeLessThan(15_000);
    expect((await env.d.cri.containerStatus({ containerId: c.containerId })).status).toMatchObject({ state: ContainerState.CONTAINER_EXITED, exitCode: 137 });
  });

  test("list filters: id prefix, state, pod, labels", async () => {
    const a = await runningContainer("fa", ["sleep", "3600"], { labels: { group: "x", which: "a" } });
    const pod = podConfig("fb", env.d.dir, { labels: { podlabel: "yes" } });
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    const { containerId: b } = await env.d.cri.createContainer({
      podSandboxId,
      config: ctrConfig("fb", env.busybox, ["sleep", "3600"], { labels: { group: "x", which: "b" } }),
      sandboxConfig: pod,
    });
    const ids = async (filter: object) => (await env.d.cri.listContainers({ filter })).containers.map((c) => c.id).sort();
    expect(await ids({ id: a.containerId.slice(0, 12) })).toEqual([a.containerId]);
    expect(await ids({ labelSelector: { group: "x" } })).toEqual([a.containerId, b].sort());
    expect(await ids({ labelSelector: { which: "b" } })).toEqual([b]);
    expect(await ids({ state: { state: ContainerState.CONTAINER_CREATED }, labelSelector: { group: "x" } })).toEqual([b]);
    expect(await ids({ podSandboxId: a.podSandboxId })).toEqual([a.containerId]);
    const pods = await env.d.cri.listPodSandbox({ filter: { labelSelector: { podlabel: "yes" } } });
    expect(pods.items.map((p) => p.id)).toEqual([podSandboxId]);
    expect((await env.d.cri.listPodSandbox({ filter: { state: { state: PodSandboxState.SANDBOX_NOTREADY } } })).items.map((p) => p.id)).not.toContain(
      podSandboxId,
    );
  });

  test("stop and remove are idempotent; unknown ids are NOT_FOUND; bad configs are INVALID_ARGUMENT", async () => {
    const c = await runningContainer("idem", ["sleep", "3600"]);
    await env.d.cri.stopContainer({ containerId: c.containerId, timeout: 0n });
    await env.d.cri.stopContainer({ containerId: c.containerId, timeout: 0n });
    await env.d.cri.removeContainer({ containerId: c.containerId });
    await env.d.cri.removeContainer({ containerId: c.containerId });
    await env.d.cri.stopPodSandbox({ podSandboxId: c.podSandboxId });
    await env.d.cri.stopPodSandbox({ podSandboxId: c.podSandboxId });
    await env.d.cri.removePodSandbox({ podSandboxId: c.podSandboxId });
    await env.d.cri.removePodSandbox({ podSandboxId: c.podSandboxId });
    await env.d.cri.stopContainer({ containerId: "nope", timeout: 0n });
    const code = async (p: Promise<unknown>) => ((await p.catch((e) => e)) as { code: number }).code;
    expect(await code(env.d.cri.containerStatus({ containerId: "f".repeat(64) }))).toBe(grpc.NOT_FOUND);
    expect(await code(env.d.cri.podSandboxStatus({ podSandboxId: "f".repeat(64) }))).toBe(grpc.NOT_FOUND);
    expect(await code(env.d.cri.startContainer({ containerId: "../../etc" }))).toBe(grpc.NOT_FOUND);
    expect(await code(env.d.cri.runPodSandbox({ config: { metadata: { name: "", namespace: "x" } } }))).toBe(grpc.INVALID_ARGUMENT);
    const badSysctl = {
      ...podConfig("badsysctl", env.d.dir),
      linux: { sysctls: { "kernel.panic": "1" }, securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER } } },
    } as PodConfig;
    expect(await code(env.d.cri.runPodSandbox({ config: badSysctl }))).toBe(grpc.INVALID_ARGUMENT);
    const pod = podConfig("badctr", env.d.dir);
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    expect(await code(env.d.cri.createContainer({ podSandboxId, config: ctrConfig("x", "", ["true"]), sandboxConfig: pod }))).toBe(grpc.INVALID_ARGUMENT);
    expect(await code(env.d.cri.createContainer({ podSandboxId, config: ctrConfig("y", "127.0.0.1:1/missing:1", ["true"]), sandboxConfig: pod }))).toBe(
      grpc.NOT_FOUND,
    );
    expect(
      await code(
        env.d.cri.createContainer({ podSandboxId, config: ctrConfig("z", env.busybox, ["true"], { logPath: "../../escape.log" }), sandboxConfig: pod }),
      ),
    ).toBe(grpc.INVALID_ARGUMENT);
    // an executable name no kernel takes (the fuzzer's 70 kB one made runc's error fill the
    // container's stderr pipe, and the create hung until container_create_timeout)
    expect(
      await code(
        env.d.cri.createContainer({ podSandboxId, config: ctrConfig("z", env.busybox, ["a".repeat(70_000)]), sandboxConfig: pod }, { timeoutMs: 10_000 }),
      ),
    ).toBe(grpc.INVALID_ARGUMENT);
    // a failed create leaves nothing: the name is free again and no container is listed
    expect((await env.d.cri.listContainers({ filter: { podSandboxId } })).containers).toEqual([]);
    const ok = await env.d.cri.createContainer({ podSandboxId, config: ctrConfig("z", env.busybox, ["true"]), sandboxConfig: pod });
    expect(ok.containerId).toHaveLength(64);
  });

  test("nothing is left behind after remove: mounts, namespaces, processes, files", async () => {
    const c = await runningContainer("clean", ["sleep", "3600"], {}, podConfig("clean", env.d.dir, { sharedPid: true }));
    const mountsBefore = readFileSync("/proc/self/mountinfo", "utf8");
    expect(mountsBefore).toContain(c.containerId);
    await env.d.cri.stopPodSandbox({ podSandboxId: c.podSandboxId });
    await env.d.cri.removePodSandbox({ podSandboxId: c.podSandboxId });
    const mounts = readFileSync("/proc/self/mountinfo", "utf8");
    expect(mounts).not.toContain(c.containerId);
    expect(mounts).not.toContain(c.podSandboxId);
    const ps = Bun.spawnSync(["ps", "-eo", "args"]).stdout.toString();
    expect(ps).not.toContain(c.containerId);
    for (const sub of ["containers", "sandboxes", "storage"]) {
      const dir = join(env.d.root, sub);
      if (existsSync(dir)) expect(readdirSync(dir).filter((n) => n === c.containerId || n === c.podSandboxId)).toEqual([]);
    }
    const runDirs = ["containers", "sandboxes", "exits"].map((s) => join(env.d.runroot, s)).filter(existsSync);
    for (const dir of runDirs) expect(readdirSync(dir).filter((n) => n.startsWith(c.containerId) || n.startsWith(c.podSandboxId))).toEqual([]);
    const runc = Bun.spawnSync(["runc", "--root", env.d.runcRoot, "list", "-q"]).stdout.toString();
    expect(runc).not.toContain(c.containerId);
    const cg = Bun.spawnSync([
      "find",
      "/sys/fs/cgroup/memory",
      "/sys/fs/cgroup/pids",
      "/sys/fs/cgroup/unified",
      "-maxdepth",
      "5",
      "-name",
      `*${c.containerId}*`,
    ]).stdout.toString();
    expect(cg).toBe("");
  });
});

/** A process with this exact command line (NUL-separated) runs in the cgroup of container `id`. */
function execRunning(id: string, cmdline: string): boolean {
  return readdirSync("/proc").some((p) => {
    if (!/^\d+$/.test(p)) return false;
    try {
      return readFileSync(`/proc/${p}/cmdline`, "utf8") === cmdline && readFileSync(`/proc/${p}/cgroup`, "utf8").includes(id);
    } catch {
      return false;
    }
  });
}
