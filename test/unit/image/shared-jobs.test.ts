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
