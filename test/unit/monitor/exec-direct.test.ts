// ExecSync run by the daemon (monitor/exec-direct.ts): the status runc logs as it reaps the
// process (read when runc outlives it) and the runtime's error when the process never started.
import { expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { reapedStatus, runtimeError } from "../../../src/monitor/exec-direct.ts";

const debug = (msg: string, extra: Record<string, unknown> = {}) => JSON.stringify({ level: "debug", msg, time: "2026-12-08T00:34:49Z", ...extra });

test("reapedStatus: the status of runc's 'process exited' line for that pid, and nothing else", () => {
  const log = [
    debug("nsexec-0[22790]: spawn stage-1"),
    debug("process exited", { pid: 111, status: 9 }),
    'not json, "process exited"',
    debug("process exited", { pid: 22792, status: 4, file: "signals.go:92" }),
    "",
  ].join("\n");
  expect(reapedStatus(log, 22792)).toBe(4);
  expect(reapedStatus(log, 111)).toBe(9);
  expect(reapedStatus(log, 5)).toBeUndefined(); // another process's line is not this one's status
  expect(reapedStatus(debug("process exited", { pid: 5, status: "4" }), 5)).toBeUndefined(); // not an integer
  expect(reapedStatus("", 5)).toBeUndefined();
});

test("runtimeError: the last error of the log (debug lines are not errors), else stderr's tail, else the status", () => {
  const dir = mkdtempSync(join(tmpdir(), "exec-direct-"));
  const log = join(dir, "runtime.log");
  writeFileSync(
    log,
    [
      debug("nsexec-0: spawn stage-1"),
      JSON.stringify({ level: "error", msg: "first" }),
      JSON.stringify({ level: "error", msg: 'exec failed: exec: "/bin/nope": stat /bin/nope: no such file or directory' }),
      "panic: not json",
    ].join("\n"),
  );
  const err = new TextEncoder().encode("some stderr\n");
  expect(runtimeError(log, err, 255)).toBe('exec failed: exec: "/bin/nope": stat /bin/nope: no such file or directory');
  writeFileSync(log, `${debug("only debug")}\n`);
  expect(runtimeError(log, err, 255)).toBe("some stderr");
  expect(runtimeError(join(dir, "absent"), new Uint8Array(), 255)).toBe("runtime exited with status 255");
  expect(runtimeError(log, new TextEncoder().encode("x".repeat(5000)), 1)).toHaveLength(4096);
});
