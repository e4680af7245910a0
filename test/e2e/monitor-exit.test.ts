// The monitor with real runc: exit codes of killed and OOM-killed containers, the exits watcher,
// and a monitor that outlives the process that started it.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { Monitors, readExitFile, type ExitRecord } from "../../src/monitor/index.ts";
import { waitFor } from "../harness.ts";
import { canRun, MonitorWorld } from "./monitor-support.ts";

setDefaultTimeout(30_000);

describe.skipIf(!canRun())("monitor: exits", () => {
  test("SIGKILL gives 137, seen once by the exits watcher", async () => {
    await using w = new MonitorWorld();
    const m = new Monitors(w.config);
    const seen: Array<[string, ExitRecord]> = [];
    const watcher = m.watchExits((id, e) => seen.push([id, e]), 60_000);
    await watcher.start();
    try {
      const id = w.id();
      await m.spawn({ id, bundle: w.bundle(id, ["sleep", "1000"]), logPath: w.logPath(id) });
      await w.runc("start", id);
      await w.runc("kill", id, "KILL");
      const [sid, exit] = await waitFor(() => seen[0], 10_000, "watcher event");
      expect(sid).toBe(id);
      expect(exit).toMatchObject({ exitCode: 137, oomKilled: false });
      await watcher.rescan();
      expect(seen.length).toBe(1);
    } finally {
      watcher.close();
    }
  });

  test("a watcher started later reports exits already on disk", async () => {
    await using w = new MonitorWorld();
    const m = new Monitors(w.config);
    const id = w.id();
    await m.spawn({ id, bundle: w.bundle(id, "exit 7"), logPath: w.logPath(id) });
    await w.runc("start", id);
    await waitFor(() => m.readExit(id), 10_000);
    const seen: string[] = [];
    const watcher = m.watchExits((i, e) => seen.push(`${i}=${e.exitCode}`));
    await watcher.start();
    watcher.close();
    expect(seen).toEqual([`${id}=7`]);
  });

  test("the OOM killer's kill is marked oomKilled", async () => {
    await using w = new MonitorWorld();
    const m = new Monitors(w.config);
    const id = w.id();
    const bundle = w.bundle(id, "head -c 200m /dev/zero | tail; echo survived", { memoryBytes: 16 << 20 });
    await m.spawn({ id, bundle, logPath: w.logPath(id) });
    await w.runc("start", id);
    const exit = await waitFor(() => m.readExit(id), 20_000);
    expect(exit.oomKilled).toBe(true);
    const plain = w.id();
    await m.spawn({ id: plain, bundle: w.bundle(plain, "head -c 1m /dev/zero | tail >/dev/null", { memoryBytes: 16 << 20 }), logPath: w.logPath(plain) });
    await w.runc("start", plain);
    expect(await waitFor(() => m.readExit(plain), 20_000)).toMatchObject({ exitCode: 0, oomKilled: false });
  });

  test("the monitor survives the death of the process that spawned it", async () => {
    await using w = new MonitorWorld();
    const id = w.id();
    const bundle = w.bundle(id, "while [ ! -e /tmp/stop ]; do sleep 0.05; done; exit 5");
    // a middleman process spawns the monitor, prints the pids and waits to be killed
    const script = `
      import { spawnMonitor } from ${JSON.stringify(`${import.meta.dir}/../../src/monitor/index.ts`)};
      const r = await spawnMonitor(${JSON.stringify({ ...w.config, id, bundle, logPath: w.logPath(id) })});
      console.log(JSON.stringify(r));
      setInterval(() => {}, 1000);`;
    const mid = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "inherit" });
    const reader = mid.stdout.getReader();
    const { value } = await reader.read();
    const { pid, monitorPid } = JSON.parse(new TextDecoder().decode(value)) as { pid: number; monitorPid: number };
    mid.kill("SIGKILL");
    await mid.exited;
    expect(alive(monitorPid)).toBe(true);
    await w.runc("start", id);
    expect((await w.state(id))?.status).toBe("running");
    expect((await w.state(id))?.pid).toBe(pid);
    // the container may see the file and exit, killing its pid namespace, before runc exec has
    // reported touch's exit (it then fails with 137): the exit code below is what is checked
    await w.runc("exec", id, "touch", "/tmp/stop").catch(() => {});
    expect((await waitFor(() => readExitFile(w.config.exitDir, id), 10_000)).exitCode).toBe(5);
    await waitFor(() => !alive(monitorPid), 10_000, "monitor exit");
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}
