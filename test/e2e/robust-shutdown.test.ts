// Bounded shutdown and streams that always end: SIGTERM with open exec, attach and port-forward
// sessions, GetContainerEvents subscribers and calls in flight, on a machine whose every core is
// busy; the daemon tells each to end and exits within its grace period, leaving no mount behind.
import { expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { CRIO, startDaemon, type TestDaemon } from "../harness.ts";
import { ctrConfig, podConfig, startEnv } from "../support/pods.ts";
import { WsClient } from "../support/streaming-client.ts";

/** The documented bound (README "Stopping"): 5 s of grace for calls in flight, plus exit; nothing here waits for the grace. */
const SHUTDOWN_BOUND_MS = 8_000;

test("StreamImages with an invalid reference ends INVALID_ARGUMENT over the socket", async () => {
  await using d = await startDaemon();
  const err = await (async () => {
    for await (const _ of d.cri.streamImages({ filter: { image: { image: "::Not//A:Reference::" } } }, { timeoutMs: 10_000 }));
  })().catch((e) => e);
  expect({ code: err?.code }).toEqual({ code: status.INVALID_ARGUMENT });
});

test("SIGTERM under CPU load with open streams and calls in flight: every stream ends, the daemon exits in its grace period and leaves no mount", async () => {
  await using env = await startEnv();
  const { d } = env;
  let d2: TestDaemon | undefined;
  await using _ = leaveNothing(d, () => d2);
  await d.cri.pullImage({ image: { image: env.busybox } });
  const pod = podConfig("shutdown", d.dir);
  const { podSandboxId } = await d.cri.runPodSandbox({ config: pod });
  const { containerId } = await d.cri.createContainer({
    podSandboxId,
    config: ctrConfig("c", env.busybox, ["sh", "-c", "while :; do echo hi; sleep 1; done"], { stdin: true }, pod),
    sandboxConfig: pod,
  });
  await d.cri.startContainer({ containerId });

  // open: an exec session, an attach session, a port-forward, 2 event subscribers, an ExecSync in flight
  const { url: execUrl } = await d.cri.exec({ containerId, cmd: ["sleep", "600"], stdin: true, stdout: true });
  const exec = (await WsClient.connect(execUrl, ["v5.channel.k8s.io"])).ws;
  const { url: attachUrl } = await d.cri.attach({ containerId, stdin: true, stdout: true });
  const attach = (await WsClient.connect(attachUrl, ["v5.channel.k8s.io"])).ws;
  const { url: pfUrl } = await d.cri.portForward({ podSandboxId, port: [80] });
  const pf = (await WsClient.connect(`${pfUrl}?ports=80`, ["v4.channel.k8s.io"])).ws;
  const events = [0, 1].map(() => drain(d.cri.getContainerEvents({}, { timeoutMs: 120_000 })));
  const execSync = d.cri.execSync({ containerId, cmd: ["sleep", "60"], timeout: 90n }, { timeoutMs: 120_000 }).then(
    () => status.OK,
    (e) => e.code as number,
  );
  await Bun.sleep(300); // let the ExecSync reach its monitor

  const busy = Array.from({ length: availableParallelism() }, () => Bun.spawn(["sh", "-c", "while :; do :; done"], { stdio: ["ignore", "ignore", "ignore"] }));
  try {
    const t0 = performance.now();
    d.proc.kill("SIGTERM");
    const code = await Promise.race([d.proc.exited, Bun.sleep(30_000).then(() => "still alive after 30 s")]);
    const ms = performance.now() - t0;
    console.log(`exited ${ms.toFixed(0)} ms after SIGTERM`);
    expect({ code, logs: d.logs().includes("Stopped") }).toEqual({ code: 0, logs: true });
    expect(ms).toBeLessThan(SHUTDOWN_BOUND_MS);
    // every stream was told to end: the event streams with OK, the sessions closed
    expect(await Promise.all(events)).toEqual([status.OK, status.OK]);
    expect(await Promise.race([Promise.all([exec.closed, attach.closed, pf.closed]).then(() => "closed"), Bun.sleep(5000).then(() => "open")])).toBe("closed");
    expect(await execSync).toBe(status.UNAVAILABLE); // answered at once, not after its 60 s
  } finally {
    for (const b of busy) b.kill("SIGKILL");
  }
  // only what the live pod needs stays mounted: its pinned namespaces (and the dir that holds them)
  expect(mountsBelow(d.runroot).filter((m) => !m.endsWith(`/${podSandboxId}`) && !m.endsWith(`/${podSandboxId}/shm`) && m !== `${d.runroot}/ns`)).toEqual([]);

  // the container outlived the daemon; a new daemon finds it and removes it; once stopped it leaves no mount
  d2 = await startDaemon({ dir: d.dir });
  expect((await d2.cri.listContainers({})).containers.map((c) => c.id)).toEqual([containerId]);
  await d2.cri.removePodSandbox({ podSandboxId });
  d2.cri.close();
  expect(await d2.stop("SIGTERM")).toBe(0);
  expect(mountsBelow(d.runroot)).toEqual([]);
});

test("crio wipe -f after a stop with a pod running leaves no mount, runc container or cgroup of it", async () => {
  await using env = await startEnv();
  const { d } = env;
  await using _ = leaveNothing(d, () => undefined);
  await d.cri.pullImage({ image: { image: env.busybox } });
  const pod = podConfig("wiped", d.dir);
  const { podSandboxId } = await d.cri.runPodSandbox({ config: pod });
  const { containerId } = await d.cri.createContainer({ podSandboxId, config: ctrConfig("c", env.busybox, ["sleep", "3600"], {}, pod), sandboxConfig: pod });
  await d.cri.startContainer({ containerId });
  d.cri.close();
  expect(await d.stop("SIGTERM")).toBe(0);
  expect(mountsBelow(d.runroot).length).toBeGreaterThan(0); // the running pod keeps its pins
  const w = Bun.spawnSync([CRIO, "--config", d.configFile, "--config-dir", d.configDir, "wipe", "-f"], { stderr: "pipe", stdout: "pipe" });
  expect({ code: w.exitCode, err: w.exitCode ? w.stderr.toString() : "" }).toEqual({ code: 0, err: "" });
  expect(mountsBelow(d.runroot)).toEqual([]);
  expect(Bun.spawnSync(["runc", "--root", d.runcRoot, "list", "-q"]).stdout.toString().trim()).toBe("");
  const cg = Bun.spawnSync(["sh", "-c", `find /sys/fs/cgroup -maxdepth 4 -type d \\( -name '*${containerId}*' -o -name '*${podSandboxId}*' \\) 2>/dev/null`])
    .stdout.toString()
    .trim();
  expect(cg).toBe("");
});

// --- internal ---

/**
 * When a test fails after its daemon stopped, the pod it left running would outlive the test: a
 * second daemon still up is told to remove its pods and stopped, then `crio wipe -f` removes what is left.
 */
function leaveNothing(d: TestDaemon, second: () => TestDaemon | undefined): AsyncDisposable {
  return {
    async [Symbol.asyncDispose]() {
      const d2 = second();
      if (d2 && d2.proc.exitCode === null && d2.proc.signalCode === null) {
        const { items } = await d2.cri.listPodSandbox({}, { timeoutMs: 10_000 }).catch(() => ({ items: [] }));
        for (const p of items) await d2.cri.removePodSandbox({ podSandboxId: p.id }, { timeoutMs: 60_000 }).catch(() => {});
        await d2[Symbol.asyncDispose]();
      }
      if (d.proc.exitCode !== null || d.proc.signalCode !== null) Bun.spawnSync([CRIO, "--config", d.configFile, "--config-dir", d.configDir, "wipe", "-f"]);
    },
  };
}

function mountsBelow(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m === dir || m.startsWith(dir + "/"));
}

async function drain(it: AsyncIterable<unknown>): Promise<number> {
  try {
    for await (const _ of it);
    return status.OK;
  } catch (e) {
    return (e as { code: number }).code;
  }
}
