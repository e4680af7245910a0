import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ContainerCtx, Rec } from "../../../src/container/context.ts";
import { execProcess, runningContainer } from "../../../src/container/exec.ts";
import { ExitWaiters, recordExit, settleExit, type RuntimeState } from "../../../src/container/exit.ts";
import type { ContainerRunState } from "../../../src/container/record.ts";
import { RuntimeError } from "../../../src/errors.ts";
import { IdIndex, StoredRecord } from "../../../src/store/index.ts";
import { KeyedSerial } from "../../../src/util/wait.ts";

/** A context over fakes: `exitFile` is what the monitor recorded, `runtimeState` what the runtime says. */
function fixture(
  state: ContainerRunState["state"],
  o: { exitFile?: { exitCode: number; exitedAt: number; oomKilled: boolean }; runtimeState?: RuntimeState } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), "crio-exit-"));
  const rec = new StoredRecord(dir, { id: "c1", runtimeHandler: "runc", bundle: dir } as never, { state } as ContainerRunState) as Rec;
  const index = new IdIndex<Rec>();
  index.add("c1", rec);
  const emitted: string[] = [];
  const lines: string[] = [];
  const log = { withTag: () => log, info: (m: string) => lines.push(m), warn: (m: string) => lines.push(`WARN ${m}`), debug: () => {} };
  const d = {
    log,
    monitors: { readExit: async () => o.exitFile },
    handlers: { get: () => ({ runtime: { state: async () => o.runtimeState } }) },
  };
  const c: ContainerCtx = {
    d: d as never,
    index,
    serial: new KeyedSerial(),
    exits: new ExitWaiters(),
    emit: (kind, v) => void emitted.push(`${kind} ${v.meta.id}`),
  };
  return { c, rec, dir, emitted, lines, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
}

describe("settleExit: exit file → runtime state → EXITED, the one path of a stop's wait, the watchdog and recovery", () => {
  test("the exit file the monitor wrote wins: its code, time and OOM flag; announced", async () => {
    using f = fixture("running", { exitFile: { exitCode: 3, exitedAt: 1000, oomKilled: true }, runtimeState: { status: "running", pid: 1 } });
    let asked = false;
    expect(await settleExit(f.c, f.rec, () => ((asked = true), undefined))).toEqual({ exited: true });
    expect(asked).toBe(false);
    expect(f.rec.status).toEqual({ state: "exited", exitCode: 3, finishedAt: 1000, oomKilled: true });
    expect(f.emitted).toEqual(["stopped c1"]);
  });

  test("no exit file: the verdict sees the runtime's state; none means the container lives on", async () => {
    using f = fixture("running", { runtimeState: { status: "running", pid: 7 } });
    const seen: RuntimeState[] = [];
    expect(await settleExit(f.c, f.rec, (st) => (seen.push(st), undefined))).toEqual({ exited: false, state: { status: "running", pid: 7 } });
    expect(seen).toEqual([{ status: "running", pid: 7 }]);
    expect(f.rec.status.state).toBe("running");
    expect(f.emitted).toEqual([]);
  });

  test("a verdict marks it EXITED with its code and message; recovery's is not announced", async () => {
    using f = fixture("running", { runtimeState: undefined });
    const r = await settleExit(f.c, f.rec, (st) => (st ? undefined : { exitCode: 255, exitedAt: 2000, message: "gone" }), { announce: false });
    expect(r).toEqual({ exited: true });
    expect(f.rec.status).toEqual({ state: "exited", exitCode: 255, finishedAt: 2000, message: "gone" });
    expect(f.emitted).toEqual([]);
    expect(f.lines).toContain("Container c1 exited with code 255");
  });

  test("an exit recorded twice is recorded once; waiters are woken", async () => {
    using f = fixture("running");
    let woken = false;
    const waiting = f.c.exits.wait("c1", 10_000).then(() => (woken = true));
    await recordExit(f.c, "c1", { exitCode: 0, exitedAt: 5, oomKilled: false });
    await recordExit(f.c, "c1", { exitCode: 9, exitedAt: 6, oomKilled: false });
    await waiting;
    expect([woken, f.rec.status.exitCode, f.emitted]).toEqual([true, 0, ["stopped c1"]]);
  });
});

describe("exec guards and the exec process", () => {
  test("only a running container takes an exec or an attach; an unknown one is NOT_FOUND", () => {
    using f = fixture("created");
    expect(() => runningContainer(f.c, "c1")).toThrow('container "c1" is not running');
    expect(() => runningContainer(f.c, "nope")).toThrow(RuntimeError);
    using g = fixture("running");
    expect(runningContainer(g.c, "c")).toBe(g.rec);
  });

  test("the container's own process with the command; no console size", async () => {
    using f = fixture("running");
    const process = { args: ["/pause"], env: ["A=1"], cwd: "/w", user: { uid: 5, gid: 6 }, consoleSize: { height: 1, width: 2 }, terminal: false };
    writeFileSync(join(f.dir, "config.json"), JSON.stringify({ ociVersion: "1.0.2", process }));
    expect(await execProcess(f.rec, ["ls", "-l"], true)).toEqual({ args: ["ls", "-l"], env: ["A=1"], cwd: "/w", user: { uid: 5, gid: 6 }, terminal: true });
    rmSync(join(f.dir, "config.json"));
    await expect(execProcess(f.rec, ["ls"], false)).rejects.toThrow('read bundle of "c1"');
  });
});
