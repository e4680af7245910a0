import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "../harness.ts";
import { processesOf } from "../support/crash-churn.ts";
import {
  arm,
  codeOf,
  created,
  createCall,
  eventuallyConsistent,
  expectConsistent,
  hold,
  kill,
  parentOf,
  release,
  RUNTIME_FAILED,
  running,
  S,
  setUp,
  stateOf,
  tearDown,
} from "../support/inject.ts";

beforeAll(setUp, 120_000);
afterAll(tearDown, 120_000);

describe("SIGKILL of runc", () => {
  for (const phase of ["before", "after"] as const) {
    test(`at create (${phase} the real runc create): CreateContainer fails, nothing of the container is left`, async () => {
      arm("create", phase);
      const call = createCall(`rc-${phase}`);
      kill(await hold("create", phase, call));
      const r = await codeOf(call);
      expect(RUNTIME_FAILED).toContain(r.code);
      expect(r.message).toMatch(/runtime create.*(status|exit) 137/);
      expect((await S.d.cri.listContainers({})).containers.filter((c) => c.metadata?.name === `rc-${phase}`)).toEqual([]);
      await expectConsistent();
    });

    test(`at start (${phase} the real runc start): StartContainer fails, the container is EXITED and not running`, async () => {
      const id = await created(`rs-${phase}`);
      arm("start", phase);
      const call = S.d.cri.startContainer({ containerId: id }, { timeoutMs: 120_000 });
      kill(await hold("start", phase, call));
      const r = await codeOf(call);
      expect(RUNTIME_FAILED).toContain(r.code);
      expect(r.message).toMatch(/start.*(status|exit) 137/);
      expect(await stateOf(id)).toBe("CONTAINER_EXITED");
      await expectConsistent();
      await S.d.cri.removeContainer({ containerId: id });
      await expectConsistent();
    });

    test(`at exec (${phase} the real runc exec): ExecSync fails, the container runs on`, async () => {
      const id = await running(`re-${phase}`);
      arm("exec", phase);
      const call = S.d.cri.execSync({ containerId: id, cmd: ["sh", "-c", "sleep 0.2; echo done"], timeout: 30n }, { timeoutMs: 120_000 });
      kill(await hold("exec", phase, call));
      const r = await codeOf(call);
      expect(RUNTIME_FAILED).toContain(r.code);
      expect(r.message).toMatch(/exec.*(status|exit) 137/);
      expect(await stateOf(id)).toBe("CONTAINER_RUNNING");
      const again = await S.d.cri.execSync({ containerId: id, cmd: ["echo", "again"], timeout: 30n });
      expect(new TextDecoder().decode(again.stdout)).toBe("again\n");
      await expectConsistent();
      await S.d.cri.removeContainer({ containerId: id });
    });
  }
});

describe("SIGKILL of the monitor", () => {
  for (const phase of ["before", "after"] as const) {
    test(`during create (${phase} the real runc create): CreateContainer fails; a runc create that goes on afterwards leaves nothing`, async () => {
      arm("create", phase);
      const call = createCall(`mc-${phase}`);
      const wrap = await hold("create", phase, call);
      const monitor = parentOf(wrap);
      expect(readFileSync(`/proc/${monitor}/cmdline`, "utf8")).toContain("conmon");
      kill(monitor);
      const r = await codeOf(call);
      release(); // runc create goes on (or returns), with its monitor gone
      expect(RUNTIME_FAILED).toContain(r.code);
      expect(r.message).toContain("monitor");
      await waitFor(
        () => !existsSync(`/proc/${wrap}`) || readFileSync(`/proc/${wrap}/stat`, "utf8").split(") ")[1]!.startsWith("Z"),
        30_000,
        "the orphaned runc create to end",
      );
      await expectConsistent();
    });
  }

  test("during start (runc start held): what is listed is what runc says", async () => {
    const id = await created("ms");
    arm("start", "before");
    const call = S.d.cri.startContainer({ containerId: id }, { timeoutMs: 120_000 });
    const wrap = await hold("start", "before", call);
    // runc start is the daemon's child; the container's monitor waits for the init: kill it
    const monitor = Number(readFileSync(join(S.d.runroot, "monitor", id, "monitor.pid"), "utf8"));
    expect(processesOf(S.d).some((p) => p.id === id && p.what === `monitor process ${monitor}`)).toBe(true);
    kill(monitor);
    release();
    const r = await codeOf(call);
    // with its monitor gone the start may succeed or not; either way what is listed is true
    await eventuallyConsistent(`after start (${JSON.stringify(r)})`);
    void wrap;
    await S.d.cri.removeContainer({ containerId: id });
    await expectConsistent();
  });

  test("during exec (runc exec held): the exec is the daemon's own and completes; the container's state is what runc says", async () => {
    const id = await running("me");
    arm("exec", "before");
    const call = S.d.cri.execSync({ containerId: id, cmd: ["echo", "x"], timeout: 30n }, { timeoutMs: 120_000 });
    const wrap = await hold("exec", "before", call);
    // ExecSync runs the runtime from the daemon (monitor/exec-direct.ts): no monitor in between
    expect(parentOf(wrap)).toBe(S.d.proc.pid);
    const monitor = Number(readFileSync(join(S.d.runroot, "monitor", id, "monitor.pid"), "utf8"));
    expect(readFileSync(`/proc/${monitor}/cmdline`, "utf8")).toContain(id);
    kill(monitor); // the container's monitor dies mid-exec: the exec does not depend on it
    release();
    const r = await codeOf(call);
    expect(r).toEqual({ code: 0, message: "" });
    await eventuallyConsistent("after exec");
    await S.d.cri.removeContainer({ containerId: id });
    await expectConsistent();
  });
});
