import { expect, test } from "bun:test";
import { waitFor } from "../../harness.ts";
import { Settler, type SettleSteps } from "../../../src/daemon/settle.ts";

function recorder(): { steps: SettleSteps; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    steps: {
      shrink: () => calls.push("shrink"),
      gc: () => calls.push("gc"),
      release: () => calls.push("release"),
    },
  };
}

test("settles once the changes stop: shrink, then gc and the page release", async () => {
  const r = recorder();
  const s = new Settler({ quietMs: 30, minIntervalMs: 0, steps: r.steps });
  for (let i = 0; i < 5; i++) {
    s.observe("RunPodSandbox");
    await Bun.sleep(5);
  }
  await waitFor(() => r.calls.length === 3, 5000, "a settle");
  expect(r.calls).toEqual(["shrink", "gc", "release"]);
  expect(s.count).toBe(1); // one burst, one settle
  s.close();
});

test("reads do not count as changes; changes after a settle wait for the minimum interval", async () => {
  const r = recorder();
  const s = new Settler({ quietMs: 10, minIntervalMs: 400, steps: r.steps });
  for (const m of ["ListPodSandbox", "ListContainers", "Status", "ExecSync", "ContainerStats", "Version"]) s.observe(m);
  await Bun.sleep(60);
  expect(r.calls).toEqual([]);
  s.poke();
  await waitFor(() => s.count === 1, 5000, "the first settle");
  const first = performance.now();
  s.observe("CreateContainer");
  await waitFor(() => s.count === 2, 5000, "the second settle");
  expect(performance.now() - first).toBeGreaterThanOrEqual(390);
  s.close();
});

test("close cancels a pending settle", async () => {
  const r = recorder();
  const s = new Settler({ quietMs: 10, minIntervalMs: 0, steps: r.steps });
  s.observe("PullImage");
  s.close();
  s.poke();
  await Bun.sleep(100);
  expect(r.calls).toEqual([]);
  expect(s.count).toBe(0);
});
