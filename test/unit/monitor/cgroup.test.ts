import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultHandler, defaults } from "../../../src/config/schema.ts";
import { validate } from "../../../src/config/validate.ts";
import { monitorCgroupPath, placeMonitor, removeMonitorCgroup, scopeCommand } from "../../../src/monitor/cgroup.ts";
import type { CgroupLayout } from "../../../src/sys/cgroup.ts";

describe("monitor_cgroup", () => {
  test('the config check follows CRI-O: cgroupfs takes "" or "pod"; systemd "", "pod" or a slice', () => {
    const check = (manager: "cgroupfs" | "systemd", setting: string) => {
      const d = defaults();
      const c = {
        ...d,
        runtime: { ...d.runtime, cgroupManager: manager, defaultRuntime: "runc", runtimes: { runc: { ...defaultHandler("runc"), monitorCgroup: setting } } },
      };
      return () => validate(c as typeof d);
    };
    for (const ok of ["", "pod", "system.slice"]) expect(check("cgroupfs", ok)).not.toThrow();
    for (const ok of ["", "pod", "system.slice", "kubepods-burstable.slice"]) expect(check("systemd", ok)).not.toThrow();
    for (const bad of ["kubepods.slice", "/crio", "bogus"])
      expect(check("cgroupfs", bad)).toThrow(/crio\.runtime\.runtimes\.runc\.monitor_cgroup.*"pod" or ""/);
    for (const bad of ["bogus", "/system.slice/x", "a.scope"]) expect(check("systemd", bad)).toThrow(/monitor_cgroup.*systemd slice/);
  });

  test("cgroupfs path: <parent>/crio-conmon-<id>, /crio without a parent; a parent with .. is refused", () => {
    expect(monitorCgroupPath("/kubepods/burstable/pod1", "abc")).toBe("/kubepods/burstable/pod1/crio-conmon-abc");
    expect(monitorCgroupPath("", "abc")).toBe("/crio/crio-conmon-abc");
    expect(() => monitorCgroupPath("/kubepods/../..", "abc")).toThrow(/leaves the cgroup tree/);
  });

  test("systemd: a transient scope with the pid, delegated, in the slice (busctl argv)", () => {
    const argv = scopeCommand("crio-conmon-abc.scope", "kubepods-pod1.slice", 4242);
    expect(argv.slice(0, 8)).toEqual([
      "busctl",
      "call",
      "--system",
      "org.freedesktop.systemd1",
      "/org/freedesktop/systemd1",
      "org.freedesktop.systemd1.Manager",
      "StartTransientUnit",
      "ssa(sv)a(sa(sv))",
    ]);
    expect(argv.slice(8).join(" ")).toBe(
      "crio-conmon-abc.scope fail 4 Slice s kubepods-pod1.slice PIDs au 1 4242 Delegate b true DefaultDependencies b false 0",
    );
  });

  test("cgroupfs placement over a fixture tree: every hierarchy, cpuset inherited, recorded and removed", async () => {
    const root = mkdtempSync(join(tmpdir(), "moncg-"));
    try {
      const mnt = (n: string) => join(root, n);
      for (const n of ["unified", "cpuset", "memory"]) mkdirSync(mnt(n), { recursive: true });
      writeFileSync(join(mnt("cpuset"), "cpuset.cpus"), "0-1\n");
      writeFileSync(join(mnt("cpuset"), "cpuset.mems"), "0\n");
      const layout: CgroupLayout = {
        kind: "hybrid",
        v1: { cpuset: { mountPoint: mnt("cpuset"), root: "/" }, memory: { mountPoint: mnt("memory"), root: "/" } },
        unified: { mountPoint: mnt("unified"), root: "/" },
      };
      const monDir = join(root, "mon");
      mkdirSync(monDir);
      const path = await placeMonitor({ manager: "cgroupfs", setting: "pod", parent: "/pods", id: "abc" }, 4242, monDir, layout);
      expect(path).toBe("/pods/crio-conmon-abc");
      for (const n of ["unified", "cpuset", "memory"]) expect(readFileSync(join(mnt(n), "pods/crio-conmon-abc/cgroup.procs"), "utf8")).toBe("4242");
      expect(readFileSync(join(mnt("cpuset"), "pods/cpuset.cpus"), "utf8")).toBe("0-1");
      expect(readFileSync(join(mnt("cpuset"), "pods/crio-conmon-abc/cpuset.mems"), "utf8")).toBe("0");
      const rec = JSON.parse(readFileSync(join(monDir, "cgroup.json"), "utf8"));
      expect(rec.dirs).toHaveLength(3);

      // real cgroupfs dirs hold only kernel files, which rmdir ignores; a fixture's must go first
      for (const d of rec.dirs as string[]) for (const f of ["cgroup.procs", "cpuset.cpus", "cpuset.mems"]) rmSync(join(d, f), { force: true });
      await removeMonitorCgroup(monDir);
      for (const d of rec.dirs as string[]) expect(existsSync(d)).toBe(false);
      expect(existsSync(join(mnt("memory"), "pods"))).toBe(true); // the parent is the pod's (the kubelet's)

      // a record pointing at something placeMonitor did not make is ignored
      mkdirSync(join(mnt("memory"), "other"));
      writeFileSync(join(monDir, "cgroup.json"), JSON.stringify({ dirs: [join(mnt("memory"), "other")] }));
      await removeMonitorCgroup(monDir);
      expect(existsSync(join(mnt("memory"), "other"))).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
