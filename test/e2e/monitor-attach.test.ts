// The monitor with real runc: attach (stdin in, output out, stdin-once) and terminals received
// over the console socket (output, input, resize).
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { Monitors } from "../../src/monitor/index.ts";
import { waitFor } from "../harness.ts";
import { canRun, MonitorWorld, records } from "./monitor-support.ts";

setDefaultTimeout(30_000);

describe.skipIf(!canRun())("monitor: attach", () => {
  test("stdin reaches cat, its output reaches every client and the log; stdin-once ends it", async () => {
    await using w = new MonitorWorld();
    const m = new Monitors(w.config);
    const id = w.id();
    await m.spawn({ id, bundle: w.bundle(id, "cat; echo done >&2; exit 4"), logPath: w.logPath(id), stdin: true, stdinOnce: true });
    const out = { a: "", b: "", err: "" };
    const dec = new TextDecoder();
    const a = await m.attach(id, { stdout: (d) => (out.a += dec.decode(d)), stderr: (d) => (out.err += dec.decode(d)) });
    const b = await m.attach(id, { stdout: (d) => (out.b += dec.decode(d)) });
    await w.runc("start", id);
    a.stdin("hello\n");
    await waitFor(() => out.a.includes("hello") && out.b.includes("hello"), 10_000, "echo");
    b.stdin("ignored? no: any client may write\n");
    await waitFor(() => out.a.includes("any client"), 10_000, "second client's input");
    a.close(); // the first client leaves: stdin-once closes the container's stdin, cat ends
    expect(await b.exit).toBe(4);
    expect(out.b).toBe("hello\nignored? no: any client may write\n");
    expect(records(w.logLines(id))).toEqual([
      ["stdout", "F", "hello"],
      ["stdout", "F", "ignored? no: any client may write"],
      ["stderr", "F", "done"],
    ]);
    expect((await m.readExit(id))?.exitCode).toBe(4);
  });

  test("without stdin-once a client may leave and come back", async () => {
    await using w = new MonitorWorld();
    const m = new Monitors(w.config);
    const id = w.id();
    await m.spawn({ id, bundle: w.bundle(id, "read a; echo got $a; read b; echo got $b"), logPath: w.logPath(id), stdin: true });
    await w.runc("start", id);
    let text = "";
    const first = await m.attach(id, { stdout: (d) => (text += new TextDecoder().decode(d)) });
    first.stdin("one\n");
    await waitFor(() => text.includes("got one"), 10_000);
    first.close();
    const second = await m.attach(id, { stdout: (d) => (text += new TextDecoder().decode(d)) });
    second.stdin("two\n");
    expect(await second.exit).toBe(0);
    expect(text).toBe("got one\ngot two\n");
  });

  test("a terminal: output through the pty, input echoed, resize seen by stty", async () => {
    await using w = new MonitorWorld();
    const m = new Monitors(w.config);
    const id = w.id();
    const bundle = w.bundle(id, "read x; stty size; echo bye $x", { terminal: true });
    await m.spawn({ id, bundle, logPath: w.logPath(id), terminal: true, stdin: true });
    let text = "";
    const c = await m.attach(id, { stdout: (d) => (text += new TextDecoder().decode(d)) });
    await w.runc("start", id);
    await m.resize(id, 33, 101);
    c.resize(40, 120); // frames work as well as the ctl socket; the last one wins
    c.stdin("hi\r");
    expect(await c.exit).toBe(0);
    expect(text).toContain("hi\r\n"); // the pty echoes input
    expect(text).toContain("40 120\r\n");
    expect(text).toContain("bye hi\r\n");
    const recs = records(w.logLines(id));
    expect(recs.every((r) => r[0] === "stdout")).toBe(true);
    expect(recs.map((r) => r[2])).toContain("bye hi\r");
  });

  test("ctl requests fail cleanly when there is no terminal or no monitor", async () => {
    await using w = new MonitorWorld();
    const m = new Monitors(w.config);
    const id = w.id();
    await m.spawn({ id, bundle: w.bundle(id, "exit 0"), logPath: w.logPath(id) });
    await expect(m.resize(id, 10, 10)).rejects.toThrow("no terminal");
    await w.runc("start", id);
    await waitFor(() => m.readExit(id), 10_000);
    await waitFor(async () => (await m.reopenLog(id).catch((e) => e))?.kind === "failed-precondition", 10_000, "monitor gone");
  });
});
