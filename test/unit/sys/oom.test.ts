import { expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { counterFile, OomWatch, oomKills } from "../../../src/sys/oom.ts";

const HYBRID = [
  "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
  "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
  "36 31 0:33 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
  "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
].join("\n");

test("cgroup v1 memory controller wins in hybrid mode", () => {
  const cg = "4:memory:/pods/ctr1\n2:cpu,cpuacct:/pods/ctr1\n0::/pods/ctr1\n";
  expect(counterFile(cg, HYBRID)).toBe("/sys/fs/cgroup/memory/pods/ctr1/memory.oom_control");
});

test("cgroup v2, and a mount whose root is not /", () => {
  const v2 = "22 1 0:20 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate";
  expect(counterFile("0::/kubepods/x\n", v2)).toBe("/sys/fs/cgroup/kubepods/x/memory.events");
  const rooted = "35 31 0:32 /outer /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory";
  expect(counterFile("4:memory:/outer/inner\n", rooted)).toBe("/sys/fs/cgroup/memory/inner/memory.oom_control");
  expect(counterFile("4:memory:/elsewhere\n", rooted)).toBeUndefined();
  expect(counterFile("", HYBRID)).toBeUndefined();
});

test("counts oom_kill in both file formats", () => {
  expect(oomKills("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")).toBe(3);
  expect(oomKills("low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\noom_group_kill 0\n")).toBe(1);
  expect(oomKills("oom 1\n")).toBeUndefined();
});

test("a watch compares with the count it started from", () => {
  const proc = mkdtempSync(join(tmpdir(), "crio-oom-"));
  try {
    const cgroupDir = join(proc, "cg");
    mkdirSync(join(proc, "7"), { recursive: true });
    mkdirSync(join(proc, "self"), { recursive: true });
    mkdirSync(cgroupDir, { recursive: true });
    writeFileSync(join(proc, "7", "cgroup"), "0::/\n");
    writeFileSync(join(proc, "self", "mountinfo"), `22 1 0:20 / ${cgroupDir} rw - cgroup2 cgroup2 rw`);
    writeFileSync(join(cgroupDir, "memory.events"), "oom 4\noom_kill 4\n");
    const w = OomWatch.forPid(7, proc)!;
    expect([w.baseline, w.killed()]).toEqual([4, false]);
    writeFileSync(join(cgroupDir, "memory.events"), "oom 5\noom_kill 5\n");
    expect(w.killed()).toBe(true);
    rmSync(join(cgroupDir, "memory.events"));
    expect(w.killed()).toBe(false); // the cgroup is gone: nothing to say
  } finally {
    rmSync(proc, { recursive: true, force: true });
  }
});
