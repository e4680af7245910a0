import { expect, test } from "bun:test";
import { SharedJobs } from "../../../src/image/shared-jobs.ts";
import { Semaphore } from "../../../src/image/semaphore.ts";

test("one job per key; progress reaches every waiter, including what the job reports at once", async () => {
  const jobs = new SharedJobs<string, number>();
  let runs = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const seenA: number[] = [];
  const seenB: number[] = [];
  const fn = async (_s: AbortSignal, progress: (n: number) => void) => {
    runs++;
    progress(1);
    await gate;
    progress(2);
    return "done";
  };
  const a = jobs.run("k", undefined, fn, (n) => seenA.push(n));
  const b = jobs.run("k", undefined, fn, (n) => seenB.push(n));
  release();
  expect(await Promise.all([a, b])).toEqual(["done", "done"]);
  expect([runs, seenA, seenB, jobs.size]).toEqual([1, [1, 2], [2], 0]);
});

test("the job is cancelled only when every waiter has given up", async () => {
  const jobs = new SharedJobs<string>();
  let jobSignal!: AbortSignal;
  const fn = (s: AbortSignal) => {
    jobSignal = s;
    return new Promise<string>((resolve, reject) => {
      s.addEventListener("abort", () => reject(s.reason));
      setTimeout(() => resolve("ok"), 200);
    });
  };
  const c1 = new AbortController();
  const c2 = new AbortController();
  const p1 = jobs.run("k", c1.signal, fn);
  const p2 = jobs.run("k", c2.signal, fn);
  c1.abort(new Error("first gave up"));
  await expect(p1).rejects.toThrow(/first gave up/);
  expect(jobSignal.aborted).toBe(false);
  c2.abort(new Error("second gave up"));
  await expect(p2).rejects.toThrow(/second gave up/);
  expect(jobSignal.aborted).toBe(true);
});

test("a semaphore bounds concurrency and lets a cancelled waiter leave the queue", async () => {
  const sem = new Semaphore(2);
  let running = 0;
  let peak = 0;
  const work = () =>
    sem.use(async () => {
      peak = Math.max(peak, ++running);
      await Bun.sleep(10);
      running--;
    });
  await Promise.all([work(), work(), work(), work(), work()]);
  expect(peak).toBe(2);
  const ac = new AbortController();
  const hold = sem.use(() => Bun.sleep(30));
  const hold2 = sem.use(() => Bun.sleep(30));
  const queued = sem.use(async () => "never", ac.signal);
  ac.abort(new Error("gone"));
  await expect(queued).rejects.toThrow("gone");
  await Promise.all([hold, hold2]);
});

test("idle() waits for a job whose caller gave up until its cleanup has run", async () => {
  const jobs = new SharedJobs<string>();
  const steps: string[] = [];
  const fn = (s: AbortSignal) =>
    new Promise<string>((_, reject) =>
      s.addEventListener("abort", () => {
        // cleanup takes a moment after the abort
        setTimeout(() => {
          steps.push("cleaned");
          reject(s.reason);
        }, 30);
      }),
    );
  const ac = new AbortController();
  const p = jobs.run("k", ac.signal, fn);
  ac.abort(new Error("interrupted"));
  await expect(p).rejects.toThrow("interrupted");
  expect(steps).toEqual([]); // the caller returned before the job wound down
  await jobs.idle();
  expect([steps, jobs.size]).toEqual([["cleaned"], 0]);
});

test("unwound() waits for a cancelled job's cleanup, not for a job others still want, and is bounded", async () => {
  const jobs = new SharedJobs<string>();
  const steps: string[] = [];
  const slowCleanup = (ms: number) => (s: AbortSignal) =>
    new Promise<string>((_, reject) => s.addEventListener("abort", () => setTimeout(() => (steps.push(`cleaned ${ms}`), reject(s.reason)), ms)));
  // cancelled: the only waiter gave up
  const ac = new AbortController();
  const p = jobs.run("a", ac.signal, slowCleanup(30));
  ac.abort(new Error("cancelled"));
  await expect(p).rejects.toThrow("cancelled");
  await jobs.unwound("a", 5000);
  expect(steps).toEqual(["cleaned 30"]);
  // still wanted by a second waiter: not waited for
  const one = new AbortController();
  const first = jobs.run("b", one.signal, () => new Promise<string>((r) => setTimeout(() => r("done"), 200)));
  const second = jobs.run("b", undefined, () => Promise.resolve("unused"));
  one.abort(new Error("gave up"));
  await expect(first).rejects.toThrow("gave up");
  const t0 = performance.now();
  await jobs.unwound("b", 5000);
  expect(performance.now() - t0).toBeLessThan(100);
  expect(await second).toBe("done");
  // bounded
  const late = new AbortController();
  const q = jobs.run("c", late.signal, slowCleanup(500));
  late.abort(new Error("x"));
  await expect(q).rejects.toThrow("x");
  const t1 = performance.now();
  await jobs.unwound("c", 50);
  expect(performance.now() - t1).toBeLessThan(300);
  await jobs.idle();
});
