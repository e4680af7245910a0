import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CTL_EXEC_SYNC, encodeFrame, Frame, monitorFiles, parseCtlExecSync } from "../../../src/conmon/protocol.ts";
import { execSyncInContainerMonitor } from "../../../src/monitor/exec-sync.ts";

// The daemon's side of ctl exec-sync against fake monitors on a temp socket: a monitor that
// predates the request (a text answer) means "fall back"; frames are collected and capped; an
// error in EXIT is the runtime's error; the exec dir is gone afterwards in every case.
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fakeMonitor(answer: (req: string, write: (b: Uint8Array | string) => void) => void) {
  const socketDir = mkdtempSync(join(tmpdir(), "crio-ctl-"));
  dirs.push(socketDir);
  const dir = join(socketDir, "c1");
  mkdirSync(dir);
  const requests: string[] = [];
  const server = Bun.listen<{ buf: string }>({
    unix: monitorFiles(dir).ctl,
    socket: {
      open: (s) => void (s.data = { buf: "" }),
      data: (s, d) => {
        s.data.buf += new TextDecoder().decode(d);
        const nl = s.data.buf.indexOf("\n");
        if (nl < 0) return;
        const line = s.data.buf.slice(0, nl);
        requests.push(line);
        answer(line, (b) => void s.write(b));
        s.end();
      },
    },
  });
  const base = { selfCommand: ["/bin/false"], runtime: ["/bin/false", "--root", "/nonexistent"], socketDir };
  return { socketDir, requests, base, stop: () => server.stop(true) };
}

const proc = { args: ["true"], cwd: "/" };

test("a monitor that predates exec-sync: undefined (the caller falls back), nothing left", async () => {
  const m = fakeMonitor((line, write) => write(`error unknown request ${JSON.stringify(line.slice(0, 64))}\n`));
  try {
    expect(await execSyncInContainerMonitor({ ...m.base, containerId: "c1", process: proc })).toBeUndefined();
    expect(m.requests[0]!.startsWith(`${CTL_EXEC_SYNC} `)).toBe(true);
    expect(readdirSync(m.socketDir)).toEqual(["c1"]);
  } finally {
    m.stop();
  }
});

test("frames: output collected and capped per stream, the exit code and timeout flag", async () => {
  const m = fakeMonitor((line, write) => {
    const r = parseCtlExecSync(line.slice(CTL_EXEC_SYNC.length + 1));
    expect(existsSync(join(r.dir, "process.json"))).toBe(true);
    write(encodeFrame(Frame.STDOUT, new TextEncoder().encode("hello ")));
    write(encodeFrame(Frame.STDERR, new TextEncoder().encode("err")));
    write(encodeFrame(Frame.STDOUT, new TextEncoder().encode("world, and more")));
    write(encodeFrame(Frame.EXIT, new TextEncoder().encode(JSON.stringify({ exitCode: 3, timedOut: true }))));
  });
  try {
    const r = await execSyncInContainerMonitor({ ...m.base, containerId: "c1", process: proc, maxOutput: 11, timeoutMs: 500 });
    expect(r && { ...r, stdout: new TextDecoder().decode(r.stdout), stderr: new TextDecoder().decode(r.stderr) }).toEqual({
      exitCode: 3,
      timedOut: true,
      stdout: "hello world",
      stderr: "err",
    });
    expect(JSON.parse(m.requests[0]!.slice(CTL_EXEC_SYNC.length + 1)).timeoutMs).toBe(500);
    expect(readdirSync(m.socketDir)).toEqual(["c1"]);
  } finally {
    m.stop();
  }
});

test("an error in EXIT is the runtime's error (kind unknown); a connection closed early is internal", async () => {
  const failing = fakeMonitor((_l, write) => write(encodeFrame(Frame.EXIT, new TextEncoder().encode(JSON.stringify({ error: "exec failed: no such file" })))));
  try {
    const e = await execSyncInContainerMonitor({ ...failing.base, containerId: "c1", process: proc }).catch((x) => x);
    expect(e).toMatchObject({ name: "RuntimeError", kind: "unknown", message: expect.stringContaining("no such file") });
  } finally {
    failing.stop();
  }
  const closing = fakeMonitor((_l, write) => write(encodeFrame(Frame.STDOUT, new Uint8Array([65]))));
  try {
    const e = await execSyncInContainerMonitor({ ...closing.base, containerId: "c1", process: proc }).catch((x) => x);
    expect(e).toMatchObject({ name: "RuntimeError", kind: "internal", message: expect.stringContaining("closed the connection") });
    expect(readdirSync(closing.socketDir)).toEqual(["c1"]);
  } finally {
    closing.stop();
  }
});

test("no ctl socket (no monitor): undefined", async () => {
  const socketDir = mkdtempSync(join(tmpdir(), "crio-ctl-"));
  dirs.push(socketDir);
  expect(await execSyncInContainerMonitor({ selfCommand: [], runtime: ["/bin/false"], socketDir, containerId: "c1", process: proc })).toBeUndefined();
});
