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

test("settles once the changes stop: a gc and the page release, compiled code kept", async () => {
  const r = recorder();
  const s = new Settler({ quietMs: 30, minIntervalMs: 0, steps: r.steps });
  for (let i = 0; i < 5; i++) {
    s.observe("RunPodSandbox");
    await Bun.sleep(5);
  }
  await waitFor(() => r.calls.length === 2, 5000, "a settle");
  await Bun.sleep(50);
  expect(r.calls).toEqual(["gc", "release"]);
  expect(s.count).toBe(1); // one burst, one settle
  s.close();
});

test("the start-up settle drops compiled code first; a change meanwhile does not lose that", async () => {
  const r = recorder();
  const s = new Settler({ quietMs: 30, minIntervalMs: 0, steps: r.steps });
  s.poke({ afterMs: 10, shrink: true });
  s.observe("PullImage"); // postpones it, still a shrinking one
  await waitFor(() => r.calls.length === 3, 5000, "a settle");
  expect(r.calls).toEqual(["shrink", "gc", "release"]);
  s.observe("CreateContainer");
  await waitFor(() => r.calls.length === 5, 5000, "the next settle");
  expect(r.calls.slice(3)).toEqual(["gc", "release"]);
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
  s.poke({ shrink: true });
  await Bun.sleep(100);
  expect(r.calls).toEqual([]);
  expect(s.count).toBe(0);
});
