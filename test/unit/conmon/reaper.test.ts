import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { descendants, killTree } from "../../../src/sys/kill-tree.ts";

// The reaper makes its process a child subreaper and reaps its zombie children: run it in a
// child process of its own, never inside the test runner.
test("the reaper collects orphans re-parented to it, with 128+signal for a kill", async () => {
  const script = `
    import { Reaper } from ${JSON.stringify(`${import.meta.dir}/../../../src/conmon/reaper.ts`)};
    const r = new Reaper();
    r.start();
    const p = Bun.spawn(["sh", "-c", "exec 4>&1 >/dev/null; sleep 0.1 4>&- & echo $! >&4; sleep 30 4>&- & echo $! >&4; (sleep 0.05; exit 0) 4>&- & exit 0"], { stdio: ["ignore", "pipe", "inherit"] });
    r.own(p.pid);
    const [a, b] = (await new Response(p.stdout).text()).trim().split("\\n").map(Number);
    await p.exited;
    r.disown(p.pid);
    const orphanA = r.wait(a);
    process.kill(b, "SIGKILL");
    const [ea, eb] = await Promise.all([orphanA, r.wait(b)]);
    await Bun.sleep(100); // the third orphan (not waited for) exits and must still be reaped
    r.check();
    const zombies = r.children().filter((c) => /\\) Z/.test(require("fs").readFileSync("/proc/" + c + "/stat", "utf8")));
    console.log(JSON.stringify({ a: ea.exitCode, b: eb.exitCode, zombies: zombies.length, at: typeof ea.at }));
    r.stop();
    process.exit(0);`;
  const p = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  expect(err).toBe("");
  expect(JSON.parse(out)).toEqual({ a: 0, b: 137, zombies: 0, at: "number" });
});

test("killTree kills a process and all its descendants and waits until they are gone", async () => {
  const p = Bun.spawn(["sh", "-c", "sh -c 'sleep 100 & sleep 100; :' & sleep 100 & wait"], { stdout: "ignore" });
  let tree: number[] = [];
  for (let i = 0; i < 200 && tree.length < 4; i++) {
    tree = descendants(p.pid);
    await Bun.sleep(10);
  }
  expect(tree.length).toBe(4); // the inner sh and its two sleeps, and the outer sleep
  await killTree(p.pid);
  expect(await p.exited).toBe(137);
  for (const pid of tree) expect(running(pid)).toBe(false);
});

function running(pid: number): boolean {
  try {
    return !/\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

test("the reaper notices its children's exits through SIGCHLD alone: no timer keeps an idle monitor awake", async () => {
  const script = `
    import { Reaper } from ${JSON.stringify(`${import.meta.dir}/../../../src/conmon/reaper.ts`)};
    const r = new Reaper();
    r.start();
    const p = Bun.spawn(["sh", "-c", "sleep 0.3 >/dev/null 2>&1 & echo $!"], { stdio: ["ignore", "pipe", "inherit"] });
    r.own(p.pid);
    const pid = Number((await new Response(p.stdout).text()).trim());
    await p.exited;
    r.disown(p.pid);
    const t0 = performance.now();
    const e = await r.wait(pid);
    // with nothing else scheduled, the process would exit here if no timer were pending
    console.log(JSON.stringify({ code: e.exitCode, waitedMs: Math.round(performance.now() - t0) }));
    r.stop();
    process.exit(0);`;
  const p = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  expect(err).toBe("");
  const r = JSON.parse(out);
  expect(r.code).toBe(0);
  expect(r.waitedMs).toBeLessThan(1500); // SIGCHLD, not a poll
});
