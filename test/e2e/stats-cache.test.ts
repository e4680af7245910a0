// Stats with [crio.stats] collection_period > 0 on the compiled daemon: calls answer from the
// background snapshot (identical answers between refreshes, new values after one), and every
// Stream* RPC returns exactly what its unary twin returns from the same snapshot.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { waitFor } from "../harness.ts";
import { ctrConfig, podConfig, startEnv, type Env } from "../support/pods.ts";

setDefaultTimeout(60_000);
const root = process.getuid?.() === 0;
if (!root) console.warn("stats-cache e2e: skipped, needs root");

let env: Env;
const ids: string[] = [];

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Runs `f` until two calls around it agree (no background refresh in between), then returns its result. */
async function stable<T>(probe: () => Promise<unknown>, f: () => Promise<T>): Promise<T> {
  return await waitFor(
    async () => {
      const a = JSON.stringify(await probe(), (_k, v) => (typeof v === "bigint" ? v.toString() : v));
      const r = await f();
      const b = JSON.stringify(await probe(), (_k, v) => (typeof v === "bigint" ? v.toString() : v));
      return a === b ? r : undefined;
    },
    20_000,
    "an answer between two refreshes",
  );
}

beforeAll(async () => {
  if (!root) return;
  env = await startEnv({ config: "[crio.stats]\ncollection_period = 2\n" });
  await env.d.cri.pullImage({ image: { image: env.busybox } });
  for (let i = 0; i < 3; i++) {
    const pod = podConfig(`cache${i}`, env.d.dir, { labels: { cache: "yes" } });
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    const { containerId } = await env.d.cri.createContainer({
      podSandboxId,
      config: ctrConfig(`c${i}`, env.busybox, ["sleep", "3600"], {}, pod),
      sandboxConfig: pod,
    });
    await env.d.cri.startContainer({ containerId });
    ids.push(containerId);
  }
}, 120_000);

afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
});

describe.skipIf(!root)("stats with collection_period = 2", () => {
  const cpuTimes = async () => (await env.d.cri.listContainerStats({})).stats.map((s) => [s.attributes!.id, s.cpu?.timestamp]);

  test("answers come from the snapshot and are refreshed every period", async () => {
    // Once a refresh has seen the containers, two quick calls return the same sample.
    const first = await waitFor(
      async () => {
        const a = await cpuTimes();
        const b = await cpuTimes();
        return a.length === 3 && JSON.stringify(a, (_k, v) => String(v)) === JSON.stringify(b, (_k, v) => String(v)) ? a : undefined;
      },
      20_000,
      "a snapshot with the three containers",
    );
    const later = await waitFor(
      async () => {
        const t = await cpuTimes();
        return t.every(([id, ts]) => (ts as bigint) > (first.find(([i]) => i === id)![1] as bigint)) ? t : undefined;
      },
      10_000,
      "a refresh",
    );
    expect(later.map(([id]) => id).sort()).toEqual([...ids].sort());
    // A rate needs two samples: the second collection has one.
    const s = (await env.d.cri.containerStats({ containerId: ids[0]! })).stats!;
    expect(s.cpu!.usageNanoCores).toBeDefined();
  });

  test("each Stream* RPC equals its unary twin", async () => {
    const probe = () => cpuTimes();
    const [list, stream] = await stable(
      probe,
      async () =>
        [(await env.d.cri.listContainerStats({})).stats, (await collect(env.d.cri.streamContainerStats({}))).flatMap((m) => m.containerStats)] as const,
    );
    expect(stream).toEqual(list);
    const filter = { labelSelector: { cache: "yes" } };
    const [plist, pstream] = await stable(
      probe,
      async () =>
        [
          (await env.d.cri.listPodSandboxStats({ filter })).stats,
          (await collect(env.d.cri.streamPodSandboxStats({ filter }))).flatMap((m) => m.podSandboxStats),
        ] as const,
    );
    expect(plist).toHaveLength(3);
    expect(pstream).toEqual(plist);
    const [mlist, mstream] = await stable(
      probe,
      async () =>
        [
          (await env.d.cri.listPodSandboxMetrics({})).podMetrics,
          (await collect(env.d.cri.streamPodSandboxMetrics({}))).flatMap((m) => m.podSandboxMetrics),
        ] as const,
    );
    expect(mlist.length).toBeGreaterThanOrEqual(3);
    expect(mstream).toEqual(mlist);
  });
});
