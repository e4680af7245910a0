import { expect, test } from "bun:test";
import { LayerCache } from "../../../src/stats/layer-cache.ts";

test("a layer's value is served until its own age bound (maxAge + a per-container share of the spread), then refreshed by one walk in the background", async () => {
  let clock = 0;
  const walks: string[] = [];
  let bytes = 100;
  const cache = new LayerCache(
    async (id) => (walks.push(id), { bytes, inodes: 1, mountpoint: `/m/${id}` }),
    30_000,
    600_000,
    () => clock,
    30_000,
  );
  const ids = Array.from({ length: 50 }, (_, i) => `c${i}`);
  for (const id of ids) expect((await cache.get(id))?.bytes).toBe(100); // the first request waits for its walk
  expect(walks.length).toBe(50);
  bytes = 200;
  clock = 29_999;
  for (const id of ids) expect((await cache.get(id))?.bytes).toBe(100);
  expect(walks.length).toBe(50); // none is older than its bound yet
  // every 10 s a few are refreshed, not all at once; by 60 s each was walked once more
  const perStep: number[] = [];
  for (clock = 30_000; clock <= 60_000; clock += 10_000) {
    const before = walks.length;
    for (const id of ids) await cache.get(id); // stale values are served while the walk runs
    await Bun.sleep(0);
    perStep.push(walks.length - before);
  }
  expect(perStep.reduce((a, b) => a + b, 0)).toBe(50);
  expect(Math.max(...perStep)).toBeLessThan(50);
  const v = await cache.get("c0");
  expect([v?.bytes, v!.at <= clock]).toEqual([200, true]); // carries the time of its walk
});

test("without a spread every value is refreshed at maxAge; a failed walk keeps the last value; unused entries are forgotten", async () => {
  let clock = 0;
  let fail = false;
  const cache = new LayerCache(
    async () => {
      if (fail) throw new Error("gone");
      return { bytes: 1, inodes: 1, mountpoint: "/m" };
    },
    10_000,
    60_000,
    () => clock,
  );
  expect((await cache.get("a"))?.at).toBe(0);
  clock = 10_000;
  fail = true;
  expect((await cache.get("a"))?.at).toBe(0); // stale, refresh failed: the last value
  await Bun.sleep(0);
  clock = 100_000;
  cache.prune();
  fail = false;
  expect((await cache.get("a"))?.at).toBe(100_000); // forgotten: measured anew
});
