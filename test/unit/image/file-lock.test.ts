import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileLock } from "../../../src/image/file-lock.ts";
import { RuntimeError } from "../../../src/errors.ts";

describe("FileLock", () => {
  test("excludes another holder of the same file until released; a waiter past its time gets deadline-exceeded", async () => {
    const dir = mkdtempSync(join(tmpdir(), "flock-"));
    try {
      const path = join(dir, "lock");
      const a = new FileLock(path);
      const b = new FileLock(path, 150);
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let entered!: () => void;
      const inA = new Promise<void>((r) => (entered = r));
      const first = a.with(async () => {
        entered();
        await held;
      });
      await inA;
      const err = await b.with(async () => "no").catch((e) => e);
      expect(err).toBeInstanceOf(RuntimeError);
      expect((err as RuntimeError).kind).toBe("deadline-exceeded");
      release();
      await first;
      expect(await new FileLock(path, 1000).with(async () => "got it")).toBe("got it");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("waits for a lock another process holds (flock(1)) and takes it once that process lets go", async () => {
    const dir = mkdtempSync(join(tmpdir(), "flock-"));
    try {
      const path = join(dir, "lock");
      const child = Bun.spawn(["flock", "-x", path, "-c", "echo held; sleep 0.3"], { stdout: "pipe" });
      const reader = child.stdout.getReader();
      await reader.read(); // "held"
      const t0 = performance.now();
      expect(await new FileLock(path, 10_000).with(async () => "after")).toBe("after");
      expect(performance.now() - t0).toBeGreaterThan(100);
      await child.exited;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("holders in one process run one at a time, in order", async () => {
    const dir = mkdtempSync(join(tmpdir(), "flock-"));
    try {
      const lock = new FileLock(join(dir, "lock"));
      const log: string[] = [];
      await Promise.all(
        [1, 2, 3].map((i) =>
          lock.with(async () => {
            log.push(`in ${i}`);
            await Bun.sleep(5);
            log.push(`out ${i}`);
          }),
        ),
      );
      expect(log).toEqual(["in 1", "out 1", "in 2", "out 2", "in 3", "out 3"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
