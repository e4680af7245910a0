import { afterEach, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MonitorLiveness } from "../../../src/monitor/liveness.ts";
import { exitedPidfds, pidfdClose, pidfdOpen } from "../../../src/sys/pidfd.ts";

// The watchdog's "is this container's monitor alive?": a monitor found once through its pid file
// is then held by a pidfd; its exit is seen by the next sweep; a pid file naming a process that
// is not a monitor is not alive.

const ID = "a".repeat(64);
const dirs: string[] = [];
const procs: ReturnType<typeof Bun.spawn>[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) p.kill("SIGKILL");
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A process whose command line has a "conmon" word, as a monitor's has, and its pid file. */
function fakeMonitor(socketDir: string, id: string, argv = ["sh", "-c", "sleep 60; true", "conmon"]) {
  const p = Bun.spawn(argv, { stdout: "ignore", stderr: "ignore" });
  procs.push(p);
  mkdirSync(join(socketDir, id), { recursive: true });
  writeFileSync(join(socketDir, id, "monitor.pid"), String(p.pid));
  return p;
}

function socketDir(): string {
  const d = mkdtempSync(join(tmpdir(), "crio-liveness-"));
  dirs.push(d);
  return d;
}

test("a live monitor is held by a pidfd; its exit is seen at the next sweep", async () => {
  const dir = socketDir();
  let clock = 0;
  const l = new MonitorLiveness(dir, () => clock);
  const p = fakeMonitor(dir, ID);
  expect(await l.alive(ID)).toBe(true);
  expect(l.held).toBe(1);
  expect(await l.alive(ID)).toBe(true); // from the pidfd
  p.kill("SIGKILL");
  await p.exited;
  clock += 100;
  expect(await l.alive(ID)).toBe(true); // not swept yet: at most SWEEP_MS late
  clock += 250;
  // the pid file still names the dead pid: a process that is gone is not alive
  expect(await l.alive(ID)).toBe(false);
  expect(l.held).toBe(0);
  l.close();
});

test("no pid file, or a pid that is not a monitor: not alive and nothing held", async () => {
  const dir = socketDir();
  const l = new MonitorLiveness(dir);
  expect(await l.alive(ID)).toBe(false);
  fakeMonitor(dir, ID, ["sleep", "60"]);
  expect(await l.alive(ID)).toBe(false);
  expect(l.held).toBe(0);
});

test("pidfds: one poll tells which processes exited", async () => {
  const a = Bun.spawn(["sleep", "60"]);
  const b = Bun.spawn(["sleep", "60"]);
  procs.push(a, b);
  const fa = pidfdOpen(a.pid)!;
  const fb = pidfdOpen(b.pid)!;
  expect(fa).toBeGreaterThan(2);
  expect(exitedPidfds([fa, fb]).size).toBe(0);
  b.kill("SIGKILL");
  await b.exited;
  expect([...exitedPidfds([fa, fb])]).toEqual([fb]);
  pidfdClose(fa);
  pidfdClose(fb);
  expect(pidfdOpen(0)).toBeUndefined();
});
