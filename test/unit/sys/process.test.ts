import { expect, test } from "bun:test";
import { release } from "node:os";
import { kernelAtLeast, kernelRelease, ownChildren, pidAlive, procCmdline, procCmdlineAsync } from "../../../src/sys/process.ts";

test("kernelAtLeast compares major.minor of a release string", () => {
  expect(kernelAtLeast(5, 12, "5.12.0")).toBe(true);
  expect(kernelAtLeast(5, 12, "5.11.22-foo")).toBe(false);
  expect(kernelAtLeast(5, 12, "6.1.0-18-amd64")).toBe(true);
  expect(kernelAtLeast(5, 12, "4.19.300")).toBe(false);
  expect(kernelAtLeast(5, 12, "")).toBe(false);
});

test("kernelRelease is uname's release", () => {
  expect(kernelRelease()).toBe(release());
});

test("pidAlive, procCmdline and ownChildren of a child; a gone pid", async () => {
  const p = Bun.spawn(["/bin/sleep", "30"]);
  try {
    expect(pidAlive(p.pid)).toBe(true);
    // right after the fork the child may not have exec'd yet: its cmdline is still ours
    for (let i = 0; i < 200 && procCmdline(p.pid) !== "/bin/sleep\u000030\u0000"; i++) await Bun.sleep(5);
    expect(procCmdline(p.pid)).toBe("/bin/sleep\u000030\u0000");
    expect(await procCmdlineAsync(p.pid)).toBe("/bin/sleep\u000030\u0000");
    expect(ownChildren()).toContain(p.pid);
  } finally {
    p.kill("SIGKILL");
    await p.exited;
  }
  expect(pidAlive(p.pid)).toBe(false);
  expect(procCmdline(p.pid)).toBeUndefined();
  expect(await procCmdlineAsync(p.pid)).toBeUndefined();
  expect(pidAlive(1)).toBe(true); // init: alive whoever asks (EPERM counts as alive)
});
