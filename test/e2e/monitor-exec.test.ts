// Exec under the monitor with real runc: ExecSync (output, exit code, cap, timeout that leaves
// nothing running) and streaming exec sessions (stdin, terminal, exit code over attach).
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { Monitors } from "../../src/monitor/index.ts";
import { CTL_EXEC_SYNC, Frame, FrameDecoder, monitorFiles } from "../../src/conmon/protocol.ts";
import { join } from "node:path";
import { waitFor } from "../harness.ts";
import { canRun, MonitorWorld } from "./monitor-support.ts";

setDefaultTimeout(30_000);

const proc = (args: string[], terminal = false) => ({ args, env: ["PATH=/bin", "TERM=xterm"], cwd: "/", user: { uid: 0, gid: 0 }, terminal });

describe.skipIf(!canRun())("monitor: exec", () => {
  test.each([
    ["run by the daemon, no monitor", "direct"],
    ["through the container's monitor", "container"],
    ["under an exec-sync monitor", "exec-sync"],
  ] as const)("ExecSync %s: output, exit code, cap, timeout, a child left running", async (_how, how) => {
    await using w = new MonitorWorld();
    const inContainerMonitor = how === "container";
    const m = new Monitors({ ...w.config, execSyncDirect: how === "direct", execSyncInContainerMonitor: inContainerMonitor });
    const id = w.id();
    await m.spawn({ id, bundle: w.bundle(id, ["sleep", "1000"]), logPath: w.logPath(id) });
    await w.runc("start", id);
    const dec = new TextDecoder();

    const r = await m.execSync({ containerId: id, process: proc(["sh", "-c", "echo out; echo err >&2; exit 6"]) });
    expect({ ...r, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) }).toEqual({ exitCode: 6, stdout: "out\n", stderr: "err\n", timedOut: false });

    const big = await m.execSync({ containerId: id, process: proc(["head", "-c", "300000", "/dev/zero"]), maxOutput: 100_000 });
    expect([big.exitCode, big.stdout.length]).toEqual([0, 100_000]);

    const t0 = Date.now();
    const slow = await m.execSync({ containerId: id, process: proc(["sh", "-c", "sleep 4321 & sleep 4322; echo never"]), timeoutMs: 500 });
    expect(slow.timedOut).toBe(true);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(dec.decode(slow.stdout)).toBe("");
    // nothing of it is left running: critest looks right after the timeout (ps sees sleeps: control)
    const control = await m.execSync({ containerId: id, process: proc(["sh", "-c", "ps -o args | grep '[s]leep 1000'"]) });
    expect(new TextDecoder().decode(control.stdout)).toContain("sleep 1000");
    const left = await m.execSync({ containerId: id, process: proc(["sh", "-c", "ps -o args | grep '[s]leep 432' || true"]) });
    expect(dec.decode(left.stdout)).toBe("");

    // a child left running with the output pipes open: the answer comes at the process's exit
    // (and ≤ 2 s of output after it), not when the child ends (as CRI-O's conmon)
    const t1 = Date.now();
    const bg = await m.execSync({ containerId: id, process: proc(["sh", "-c", "sleep 6 & echo hi; exit 3"]) });
    expect({ ...bg, stdout: dec.decode(bg.stdout), stderr: dec.decode(bg.stderr) }).toEqual({ exitCode: 3, stdout: "hi\n", stderr: "", timedOut: false });
    expect(Date.now() - t1).toBeLessThan(4500);
    // killed by a signal: 128 + signal, as the monitor records a container's exit
    const killed = await m.execSync({ containerId: id, process: proc(["sh", "-c", "kill -9 $$"]) });
    expect([killed.exitCode, killed.timedOut]).toEqual([137, false]);

    const missing = await m.execSync({ containerId: id, process: proc(["/bin/nope"]) }).catch((e) => e);
    expect(missing).toMatchObject({ name: "RuntimeError", kind: "unknown" });
    expect(missing.message).toContain("nope");
    expect(readdirSync(w.config.socketDir)).toEqual([id]); // exec sessions leave no dir behind
    // the daemon or the container's monitor ran them all: no exec-sync monitor was ever started
    if (how !== "exec-sync") expect(m.standby.stats()).toEqual({ hits: 0, misses: 0, pids: [] });
    if (inContainerMonitor) {
      // a bad request on the ctl socket gets an EXIT frame with the error; the monitor goes on
      const frames = new FrameDecoder();
      let exit = "";
      const sock = await Bun.connect({
        unix: monitorFiles(join(w.config.socketDir, id)).ctl,
        socket: {
          data: (_s, d) => {
            for (const f of frames.push(d)) if (f.type === Frame.EXIT) exit = dec.decode(f.payload);
          },
        },
      });
      sock.write(`${CTL_EXEC_SYNC} {"id":"../x","dir":"/tmp","timeoutMs":0}\n`);
      await waitFor(() => exit !== "", 10_000, "the EXIT frame");
      expect(JSON.parse(exit).error).toContain("invalid exec-sync request: invalid id");
      sock.end();
      const again = await m.execSync({ containerId: id, process: proc(["echo", "still here"]) });
      expect(dec.decode(again.stdout)).toBe("still here\n");
    } else if (how === "exec-sync") expect(m.standby.stats().hits + m.standby.stats().misses).toBe(8);
    m.close();
  });

  test("streaming exec: output held until attach, stdin, exit code", async () => {
    await using w = new MonitorWorld();
    const m = new Monitors(w.config);
    const id = w.id();
    await m.spawn({ id, bundle: w.bundle(id, ["sleep", "1000"]), logPath: w.logPath(id) });
    await w.runc("start", id);
    const s = await m.spawnExec({ containerId: id, process: proc(["sh", "-c", "echo early; cat; echo late >&2; exit 9"]), stdin: true });
    let out = "";
    let err = "";
    const c = await m.attach(s.execId, { stdout: (d) => (out += new TextDecoder().decode(d)), stderr: (d) => (err += new TextDecoder().decode(d)) });
    await waitFor(() => out === "early\n", 10_000, "output written before attach");
    c.stdin("piped\n");
    c.closeStdin();
    expect(await c.exit).toBe(9);
    expect([out, err]).toEqual(["early\npiped\n", "late\n"]);
    await waitFor(() => !existsSync(`${w.config.socketDir}/${s.execId}`), 10_000, "session dir removed");
  });

  test("streaming exec with a terminal", async () => {
    await using w = new MonitorWorld();
    const m = new Monitors(w.config);
    const id = w.id();
    await m.spawn({ id, bundle: w.bundle(id, ["sleep", "1000"]), logPath: w.logPath(id) });
    await w.runc("start", id);
    const s = await m.spawnExec({ containerId: id, process: proc(["sh"], true), stdin: true, terminal: true });
    let out = "";
    const c = await m.attach(s.execId, { stdout: (d) => (out += new TextDecoder().decode(d)) });
    c.resize(20, 77);
    c.stdin("stty size; exit 2\r");
    expect(await c.exit).toBe(2);
    expect(out).toContain("20 77\r\n");
  });
});
