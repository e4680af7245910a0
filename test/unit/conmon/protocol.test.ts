import { describe, expect, test } from "bun:test";
import {
  buildArgs,
  CTL_EXEC,
  CTL_EXEC_SYNC,
  decodeResize,
  encodeCtl,
  encodeCtlExec,
  encodeCtlExecSync,
  encodeFrame,
  encodeResize,
  encodeSync,
  Frame,
  FrameDecoder,
  FRAME_MAX,
  parseArgs,
  parseCtl,
  parseCtlExec,
  parseCtlExecSync,
  parseExitCode,
  parseLogLine,
  parseSync,
  type MonitorArgs,
} from "../../../src/conmon/protocol.ts";

const create: MonitorArgs = {
  mode: "create",
  id: "abc",
  container: "abc",
  runtime: ["/usr/bin/runc", "--root", "/run/runc", "--systemd-cgroup"],
  bundle: "/b",
  dir: "/run/crio/monitor/abc",
  logPath: "/var/log/pods/x/0.log",
  exitDir: "/run/crio/exits",
  terminal: true,
  stdin: true,
  stdinOnce: false,
  logSizeMax: 8192,
  timeoutMs: 0,
  attachTimeoutMs: 0,
};

describe("argv", () => {
  test("round-trips every mode", () => {
    const execSync: MonitorArgs = {
      ...create,
      mode: "exec-sync",
      id: "e1",
      bundle: undefined,
      logPath: undefined,
      exitDir: undefined,
      terminal: false,
      stdin: false,
      logSizeMax: 0,
      timeoutMs: 1500,
    };
    const exec: MonitorArgs = { ...execSync, mode: "exec", timeoutMs: 0, terminal: true, stdin: true, stdinOnce: true, attachTimeoutMs: 60000 };
    for (const a of [create, execSync, exec, { ...create, noSyncLog: true }]) expect(parseArgs(buildArgs(a))).toEqual(a);
    expect(buildArgs({ ...create, noSyncLog: true })).toContain("--no-sync-log");
    expect(buildArgs(create)).not.toContain("--no-sync-log");
    // the daemon's runtime prefix reaches the monitor whole (cgroup driver flag included)
    expect(parseArgs(buildArgs(create)).runtime).toEqual(["/usr/bin/runc", "--root", "/run/runc", "--systemd-cgroup"]);
  });

  test("rejects what it does not know, with the flag named", () => {
    const bad: Array<[string[], string]> = [
      [["--bogus"], 'unknown argument "--bogus"'],
      [[...buildArgs(create), "--mode"], "flag --mode needs a value"],
      [buildArgs({ ...create, id: "../x" }), 'invalid id "../x"'],
      [buildArgs(create).filter((x) => x !== "--bundle" && x !== "/b"), "create mode needs --bundle"],
      [["--mode", "run", "--id", "a"], 'unknown mode "run"'],
      [[...buildArgs(create), "--log-size-max", "lots"], 'flag --log-size-max needs an integer, got "lots"'],
      [buildArgs({ ...create, mode: "exec-sync" }), "exec-sync does not support --terminal"],
      [buildArgs({ ...create, runtime: [] }), "flag --runtime-command needs a JSON array of non-empty strings"],
      [buildArgs({ ...create, runtime: ["runc", "--root", "/r"] }), 'the runtime must be an absolute path, got "runc"'],
      [[...buildArgs(create), "--runtime-command", "/usr/bin/runc"], "flag --runtime-command needs a JSON array of strings"],
      [buildArgs(create).filter((x, i, all) => x !== "--runtime-command" && all[i - 1] !== "--runtime-command"), "flag --runtime-command is required"],
    ];
    for (const [argv, msg] of bad) expect(() => parseArgs(argv)).toThrow(msg);
  });
});

test("sync messages", () => {
  for (const m of [{ pid: 42 }, { error: "runc create failed: boom" }, { exitCode: 137, timedOut: true }]) expect(parseSync(encodeSync(m).trim())).toEqual(m);
  expect(() => parseSync('{"pid":0}')).toThrow("bad sync message");
  expect(() => parseSync("garbage")).toThrow();
});

test("frames survive any split of the byte stream", () => {
  const bytes = new Uint8Array([...encodeFrame(Frame.STDIN, new TextEncoder().encode("hello")), ...encodeResize(24, 80), ...encodeFrame(Frame.CLOSE_STDIN)]);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const d = new FrameDecoder();
    const frames = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))];
    expect(frames.map((f) => [f.type, f.payload.length])).toEqual([
      [Frame.STDIN, 5],
      [Frame.RESIZE, 4],
      [Frame.CLOSE_STDIN, 0],
    ]);
    expect(decodeResize(frames[1]!.payload)).toEqual({ rows: 24, cols: 80 });
  }
  const huge = new Uint8Array(5);
  new DataView(huge.buffer).setUint32(1, FRAME_MAX + 1);
  expect(() => new FrameDecoder().push(huge)).toThrow("too large");
});

test("ctl lines, exit files, log lines", () => {
  expect(encodeCtl(1, 24, 80)).toBe("1 24 80\n");
  expect(parseCtl("2 0 0")).toEqual({ kind: 2, a: 0, b: 0 });
  expect(parseCtl("resize")).toBeUndefined();
  expect([parseExitCode("137"), parseExitCode(" 0\n"), parseExitCode("x")]).toEqual([137, 0, undefined]);
  expect(parseLogLine("2026-11-29T06:47:05.162950123Z stderr P a b ")).toEqual({
    time: "2026-11-29T06:47:05.162950123Z",
    stream: "stderr",
    partial: true,
    text: "a b ",
  });
  expect(parseLogLine("nonsense")).toBeUndefined();
});

test("ctl exec-sync: the request line round-trips; bad ids, dirs and timeouts are refused", () => {
  const line = encodeCtlExecSync({ id: "e1", dir: "/run/crio/monitor/e1", timeoutMs: 1500.2 });
  expect(line.startsWith(`${CTL_EXEC_SYNC} `) && line.endsWith("\n")).toBe(true);
  expect(parseCtlExecSync(line.slice(CTL_EXEC_SYNC.length + 1).trim())).toEqual({ id: "e1", dir: "/run/crio/monitor/e1", timeoutMs: 1501 });
  const ok = { id: "e1", dir: "/d", timeoutMs: 0 };
  expect(parseCtlExecSync(JSON.stringify(ok))).toEqual(ok);
  expect(() => parseCtlExecSync(JSON.stringify({ ...ok, id: "../x" }))).toThrow("invalid id");
  expect(() => parseCtlExecSync(JSON.stringify({ ...ok, dir: "relative" }))).toThrow("invalid dir");
  expect(() => parseCtlExecSync(JSON.stringify({ ...ok, dir: "/run/../etc" }))).toThrow("invalid dir");
  expect(() => parseCtlExecSync(JSON.stringify({ ...ok, timeoutMs: -1 }))).toThrow("timeoutMs");
  expect(() => parseCtlExecSync(JSON.stringify({ ...ok, timeoutMs: "5" }))).toThrow("timeoutMs");
  expect(() => parseCtlExecSync("not json")).toThrow();
});

test("ctl exec: the session request round-trips; bad ids, dirs and flags are refused", () => {
  const line = encodeCtlExec({ id: "e2", dir: "/run/crio/monitor/e2", terminal: true, stdin: false });
  expect(line.startsWith(`${CTL_EXEC} `) && line.endsWith("\n")).toBe(true);
  const ok = { id: "e2", dir: "/run/crio/monitor/e2", terminal: true, stdin: false };
  expect(parseCtlExec(line.slice(CTL_EXEC.length + 1).trim())).toEqual(ok);
  expect(() => parseCtlExec(JSON.stringify({ ...ok, id: "" }))).toThrow("invalid id");
  expect(() => parseCtlExec(JSON.stringify({ ...ok, dir: "x" }))).toThrow("invalid dir");
  expect(() => parseCtlExec(JSON.stringify({ ...ok, terminal: "yes" }))).toThrow("invalid terminal");
  expect(() => parseCtlExec(JSON.stringify({ ...ok, stdin: 1 }))).toThrow("invalid stdin");
  expect(Frame.STARTED).toBe(7);
});
