import { afterEach, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AttachServer } from "../../../src/conmon/attach.ts";
import { CtlServer } from "../../../src/conmon/ctl.ts";
import { Frame } from "../../../src/conmon/protocol.ts";
import { attach } from "../../../src/monitor/attach-client.ts";
import { reopenLog, resize } from "../../../src/monitor/control.ts";
import { waitFor } from "../../harness.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function recorder() {
  const calls: string[] = [];
  const dec = new TextDecoder();
  return {
    calls,
    h: {
      stdin: (d: Uint8Array) => void calls.push(`stdin ${dec.decode(d)}`),
      closeStdin: () => void calls.push("closeStdin"),
      resize: (r: number, c: number) => void calls.push(`resize ${r}x${c}`),
    },
  };
}

function socketDir(): string {
  const d = mkdtempSync(join(tmpdir(), "crio-att-"));
  dirs.push(d);
  return d;
}

test("output goes to every client; input, resize and stdin-once come back", async () => {
  const { calls, h } = recorder();
  const srv = new AttachServer(join(socketDir(), "attach"), h, { stdin: true, stdinOnce: true });
  const got = { a: "", b: "" };
  const a = await attach(srv.path, { stdout: (d) => (got.a += new TextDecoder().decode(d)) });
  expect(await srv.firstClient(1000)).toBe(true);
  const b = await attach(srv.path, { stdout: (d) => (got.b += new TextDecoder().decode(d)), stderr: (d) => (got.b += `!${new TextDecoder().decode(d)}`) });
  await waitFor(() => srv.clients === 2, 2000);
  srv.send(Frame.STDOUT, new TextEncoder().encode("out"));
  srv.send(Frame.STDERR, new TextEncoder().encode("err"));
  a.stdin("x");
  a.resize(24, 80);
  b.stdin("y");
  await waitFor(() => got.a === "out" && got.b === "out!err" && calls.length === 3, 2000);
  b.closeStdin(); // not the first client: stdin stays open
  a.close(); // the first client leaves: stdin-once closes stdin
  await waitFor(() => calls.includes("closeStdin"), 2000);
  b.stdin("too late");
  const exit = b.exit;
  await srv.finish(3);
  expect(await exit).toBe(3);
  expect(calls).toEqual(["stdin x", "resize 24x80", "stdin y", "closeStdin"]);
});

test("no stdin means input is dropped; a client that never came times out", async () => {
  const { calls, h } = recorder();
  const srv = new AttachServer(join(socketDir(), "attach"), h, { stdin: false, stdinOnce: false });
  expect(await srv.firstClient(20)).toBe(false);
  const c = await attach(srv.path, {});
  c.stdin("dropped");
  c.resize(1, 2);
  await waitFor(() => calls.length === 1, 2000);
  c.close();
  srv.close();
  expect(calls).toEqual(["resize 1x2"]);
  await expect(attach(srv.path, {})).rejects.toThrow("no monitor listens");
});

test("the ctl socket answers reopen and resize, and reports failures", async () => {
  const dir = socketDir();
  mkdirSync(join(dir, "c1"));
  const calls: string[] = [];
  let fail = false;
  const srv = new CtlServer(join(dir, "c1", "ctl"), {
    resize: (r, c) => void calls.push(`resize ${r} ${c}`),
    reopenLog: () => {
      if (fail) throw new Error("disk on fire");
      calls.push("reopen");
    },
  });
  await reopenLog(dir, "c1");
  await resize(dir, "c1", 50, 132);
  fail = true;
  await expect(reopenLog(dir, "c1")).rejects.toMatchObject({ kind: "internal", message: 'monitor of "c1": disk on fire' });
  srv.close();
  await expect(reopenLog(dir, "c1")).rejects.toMatchObject({ kind: "failed-precondition" });
  expect(calls).toEqual(["reopen", "resize 50 132"]);
});
