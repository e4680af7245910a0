import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { dirsForPath, dirsForPid, dirsFromProc, relativeOf } from "../../../src/stats/cgroup-dirs.ts";
import { parseKeyValues, parsePsi, readSample, sumSamples } from "../../../src/stats/cgroup-sample.ts";
import { readProcesses } from "../../../src/stats/process-sample.ts";
import { parseProcCgroup } from "../../../src/sys/cgroup.ts";
import { tree, writeCgroup, writeProc } from "./fixtures.ts";

const now = () => 1_700_000_000_000.5;
const MB = 1024 * 1024;

describe("cgroup directories", () => {
  test("hybrid: one directory per v1 controller plus the unified one; systemd slices expand", () => {
    using t = tree("hybrid");
    const lines = parseProcCgroup(
      "9:name=systemd:/x\n8:pids:/kubepods/pod1/crio-a\n4:memory:/kubepods/pod1/crio-a\n2:cpuacct:/kubepods/pod1/crio-a\n1:cpu:/kubepods/pod1/crio-a\n0::/kubepods/pod1/crio-a\n",
    );
    expect(dirsFromProc(t.layout, lines)).toEqual({
      mode: "v1",
      unified: join(t.cg, "unified/kubepods/pod1/crio-a"),
      cpu: join(t.cg, "cpu/kubepods/pod1/crio-a"),
      cpuacct: join(t.cg, "cpuacct/kubepods/pod1/crio-a"),
      memory: join(t.cg, "memory/kubepods/pod1/crio-a"),
      pids: join(t.cg, "pids/kubepods/pod1/crio-a"),
    });
    expect(dirsForPath(t.layout, "kubepods-burstable-pod1.slice").memory).toBe(
      join(t.cg, "memory/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice"),
    );
    expect(relativeOf("kubepods-pod1.slice:crio:abc")).toBe("/kubepods.slice/kubepods-pod1.slice/crio-abc.scope");
    expect(relativeOf("/kubepods/pod1")).toBe("/kubepods/pod1");
  });

  test("v2: only the unified directory", () => {
    using t = tree("v2");
    expect(dirsFromProc(t.layout, parseProcCgroup("0::/crio/crio-a\n"))).toEqual({ mode: "v2", unified: join(t.cg, "crio/crio-a") });
    expect(dirsForPath(t.layout, "/kubepods/pod1")).toEqual({ mode: "v2", unified: join(t.cg, "kubepods/pod1") });
  });

  test("a process that is gone has no directories", () => {
    using t = tree("v2");
    writeProc(t, 42, "/crio/crio-a");
    expect(dirsForPid(t.layout, 42, t.proc)?.unified).toBe(join(t.cg, "crio/crio-a"));
    expect(dirsForPid(t.layout, 43, t.proc)).toBeUndefined();
  });
});

describe.each(["hybrid", "v2"] as const)("readSample on %s", (kind) => {
  test("cpu, memory (working set = usage - inactive_file), swap, pids, limits, oom, spec", () => {
    using t = tree(kind);
    writeCgroup(t, "/crio/crio-a", {
      usageNs: 5e9,
      userNs: 3e9,
      systemNs: 2e9,
      memUsage: 80 * MB,
      inactiveFile: 20 * MB,
      rss: 50 * MB,
      cache: 25 * MB,
      limit: 128 * MB,
      pids: 3,
      swap: MB,
      oomKills: 2,
    });
    const s = readSample(dirsForPath(t.layout, "/crio/crio-a"), { now, detail: true, hugetlb: true })!;
    expect(s.at).toBe(now());
    expect(s.cpu).toMatchObject({ usageNs: 5e9, userNs: 3e9, systemNs: 2e9, periods: 10, throttledPeriods: 2, throttledNs: 5e6 });
    expect(s.memory).toMatchObject({
      usage: 80 * MB,
      workingSet: 60 * MB,
      rss: 50 * MB,
      cache: 25 * MB,
      mappedFile: 4096,
      kernel: 8192,
      pageFaults: 100,
      majorPageFaults: 3,
      failcnt: 4,
      limit: 128 * MB,
      swapUsage: MB,
      oomKills: 2,
      maxUsage: 80 * MB + 100,
    });
    expect(s.memory!.swapLimit).toBeUndefined();
    expect(s.pids).toEqual({ current: 3, limit: undefined });
    expect(s.cpuSpec).toEqual({ shares: kind === "v2" ? 2597 : 1024, periodUs: 100000, quotaUs: 50000 });
    if (kind === "v2")
      expect(s.hugetlb).toEqual([
        { pageSize: "1GB", usage: 0, maxUsage: undefined },
        { pageSize: "2MB", usage: 2097152, maxUsage: undefined },
      ]);
  });

  test("without detail only what CRI stats report is read", () => {
    using t = tree(kind);
    writeCgroup(t, "/crio/crio-a", {
      usageNs: 5e9,
      userNs: 3e9,
      memUsage: 80 * MB,
      inactiveFile: 20 * MB,
      rss: 50 * MB,
      limit: 128 * MB,
      pids: 3,
      swap: MB,
      oomKills: 2,
    });
    const s = readSample(dirsForPath(t.layout, "/crio/crio-a"), { now })!;
    // v2's cpu.stat is one file holding everything; v1 spreads it over several.
    expect(s.cpu).toMatchObject(kind === "v2" ? { usageNs: 5e9, userNs: 3e9, periods: 10 } : { usageNs: 5e9, userNs: undefined, periods: 0 });
    expect(s.memory).toMatchObject({ usage: 80 * MB, workingSet: 60 * MB, limit: 128 * MB, swapUsage: MB, oomKills: undefined, maxUsage: undefined });
    expect(s.cpuSpec).toBeUndefined();
  });

  test("unlimited memory has no limit; the working set never goes below 0", () => {
    using t = tree(kind);
    writeCgroup(t, "/p", { usageNs: 1, memUsage: 10, inactiveFile: 50, rss: 0, pids: 1 });
    const s = readSample(dirsForPath(t.layout, "/p"), { now })!;
    expect(s.memory!.limit).toBeUndefined();
    expect(s.memory!.workingSet).toBe(0);
    expect(s.cpuSpec?.quotaUs).toBeUndefined();
  });

  test("pressure (PSI) from the unified directory", () => {
    using t = tree(kind);
    writeCgroup(t, "/p", { usageNs: 1, memUsage: 10, inactiveFile: 0, rss: 0, pids: 1, psi: true });
    const s = readSample(dirsForPath(t.layout, "/p"), { now })!;
    expect(s.cpu!.psi).toEqual({ some: { avg10: 1.5, avg60: 0.5, avg300: 0.1, totalUs: 1000 }, full: { avg10: 0, avg60: 0, avg300: 0, totalUs: 500 } });
    expect(s.io?.psi?.some.totalUs).toBe(1000);
  });

  test("each file is read once; CRI stats read only the files their fields need", () => {
    using t = tree(kind);
    writeCgroup(t, "/p", { usageNs: 1, memUsage: 10, inactiveFile: 0, rss: 0, pids: 1, psi: true });
    const dirs = dirsForPath(t.layout, "/p");
    const files = (o: Parameters<typeof readSample>[1]) => {
      const seen: string[] = [];
      readSample(dirs, { ...o, read: (p) => (seen.push(p.slice(t.cg.length + 1)), existsSync(p) ? readFileSync(p, "latin1") : undefined) });
      expect(new Set(seen).size).toBe(seen.length);
      return seen;
    };
    const p = (f: string) =>
      kind === "v2" ? `p/${f}` : f.includes("pressure") ? `unified/p/${f}` : `${f.slice(0, f.startsWith("cpuacct") ? 7 : f.indexOf("."))}/p/${f}`;
    const cri =
      kind === "v2"
        ? [
            "cpu.stat",
            "cpu.pressure",
            "memory.current",
            "memory.stat",
            "memory.max",
            "memory.swap.current",
            "memory.swap.max",
            "memory.pressure",
            "pids.current",
            "io.pressure",
          ]
        : [
            "cpuacct.usage",
            "cpu.pressure",
            "memory.usage_in_bytes",
            "memory.stat",
            "memory.limit_in_bytes",
            "memory.memsw.usage_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.pressure",
            "pids.current",
            "io.pressure",
          ];
    expect(files({ now })).toEqual(cri.map(p));
    // a pod (no swap in PodSandboxStats) and a container of a pod with its own cgroup (no process count)
    expect(files({ now, swap: false, pids: false })).toEqual(cri.filter((f) => !/swap|memsw|pids/.test(f)).map(p));
    expect(files({ now, detail: true, hugetlb: true }).length).toBeGreaterThan(cri.length); // metrics: once each too
  });

  test("a cgroup that does not exist reads as undefined", () => {
    using t = tree(kind);
    expect(readSample(dirsForPath(t.layout, "/nope"), { now })).toBeUndefined();
  });

  test("process facts: processes, threads, file descriptors and sockets", () => {
    using t = tree(kind);
    writeCgroup(t, "/p", { usageNs: 1, memUsage: 10, inactiveFile: 0, rss: 0, pids: 2, procs: [10, 11] });
    writeProc(t, 10, "/p", { fds: 4, sockets: 1 });
    writeProc(t, 11, "/p", { fds: 2 });
    expect(readProcesses(dirsForPath(t.layout, "/p"), t.proc)).toEqual({ processes: 2, threads: 2, threadsMax: undefined, fileDescriptors: 6, sockets: 1 });
    expect(readProcesses(dirsForPath(t.layout, "/gone"), t.proc)).toBeUndefined();
  });
});

describe("parsers and sums", () => {
  test("parsePsi and parseKeyValues", () => {
    expect(parsePsi("some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n")).toEqual({ some: { avg10: 0, avg60: 0, avg300: 0, totalUs: 7 } });
    expect(parsePsi(undefined)).toBeUndefined();
    expect([...parseKeyValues("a 1\nb 2\n")]).toEqual([
      ["a", 1],
      ["b", 2],
    ]);
    expect([...parseKeyValues("a 1\nb 2\nc 3", new Set(["c", "a"]))]).toEqual([
      ["a", 1],
      ["c", 3],
    ]);
    expect(parsePsi("some avg10=1.25 avg60=0.50 avg300=0.00 total=12\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=3")).toEqual({
      some: { avg10: 1.25, avg60: 0.5, avg300: 0, totalUs: 12 },
      full: { avg10: 0, avg60: 0, avg300: 0, totalUs: 3 },
    });
  });

  test("sumSamples adds counters and gauges of several cgroups", () => {
    using t = tree("v2");
    writeCgroup(t, "/a", { usageNs: 1e9, memUsage: 100, inactiveFile: 10, rss: 50, pids: 2 });
    writeCgroup(t, "/b", { usageNs: 2e9, memUsage: 200, inactiveFile: 20, rss: 70, pids: 3 });
    const [a, b] = ["/a", "/b"].map((p) => readSample(dirsForPath(t.layout, p), { now })!);
    const s = sumSamples([a!, b!], 5)!;
    expect(s.at).toBe(5);
    expect(s.cpu!.usageNs).toBe(3e9);
    expect(s.memory).toMatchObject({ usage: 300, workingSet: 270, rss: 120 });
    expect(s.pids!.current).toBe(5);
    expect(sumSamples([], 5)).toBeUndefined();
  });
});
