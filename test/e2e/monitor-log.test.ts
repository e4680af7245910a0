// The monitor with real runc: CRI log records, exit codes, log reopen and size cap.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { renameSync, readFileSync } from "node:fs";
import { LOG_LINE_MAX, monitorPidOf, Monitors, readExitFile } from "../../src/monitor/index.ts";
import { waitFor } from "../harness.ts";
import { canRun, MonitorWorld, records } from "./monitor-support.ts";

setDefaultTimeout(30_000);

describe.skipIf(!canRun())("monitor: logs and exits", () => {
  test("lines become F records tagged by stream; exit 3 is recorded", async () => {
    await using w = new MonitorWorld();
    const m = new Monitors(w.config);
    const id = w.id();
    const bundle = w.bundle(id, "echo one; echo two >&2; printf 'a\\nb\\n'; exit 3");
    const { pid, monitorPid } = await m.spawn({ id, bundle, logPath: w.logPath(id) });
    expect(pid).toBeGreaterThan(0);
    expect(monitorPidOf(w.config.socketDir, id)).toBe(monitorPid);
    // a second monitor for the same container is refused, and the first one's files stay
    await expect(m.spawn({ id, bundle, logPath: w.logPath(id) })).rejects.toMatchObject({ kind: "already-exists" });
    expect(monitorPidOf(w.config.socketDir, id)).toBe(monitorPid);
    expect((await w.state(id))?.status).toBe("created");
    await w.runc("start", id);
    const exit = await waitFor(() => m.readExit(id), 10_000, "exit file");
    expect(exit).toMatchObject({ exitCode: 3, oomKilled: false });
    expect(Math.abs(exit.exitedAt - Date.now())).toBeLessThan(10_000);
    const recs = records(w.logLines(id));
    expect(recs.filter((r) => r[0] === "stdout")).toEqual([
      ["stdout", "F", "one"],
      ["stdout", "F", "a"],
      ["stdout", "F", "b"],
    ]);
    expect(recs.filter((r) => r[0] === "stderr")).toEqual([["stderr", "F", "two"]]);
    expect(w.logLines(id)[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z stdout F one$/);
  });

  test("a long line without newline becomes P pieces then F", async () => {
    await using w = new MonitorWorld();
    const m = new Monitors(w.config);
    const id = w.id();
    const bundle = w.bundle(id, "head -c 40000 /dev/zero | tr '\\0' x; sleep 0.2; printf tail");
    await m.spawn({ id, bundle, logPath: w.logPath(id) });
    await w.runc("start", id);
    expect((await waitFor(() => m.readExit(id), 10_000)).exitCode).toBe(0);
    const recs = records(w.logLines(id));
    const full = 40000;
    expect(recs.map(([s, t, x]) => [s, t, x.length])).toEqual([
      ["stdout", "P", LOG_LINE_MAX],
      ["stdout", "P", LOG_LINE_MAX],
      ["stdout", "F", full - 2 * LOG_LINE_MAX + "tail".length],
    ]);
    expect(recs[2]![2].endsWith("xtail")).toBe(true);
  });

  test("reopen after rename writes to a new file; the size cap truncates", async () => {
    await using w = new MonitorWorld();
    const m = new Monitors(w.config);
    const id = w.id();
    const bundle = w.bundle(id, "i=0; while [ $i -lt 400 ]; do echo line$i; i=$((i+1)); done; while [ ! -e /tmp/stop ]; do sleep 0.05; done; echo after");
    await m.spawn({ id, bundle, logPath: w.logPath(id), logSizeMax: 8192 });
    await w.runc("start", id);
    await waitFor(() => readFileSync(w.logPath(id), "utf8").includes("line399"), 15_000, "400 lines");
    // the cap: 400 records of ~45 bytes exceed 8 KiB, so the file was started over
    const capped = w.logLines(id);
    expect(capped.length).toBeLessThan(400);
    expect(readFileSync(w.logPath(id)).length).toBeLessThanOrEqual(8192);
    renameSync(w.logPath(id), `${w.logPath(id)}.1`);
    await m.reopenLog(id);
    await w.runc("exec", id, "touch", "/tmp/stop").catch(() => {}); // the container may exit first (137)
    await waitFor(() => m.readExit(id), 10_000);
    expect(records(w.logLines(id))).toEqual([["stdout", "F", "after"]]);
  });

  test("a runtime failure rejects with the runtime's words and leaves no monitor dir", async () => {
    await using w = new MonitorWorld();
    const m = new Monitors(w.config);
    const id = w.id();
    const bundle = w.bundle(id, ["/bin/does-not-exist"]);
    const err = await m.spawn({ id, bundle, logPath: w.logPath(id) }).catch((e) => e);
    expect(err).toMatchObject({ name: "RuntimeError", kind: "unknown" });
    expect(err.message).toContain("does-not-exist");
    expect(await Bun.file(`${w.config.socketDir}/${id}/monitor.pid`).exists()).toBe(false);
    expect(await readExitFile(w.config.exitDir, id)).toBeUndefined();
  });
});
