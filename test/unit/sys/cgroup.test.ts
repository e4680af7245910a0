import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  cgroupDirsForPath,
  cgroupDirsForPid,
  cgroupDirsOf,
  cgroupFacts,
  detectCgroupLayout,
  expandSlice,
  parseProcCgroup,
  readCgroupValue,
  removeCgroupDirs,
} from "../../../src/sys/cgroup.ts";
import { parseMountinfo } from "../../../src/sys/mount.ts";

/** A mountinfo table whose cgroup mounts live under `root` (a temp dir standing in for /sys/fs/cgroup). */
function hybridTable(root: string) {
  return parseMountinfo(
    [
      `25 1 0:22 / / rw,relatime - ext4 /dev/vda rw`,
      `30 25 0:26 / ${root} rw - tmpfs tmpfs rw,mode=755`,
      `31 30 0:27 / ${root}/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct`,
      `32 30 0:28 / ${root}/memory rw,relatime - cgroup cgroup rw,memory`,
      `33 30 0:29 / ${root}/pids rw,relatime - cgroup cgroup rw,pids`,
      `34 30 0:30 / ${root}/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd`,
      `35 30 0:31 / ${root}/unified rw,relatime - cgroup2 cgroup2 rw`,
    ].join("\n"),
  );
}

function v2Table(root: string) {
  return parseMountinfo(`25 1 0:22 / / rw - ext4 /dev/vda rw\n40 25 0:40 / ${root} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate`);
}

function withTree(fn: (root: string) => void | Promise<void>) {
  return async () => {
    const root = mkdtempSync(join(tmpdir(), "cgroup-test-"));
    try {
      await fn(root);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  };
}

describe("detectCgroupLayout", () => {
  test("hybrid: v1 controllers plus a controller-less cgroup2", () => {
    const l = detectCgroupLayout(hybridTable("/sys/fs/cgroup"));
    expect(l.kind).toBe("hybrid");
    expect(Object.keys(l.v1).sort()).toEqual(["cpu", "cpuacct", "memory", "name=systemd", "pids"]);
    expect(l.v1.cpuacct?.mountPoint).toBe("/sys/fs/cgroup/cpu,cpuacct");
    expect(l.unified?.mountPoint).toBe("/sys/fs/cgroup/unified");
  });
  test("v2 unified and pure v1", () => {
    expect(detectCgroupLayout(v2Table("/sys/fs/cgroup")).kind).toBe("v2");
    expect(detectCgroupLayout(hybridTable("/x").filter((m) => m.fsType !== "cgroup2")).kind).toBe("v1");
  });
  test("this machine is readable", () => {
    expect(["v1", "hybrid", "v2"]).toContain(detectCgroupLayout().kind);
  });
});

describe("process cgroups", () => {
  const proc = parseProcCgroup(
    "9:name=systemd:/kubepods/crio-abc\n4:memory:/kubepods/crio-abc\n3:pids:/kubepods/crio-abc\n2:cpu,cpuacct:/kubepods/crio-abc\n0::/kubepods/crio-abc\n",
  );
  test("parse", () => {
    expect(proc[3]).toEqual({ hierarchy: 2, controllers: ["cpu", "cpuacct"], path: "/kubepods/crio-abc" });
    expect(proc[4]).toEqual({ hierarchy: 0, controllers: [], path: "/kubepods/crio-abc" });
  });
  test("directories on a hybrid layout: v2 first, co-mounted controllers once", () => {
    const dirs = cgroupDirsOf(detectCgroupLayout(hybridTable("/cg")), proc);
    expect(dirs).toEqual([
      "/cg/unified/kubepods/crio-abc",
      "/cg/systemd/kubepods/crio-abc",
      "/cg/memory/kubepods/crio-abc",
      "/cg/pids/kubepods/crio-abc",
      "/cg/cpu,cpuacct/kubepods/crio-abc",
    ]);
  });
  test("a mount whose root is not / (nested container view)", () => {
    const l = detectCgroupLayout(parseMountinfo("40 25 0:40 /kubepods /cg rw - cgroup2 cgroup2 rw"));
    expect(cgroupDirsOf(l, parseProcCgroup("0::/kubepods/crio-abc"))).toEqual(["/cg/crio-abc"]);
  });
  test("own process: the directories exist", () => {
    const dirs = cgroupDirsForPid(process.pid);
    expect(dirs.length).toBeGreaterThan(0);
    for (const d of dirs) expect(existsSync(d)).toBe(true);
    expect(() => cgroupDirsForPid(2 ** 22 + 7)).toThrow(expect.objectContaining({ kind: "not-found" }));
  });
});

describe("cgroupsPath → directories", () => {
  test("cgroupfs and systemd paths on v2 and hybrid", () => {
    expect(cgroupDirsForPath(detectCgroupLayout(v2Table("/cg")), "/kubepods/pod1/crio-abc")).toEqual(["/cg/kubepods/pod1/crio-abc"]);
    expect(cgroupDirsForPath(detectCgroupLayout(v2Table("/cg")), "kubepods-burstable-pod1.slice:crio:abc")).toEqual([
      "/cg/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/crio-abc.scope",
    ]);
    expect(cgroupDirsForPath(detectCgroupLayout(hybridTable("/cg")), "/p/crio-abc")).toEqual([
      "/cg/unified/p/crio-abc",
      "/cg/cpu,cpuacct/p/crio-abc",
      "/cg/memory/p/crio-abc",
      "/cg/pids/p/crio-abc",
      "/cg/systemd/p/crio-abc",
    ]);
  });
  test("expandSlice", () => {
    expect(expandSlice("system.slice")).toBe("/system.slice");
    expect(expandSlice("-.slice")).toBe("/");
    expect(() => expandSlice("a--b.slice")).toThrow(expect.objectContaining({ kind: "invalid-argument" }));
    expect(() => expandSlice("nope")).toThrow();
  });
});

describe("on a fixture tree", () => {
  test(
    "values, facts and removal (children first, missing dirs fine)",
    withTree(async (root) => {
      const layout = detectCgroupLayout(v2Table(root));
      writeFileSync(join(root, "cgroup.controllers"), "cpuset cpu io memory pids\n");
      const ctr = join(root, "kubepods", "pod1", "crio-abc");
      mkdirSync(join(ctr, "sub"), { recursive: true });
      writeFileSync(join(ctr, "memory.max"), "134217728\n");
      writeFileSync(join(ctr, "memory.swap.max"), "max\n");
      expect(readCgroupValue(ctr, "memory.max")).toBe("134217728");
      expect(readCgroupValue(ctr, "nope")).toBeUndefined();
      expect(cgroupFacts(layout, [ctr])).toEqual({ v2: true, swap: true, hugetlb: false, pids: true });
      // A real cgroupfs dir holds only interface files, which rmdir removes with it; a temp dir
      // needs them gone first, so only the empty subtree is removed here.
      rmSync(join(ctr, "memory.max"));
      rmSync(join(ctr, "memory.swap.max"));
      await removeCgroupDirs([...cgroupDirsForPath(layout, "/kubepods/pod1/crio-abc"), join(root, "missing")]);
      expect(existsSync(ctr)).toBe(false);
      expect(existsSync(join(root, "kubepods", "pod1"))).toBe(true);
    }),
  );

  test(
    "a busy cgroup times out with deadline-exceeded",
    withTree(async (root) => {
      const dir = join(root, "busy");
      mkdirSync(dir);
      writeFileSync(join(dir, "cgroup.procs"), "1\n"); // not empty → ENOTEMPTY, like EBUSY on cgroupfs
      await expect(removeCgroupDirs([dir], { timeoutMs: 50 })).rejects.toMatchObject({ kind: "deadline-exceeded" });
    }),
  );

  test(
    "v1 facts from the memory mount",
    withTree((root) => {
      mkdirSync(join(root, "memory"));
      writeFileSync(join(root, "memory", "memory.memsw.limit_in_bytes"), "max");
      expect(cgroupFacts(detectCgroupLayout(hybridTable(root)))).toEqual({ v2: false, swap: true, hugetlb: false, pids: true });
    }),
  );
});
