import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeptFiles, readOnce } from "../../../src/sys/kept-files.ts";

const fdCount = () => readdirSync("/proc/self/fd").length;

describe("KeptFiles", () => {
  test("a file's descriptor is kept per owner and read from offset 0 each time (new text, no new descriptor); release closes it", () => {
    const dir = mkdtempSync(join(tmpdir(), "kept-"));
    try {
      const f = join(dir, "a");
      writeFileSync(f, "one\n");
      const k = new KeptFiles();
      const before = fdCount();
      expect(k.read("c:1", f)).toBe("one\n");
      expect([k.size, fdCount()]).toEqual([1, before + 1]);
      writeFileSync(f, "two and more\n"); // the same inode, rewritten
      expect(k.read("c:1", f)).toBe("two and more\n");
      expect(k.size).toBe(1);
      expect(k.owners()).toEqual(["c:1"]);
      k.release("c:1");
      expect([k.size, fdCount(), k.owners()]).toEqual([0, before, []]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("descriptors are close-on-exec (no child process inherits them)", () => {
    const dir = mkdtempSync(join(tmpdir(), "kept-"));
    try {
      writeFileSync(join(dir, "a"), "x");
      const k = new KeptFiles();
      k.read("o", join(dir, "a"));
      const fd = readdirSync("/proc/self/fd").find((x) => {
        try {
          return readlinkSync(`/proc/self/fd/${x}`) === join(dir, "a");
        } catch {
          return false;
        }
      })!;
      const flags = Number.parseInt(/flags:\s*(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))![1]!, 8);
      expect(flags & 0o2000000).toBe(0o2000000); // O_CLOEXEC
      k.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an absent file is not looked up again until its absence expires; beyond the budget files are read and closed", () => {
    const dir = mkdtempSync(join(tmpdir(), "kept-"));
    try {
      let clock = 0;
      const k = new KeptFiles({ budget: 1, now: () => clock });
      const late = join(dir, "late");
      expect(k.read("o", late)).toBeUndefined();
      writeFileSync(late, "here");
      expect(k.read("o", late)).toBeUndefined(); // remembered absent
      clock += 60_000;
      expect(k.read("o", late)).toBe("here");
      writeFileSync(join(dir, "b"), "bee");
      const before = fdCount();
      expect(k.read("o", join(dir, "b"))).toBe("bee"); // over budget: open, read, close
      expect([k.size, fdCount()]).toEqual([1, before]);
      k.close();
      expect(k.size).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("readOnce reads a whole file; undefined when absent", () => {
    const dir = mkdtempSync(join(tmpdir(), "kept-"));
    try {
      const big = "x".repeat(100_000); // larger than the shared buffer
      writeFileSync(join(dir, "big"), big);
      expect(readOnce(join(dir, "big"))).toBe(big);
      expect(readOnce(join(dir, "nope"))).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // A real cgroup: its files are kernfs seq_files (ENODEV once the cgroup is removed).
  const unified = existsSync("/sys/fs/cgroup/cgroup.controllers")
    ? "/sys/fs/cgroup"
    : existsSync("/sys/fs/cgroup/unified/cgroup.procs")
      ? "/sys/fs/cgroup/unified"
      : "";
  test.skipIf(process.getuid?.() !== 0 || !unified)(
    "a cgroup removed while its file is kept: rmdir succeeds; a new cgroup at the path is read; none reads undefined",
    () => {
      const cg = join(unified, `kept-files-test-${process.pid}`);
      mkdirSync(cg);
      try {
        const k = new KeptFiles();
        const f = join(cg, "cgroup.max.depth");
        expect(k.read("c:1", f)).toBe("max\n");
        rmdirSync(cg); // an open cgroup file does not keep its cgroup
        mkdirSync(cg);
        writeFileSync(f, "3");
        expect(k.read("c:1", f)).toBe("3\n"); // ENODEV on the old descriptor: opened again by path
        expect(k.size).toBe(1);
        rmdirSync(cg);
        expect(k.read("c:1", f)).toBeUndefined();
        expect(k.size).toBe(0);
      } finally {
        if (existsSync(cg)) rmdirSync(cg);
      }
    },
  );
});
