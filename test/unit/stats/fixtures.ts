// Fixture cgroup trees (v1 hybrid and v2) and /proc entries in a temp dir, for the stats unit tests.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { detectCgroupLayout, type CgroupLayout } from "../../../src/sys/cgroup.ts";
import { parseMountinfo } from "../../../src/sys/mount.ts";

/** A temp dir with a fake /sys/fs/cgroup and /proc. */
export interface Tree {
  root: string;
  cg: string;
  proc: string;
  layout: CgroupLayout;
  [Symbol.dispose](): void;
}

/** A hybrid layout (separate cpu and cpuacct mounts, like this machine) or a v2 one. */
export function tree(kind: "hybrid" | "v2"): Tree {
  const root = mkdtempSync(join(tmpdir(), "stats-test-"));
  const cg = join(root, "cgroup");
  const proc = join(root, "proc");
  mkdirSync(cg, { recursive: true });
  mkdirSync(proc, { recursive: true });
  const table =
    kind === "v2"
      ? `25 1 0:22 / / rw - ext4 /dev/vda rw\n40 25 0:40 / ${cg} rw - cgroup2 cgroup2 rw`
      : [
          `25 1 0:22 / / rw - ext4 /dev/vda rw`,
          `32 25 0:29 / ${cg}/cpu rw - cgroup cgroup rw,cpu`,
          `33 25 0:30 / ${cg}/cpuacct rw - cgroup cgroup rw,cpuacct`,
          `35 25 0:32 / ${cg}/memory rw - cgroup cgroup rw,memory`,
          `39 25 0:36 / ${cg}/pids rw - cgroup cgroup rw,pids`,
          `41 25 0:38 / ${cg}/unified rw - cgroup2 cgroup2 rw`,
        ].join("\n");
  return { root, cg, proc, layout: detectCgroupLayout(parseMountinfo(table)), [Symbol.dispose]: () => rmSync(root, { recursive: true, force: true }) };
}

/** What a fixture cgroup holds. */
export interface CgroupValues {
  usageNs: number;
  userNs?: number;
  systemNs?: number;
  memUsage: number;
  inactiveFile: number;
  rss: number;
  cache?: number;
  limit?: number;
  pids: number;
  procs?: number[];
  swap?: number;
  oomKills?: number;
  psi?: boolean;
}

/** Writes the files of a cgroup at `rel` (e.g. "/crio/crio-abc") in every hierarchy of the tree. */
export function writeCgroup(t: Tree, rel: string, v: CgroupValues): void {
  const w = (dir: string, file: string, text: string) => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, file), text);
  };
  const procs = (v.procs ?? []).join("\n") + "\n";
  const psi = (a: number) => `some avg10=1.50 avg60=0.50 avg300=0.10 total=${a}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=${a / 2}\n`;
  if (t.layout.kind === "v2") {
    const d = join(t.cg, rel);
    w(
      d,
      "cpu.stat",
      `usage_usec ${v.usageNs / 1000}\nuser_usec ${(v.userNs ?? 0) / 1000}\nsystem_usec ${(v.systemNs ?? 0) / 1000}\nnr_periods 10\nnr_throttled 2\nthrottled_usec 5000\n`,
    );
    w(d, "cpu.max", v.limit ? "50000 100000\n" : "max 100000\n");
    w(d, "cpu.weight", "100\n");
    w(d, "memory.current", `${v.memUsage}\n`);
    w(d, "memory.max", v.limit ? `${v.limit}\n` : "max\n");
    w(d, "memory.stat", `anon ${v.rss}\nfile ${v.cache ?? 0}\nfile_mapped 4096\ninactive_file ${v.inactiveFile}\nkernel 8192\npgfault 100\npgmajfault 3\n`);
    w(d, "memory.events", `low 0\nhigh 0\nmax 4\noom 1\noom_kill ${v.oomKills ?? 0}\n`);
    w(d, "memory.swap.current", `${v.swap ?? 0}\n`);
    w(d, "memory.swap.max", "max\n");
    w(d, "memory.peak", `${v.memUsage + 100}\n`);
    w(d, "pids.current", `${v.pids}\n`);
    w(d, "pids.max", "max\n");
    w(d, "cgroup.procs", procs);
    w(d, "cgroup.threads", procs);
    w(d, "hugetlb.2MB.current", "2097152\n");
    w(d, "hugetlb.1GB.current", "0\n");
    if (v.psi) for (const r of ["cpu", "memory", "io"]) w(d, `${r}.pressure`, psi(1000));
    return;
  }
  const at = (c: string) => join(t.cg, c, rel);
  w(at("cpuacct"), "cpuacct.usage", `${v.usageNs}\n`);
  w(at("cpuacct"), "cpuacct.usage_user", `${v.userNs ?? 0}\n`);
  w(at("cpuacct"), "cpuacct.usage_sys", `${v.systemNs ?? 0}\n`);
  w(at("cpuacct"), "cpuacct.usage_percpu", `${v.usageNs / 2} ${v.usageNs / 2}\n`);
  w(at("cpu"), "cpu.stat", "nr_periods 10\nnr_throttled 2\nthrottled_time 5000000\n");
  w(at("cpu"), "cpu.shares", "1024\n");
  w(at("cpu"), "cpu.cfs_period_us", "100000\n");
  w(at("cpu"), "cpu.cfs_quota_us", v.limit ? "50000\n" : "-1\n");
  w(at("memory"), "memory.usage_in_bytes", `${v.memUsage}\n`);
  w(at("memory"), "memory.max_usage_in_bytes", `${v.memUsage + 100}\n`);
  w(at("memory"), "memory.limit_in_bytes", `${v.limit ?? "9223372036854771712"}\n`);
  w(at("memory"), "memory.soft_limit_in_bytes", "9223372036854771712\n");
  w(at("memory"), "memory.memsw.usage_in_bytes", `${v.memUsage + (v.swap ?? 0)}\n`);
  w(at("memory"), "memory.memsw.limit_in_bytes", "9223372036854771712\n");
  w(at("memory"), "memory.failcnt", "4\n");
  w(at("memory"), "memory.kmem.usage_in_bytes", "8192\n");
  w(at("memory"), "memory.oom_control", `oom_kill_disable 0\nunder_oom 0\noom_kill ${v.oomKills ?? 0}\n`);
  // The non-hierarchical keys are decoys: total_* must win.
  w(
    at("memory"),
    "memory.stat",
    `cache 1\nrss 1\ninactive_file 1\ntotal_cache ${v.cache ?? 0}\ntotal_rss ${v.rss}\ntotal_mapped_file 4096\ntotal_inactive_file ${v.inactiveFile}\ntotal_pgfault 100\ntotal_pgmajfault 3\n`,
  );
  w(at("memory"), "cgroup.procs", procs);
  w(at("pids"), "pids.current", `${v.pids}\n`);
  w(at("pids"), "pids.max", "max\n");
  w(at("pids"), "cgroup.procs", procs);
  w(at("pids"), "tasks", procs);
  w(at("unified"), "cgroup.procs", procs);
  if (v.psi) for (const r of ["cpu", "memory", "io"]) w(at("unified"), `${r}.pressure`, psi(1000));
}

/** A fake /proc/<pid> whose cgroup file points at `rel` in every hierarchy of the tree. */
export function writeProc(t: Tree, pid: number, rel: string, o: { netdev?: string; fds?: number; sockets?: number } = {}): void {
  const d = join(t.proc, String(pid));
  mkdirSync(join(d, "net"), { recursive: true });
  const lines = t.layout.kind === "v2" ? `0::${rel}\n` : `9:name=systemd:${rel}\n8:pids:${rel}\n4:memory:${rel}\n2:cpuacct:${rel}\n1:cpu:${rel}\n0::${rel}\n`;
  writeFileSync(join(d, "cgroup"), lines);
  if (o.netdev) writeFileSync(join(d, "net", "dev"), o.netdev);
  mkdirSync(join(d, "fd"), { recursive: true });
  for (let i = 0; i < (o.fds ?? 0); i++) symlinkSync(i < (o.sockets ?? 0) ? `socket:[${1000 + i}]` : "/dev/null", join(d, "fd", String(i)));
}

/** /proc/net/dev text with eth0 at the given counters. */
export function netdevText(rxBytes: number, txBytes: number): string {
  return [
    "Inter-|   Receive                                                |  Transmit",
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed",
    "    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0",
    `  eth0: ${rxBytes}      7    1    2    0     0          0         0 ${txBytes}       5    3    4    0     0       0          0`,
    "",
  ].join("\n");
}
