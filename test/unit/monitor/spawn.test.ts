import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { selfCommand, spawnMonitor, type SpawnMonitorOptions } from "../../../src/monitor/index.ts";
import { waitFor } from "../../harness.ts";

// A fake monitor: `sh -c SCRIPT sh conmon --mode …` — it sees the protocol's argv as "$@".
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function opts(script: string, o: Partial<SpawnMonitorOptions> = {}): SpawnMonitorOptions {
  const d = mkdtempSync(join(tmpdir(), "crio-spawn-"));
  dirs.push(d);
  return {
    selfCommand: ["sh", "-c", script, "sh"],
    runtime: ["/bin/false", "--root", join(d, "runc")],
    socketDir: join(d, "mon"),
    exitDir: join(d, "exits"),
    id: "c1",
    bundle: join(d, "b"),
    logPath: join(d, "l.log"),
    ...o,
  };
}

test("selfCommand runs this program again", () => {
  expect(selfCommand()).toEqual(Bun.isStandaloneExecutable ? [process.execPath] : [process.execPath, Bun.main]);
});

test("the pid on fd 3 resolves; the monitor gets the protocol's argv", async () => {
  const o = opts(`[ "$1 $2 $3 $4 $5" = "conmon --mode create --id c1" ] && echo '{"pid":4242}' >&3 || echo "{\\"error\\":\\"argv: $*\\"}" >&3`);
  const r = await spawnMonitor(o);
  expect(r.pid).toBe(4242);
  expect(r.monitorPid).toBeGreaterThan(0);
  expect(existsSync(join(o.socketDir, "c1"))).toBe(true);
});

test("the runtime's error, a silent death and a timeout each reject with their kind and clean up", async () => {
  const e1 = opts(`echo '{"error":"runc create failed: boom"}' >&3`);
  await expect(spawnMonitor(e1)).rejects.toMatchObject({ kind: "unknown", message: 'create container "c1": runc create failed: boom' });
  expect(existsSync(join(e1.socketDir, "c1"))).toBe(false);

  const e2 = opts(`echo 'level=error msg="cannot start"' >&2; exit 1`);
  await expect(spawnMonitor(e2)).rejects.toMatchObject({ kind: "internal", message: expect.stringContaining("cannot start") });

  const e3 = opts(`sleep 31.25; sleep 1`, { timeoutMs: 200 }); // its group is killed on timeout
  const t0 = Date.now();
  await expect(spawnMonitor(e3)).rejects.toMatchObject({ kind: "deadline-exceeded" });
  expect(Date.now() - t0).toBeLessThan(5000);
  await waitFor(() => Bun.spawnSync(["pgrep", "-f", "sleep 31.25"]).exitCode === 1, 5000, "the fake monitor killed");
});

test("bad ids are invalid arguments; a socket dir of any length is not", async () => {
  await expect(spawnMonitor(opts("exit 0", { id: "../etc" }))).rejects.toMatchObject({ kind: "invalid-argument" });
  // sockets are bound through short aliases (sys/short-path.ts): a deep dir is fine
  const deep = opts(`echo '{"pid":4243}' >&3`);
  deep.socketDir = join(deep.socketDir, "x".repeat(100), "y".repeat(100));
  expect((await spawnMonitor(deep)).pid).toBe(4243);
});
