import { afterAll, describe, expect, test } from "bun:test";
import { ExecError, offloadSpawns, run, runRaw } from "../../../src/sys/exec.ts";

// The same contract in-thread and on the spawner thread (the daemon's mode once it serves).
for (const mode of ["in-thread", "spawner thread"] as const) {
  describe(`runRaw, ${mode}`, () => {
    const on = () => offloadSpawns(mode === "spawner thread");
    afterAll(() => offloadSpawns(false));

    test("stdout, stderr, exit code, stdin, env and cwd", async () => {
      on();
      const r = await runRaw(["/bin/sh", "-c", 'read x; echo "out:$x:$FOO:$(pwd)"; echo err >&2; exit 3'], {
        stdin: "hello\n",
        env: { FOO: "bar", PATH: "/usr/bin:/bin" },
        cwd: "/tmp",
      });
      expect(r).toEqual({ code: 3, stdout: "out:hello:bar:/tmp\n", stderr: "err\n" });
    });

    test("bytes on stdin", async () => {
      on();
      expect(await run(["/bin/cat"], { stdin: new Uint8Array([104, 105]) })).toBe("hi");
    });

    test("a program that cannot start is an ExecError with no exit code", async () => {
      on();
      const e = await runRaw(["/nonexistent/program"]).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ExecError);
      expect((e as ExecError).exitCode).toBeNull();
    });

    test("run throws ExecError with the stderr tail on a non-zero exit", async () => {
      on();
      const e = await run(["/bin/sh", "-c", "echo boom >&2; exit 7"]).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ExecError);
      expect((e as ExecError).exitCode).toBe(7);
      expect((e as ExecError).stderr).toBe("boom");
    });

    test("timeoutMs kills the program", async () => {
      on();
      const t = performance.now();
      const r = await runRaw(["/bin/sleep", "30"], { timeoutMs: 200 });
      expect(r.code).not.toBe(0);
      expect(performance.now() - t).toBeLessThan(10_000);
    });

    test("an abort signal kills the program, also one aborted before the call", async () => {
      on();
      const ac = new AbortController();
      const p = runRaw(["/bin/sleep", "30"], { signal: ac.signal });
      setTimeout(() => ac.abort(), 100);
      const t = performance.now();
      expect((await p).code).not.toBe(0);
      expect(performance.now() - t).toBeLessThan(10_000);
      const e = await runRaw(["/bin/sleep", "30"], { signal: AbortSignal.abort() }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ExecError);
    });

    test("many at once", async () => {
      on();
      const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => run(["/bin/echo", String(i)])));
      expect(rs).toEqual(Array.from({ length: 20 }, (_, i) => `${i}\n`));
    });
  });
}
