import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dieWithParent, readFirstLine, spawn } from "../../../src/sys/spawn.ts";

test("dieWithParent: the setpriv prefix when /usr/bin/setpriv exists, argv alone otherwise; the argv is not changed", () => {
  const argv = ["/bin/true", "x"];
  const out = dieWithParent(argv);
  expect(argv).toEqual(["/bin/true", "x"]);
  expect(out).toEqual(existsSync("/usr/bin/setpriv") ? ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--", "/bin/true", "x"] : argv);
});

test.skipIf(!existsSync("/usr/bin/setpriv"))("spawn with dieWithParent: the child runs with the parent death signal SIGKILL", async () => {
  const dump = async (die: boolean) => {
    const p = spawn(["/usr/bin/setpriv", "-d"], { stdout: "pipe", dieWithParent: die });
    const out = await new Response(p.stdout).text();
    await p.exited;
    return /^Parent death signal: (.*)$/m.exec(out)?.[1];
  };
  expect(await dump(true)).toBe("KILL");
  expect(await dump(false)).toBe("[none]");
});

test("spawn passes Bun.spawn's options through (stdin, stdout, env, cwd)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "spawn-"));
  try {
    const p = spawn(["/bin/sh", "-c", 'read x; echo "$x:$FOO:$(pwd)"'], {
      stdin: new TextEncoder().encode("hi\n"),
      stdout: "pipe",
      env: { FOO: "bar" },
      cwd: dir,
    });
    expect(await new Response(p.stdout).text()).toBe(`hi:bar:${dir}\n`);
    expect(await p.exited).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("readFirstLine: up to the first newline, and what there is at EOF", async () => {
  const ready = spawn(["/bin/sh", "-c", "echo ready; sleep 5"], { stdout: "pipe" });
  expect(await readFirstLine(ready.stdout)).toBe("ready\n"); // returns while the child still runs
  ready.kill("SIGKILL");
  await ready.exited;
  const short = spawn(["/bin/sh", "-c", "printf half"], { stdout: "pipe" });
  expect(await readFirstLine(short.stdout)).toBe("half");
  await short.exited;
});

test("a missing program: spawn throws (as Bun.spawn does)", () => {
  expect(() => spawn(["/nonexistent/program"])).toThrow();
});
