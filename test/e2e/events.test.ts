// GetContainerEvents on the compiled daemon with real runc: a full container lifecycle arrives in
// order (an exit that happens while the subscriber is connected included) with the pod's status
// and the container statuses of the moment, infra containers are not reported, a subscriber that
// never reads stalls nothing, and with enable_pod_events = false (the default) the stream ends.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { ContainerEventType, ContainerState, type ContainerEventResponse } from "../../src/gen/runtime/v1/api_pb.ts";
import { startDaemon, waitFor } from "../harness.ts";
import { ctrConfig, podConfig, startEnv, type Env } from "../support/pods.ts";

setDefaultTimeout(60_000);
const root = process.getuid?.() === 0;
if (!root) console.warn("events e2e: skipped, needs root");

let env: Env;
const T = ContainerEventType;

/** A subscriber collecting every event into `got` until stopped. */
function subscribe() {
  const ac = new AbortController();
  const got: ContainerEventResponse[] = [];
  const done = (async () => {
    try {
      for await (const e of env.d.cri.getContainerEvents({}, { signal: ac.signal })) got.push(e);
    } catch (e) {
      if (!ac.signal.aborted) throw e;
    }
  })();
  return {
    got,
    of: (id: string) => got.filter((e) => e.containerId === id),
    async stop() {
      ac.abort();
      await done;
    },
  };
}

/** Creates a container in a fresh host-network pod and waits until `sub` saw its CREATED event (the subscription is live). */
async function warmUp(sub: ReturnType<typeof subscribe>) {
  const pod = podConfig("warm", env.d.dir);
  const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
  const { containerId } = await env.d.cri.createContainer({ podSandboxId, config: ctrConfig("warm", env.busybox, ["true"], {}, pod), sandboxConfig: pod });
  await waitFor(() => sub.of(containerId).length > 0, 20_000, "the warm-up CREATED event");
  await env.d.cri.removePodSandbox({ podSandboxId });
}

beforeAll(async () => {
  if (!root) return;
  env = await startEnv({ config: "[crio.runtime]\nenable_pod_events = true\n" });
  await env.d.cri.pullImage({ image: { image: env.busybox } });
}, 120_000);

afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
});

describe.skipIf(!root)("GetContainerEvents", () => {
  test("created, started, stopped (an exit while connected), deleted: in order, with pod and container statuses; no infra events", async () => {
    const sub = subscribe();
    await warmUp(sub);
    const pod = podConfig("ev", env.d.dir, { sharedPid: true }); // a shared PID namespace brings an infra container
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    const { containerId } = await env.d.cri.createContainer({
      podSandboxId,
      config: ctrConfig("ev", env.busybox, ["sh", "-c", "sleep 1; exit 3"], {}, pod),
      sandboxConfig: pod,
    });
    await env.d.cri.startContainer({ containerId });
    await waitFor(() => sub.of(containerId).some((e) => e.containerEventType === T.CONTAINER_STOPPED_EVENT), 20_000, "the STOPPED event");
    await env.d.cri.removeContainer({ containerId });
    await waitFor(() => sub.of(containerId).length >= 4, 20_000, "the DELETED event");
    await env.d.cri.removePodSandbox({ podSandboxId });
    await sub.stop();

    const evs = sub.of(containerId);
    expect(evs.map((e) => e.containerEventType)).toEqual([
      T.CONTAINER_CREATED_EVENT,
      T.CONTAINER_STARTED_EVENT,
      T.CONTAINER_STOPPED_EVENT,
      T.CONTAINER_DELETED_EVENT,
    ]);
    expect(evs.every((e) => e.podSandboxStatus?.id === podSandboxId && e.podSandboxStatus.metadata?.name === "ev")).toBe(true);
    const states = evs.map((e) => e.containersStatuses.map((s) => [s.id, s.state]));
    expect(states).toEqual([
      [[containerId, ContainerState.CONTAINER_CREATED]],
      [[containerId, ContainerState.CONTAINER_RUNNING]],
      [[containerId, ContainerState.CONTAINER_EXITED]],
      [],
    ]);
    expect(evs[2]!.containersStatuses[0]).toMatchObject({ exitCode: 3, reason: "Error" });
    expect(evs.map((e) => e.createdAt)).toEqual([...evs.map((e) => e.createdAt)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    expect(sub.got.some((e) => e.containerId === podSandboxId)).toBe(false); // the infra container
  });

  test("a subscriber that never reads does not stall RPCs or the other subscribers", async () => {
    const stuck = new AbortController();
    const never = env.d.cri.getContainerEvents({}, { signal: stuck.signal }) as unknown as { on(ev: "error", f: () => void): void };
    never.on("error", () => {}); // opened, never read; CANCELLED when the test ends it
    const sub = subscribe();
    await warmUp(sub);
    const pod = podConfig("busy", env.d.dir);
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const { containerId } = await env.d.cri.createContainer({ podSandboxId, config: ctrConfig(`c${i}`, env.busybox, ["true"], {}, pod), sandboxConfig: pod });
      await env.d.cri.startContainer({ containerId });
      ids.push(containerId);
      const t0 = performance.now();
      await env.d.cri.version({}, { timeoutMs: 5_000 });
      expect(performance.now() - t0).toBeLessThan(1_000);
    }
    for (const id of ids) await env.d.cri.removeContainer({ containerId: id });
    await waitFor(() => ids.every((id) => sub.of(id).some((e) => e.containerEventType === T.CONTAINER_DELETED_EVENT)), 20_000, "every DELETED event");
    await env.d.cri.removePodSandbox({ podSandboxId });
    for (const id of ids) {
      const kinds = sub.of(id).map((e) => e.containerEventType);
      expect(kinds[0]).toBe(T.CONTAINER_CREATED_EVENT);
      expect(kinds.at(-1)).toBe(T.CONTAINER_DELETED_EVENT);
      expect(kinds.indexOf(T.CONTAINER_STARTED_EVENT)).toBeLessThan(kinds.indexOf(T.CONTAINER_STOPPED_EVENT));
    }
    stuck.abort();
    await sub.stop();
  });

  test("with enable_pod_events = false (the default) the stream ends at once", async () => {
    await using d = await startDaemon();
    const got: unknown[] = [];
    const t0 = performance.now();
    for await (const e of d.cri.getContainerEvents({}, { timeoutMs: 10_000 })) got.push(e);
    expect(got).toEqual([]);
    expect(performance.now() - t0).toBeLessThan(5_000);
  });

  test("a connected subscriber does not hold up the daemon's graceful stop", async () => {
    await using d = await startDaemon({ config: "[crio.runtime]\nenable_pod_events = true\n" });
    const got: unknown[] = [];
    const ended = (async () => {
      for await (const e of d.cri.getContainerEvents({}, { timeoutMs: 30_000 })) got.push(e);
    })();
    await d.cri.version({}); // same connection: the stream is being served once this returns
    const t0 = performance.now();
    expect(await d.stop("SIGTERM")).toBe(0);
    await ended;
    expect(performance.now() - t0).toBeLessThan(5_000); // the stop's grace period is 10 s
    expect(got).toEqual([]);
  });
});
