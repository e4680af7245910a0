import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createNotifier, sdNotify, watchdogInterval } from "../../../src/sys/notify.ts";
import { NotifyReceiver } from "../../support/operator.ts";

const dir = () => mkdtempSync(join(tmpdir(), "crio-notify-"));

test("sdNotify sends one datagram to a socket path", async () => {
  const d = dir();
  using r = new NotifyReceiver(join(d, "notify.sock"));
  sdNotify(r.address, "READY=1\nSTATUS=ok");
  const m = await r.waitFor("READY=1");
  expect(m.text).toBe("READY=1\nSTATUS=ok");
  rmSync(d, { recursive: true, force: true });
});

test("sdNotify reaches an abstract socket (@name)", async () => {
  using r = new NotifyReceiver(`@crio-test-${process.pid}-${Math.random().toString(36).slice(2)}`);
  sdNotify(r.address, "WATCHDOG=1");
  expect((await r.waitFor("WATCHDOG=1")).text).toBe("WATCHDOG=1");
});

test("sdNotify names the socket and errno when nobody listens, and refuses relative paths", () => {
  expect(() => sdNotify("/nonexistent/crio-notify.sock", "READY=1")).toThrow(/sendto \/nonexistent\/crio-notify.sock: No such file or directory/);
  expect(() => sdNotify("relative.sock", "READY=1")).toThrow(/only absolute paths and abstract/);
});

test("createNotifier sends READY, STATUS, STOPPING and RELOADING, and unsets the variables", async () => {
  const d = dir();
  using r = new NotifyReceiver(join(d, "n.sock"));
  const env: Record<string, string | undefined> = { NOTIFY_SOCKET: r.address, WATCHDOG_USEC: "4000000", WATCHDOG_PID: String(process.pid), KEEP: "1" };
  const n = createNotifier({ env });
  expect(env).toEqual({ KEEP: "1" });
  expect(n.watchdogIntervalMs).toBe(2000);
  n.status("recovering\nstate");
  n.ready("serving");
  n.reloading();
  n.stopping();
  await r.waitFor("STOPPING=1");
  const texts = r.messages.map((m) => m.text);
  expect(texts[0]).toBe("STATUS=recovering state");
  expect(texts[1]).toBe("READY=1\nSTATUS=serving");
  expect(texts[2]).toMatch(/^RELOADING=1\nMONOTONIC_USEC=\d+$/);
  expect(texts[3]).toBe("STOPPING=1");
  rmSync(d, { recursive: true, force: true });
});

test("the watchdog pings at half of WATCHDOG_USEC until stopped", async () => {
  const d = dir();
  using r = new NotifyReceiver(join(d, "w.sock"));
  const n = createNotifier({ env: { NOTIFY_SOCKET: r.address, WATCHDOG_USEC: "60000" } });
  expect(n.watchdogIntervalMs).toBe(30);
  const stop = n.startWatchdog();
  await r.waitFor("WATCHDOG=1");
  const until = Date.now() + 5000;
  while (r.lines().filter((l) => l === "WATCHDOG=1").length < 3 && Date.now() < until) await Bun.sleep(10);
  stop();
  const count = r.lines().length;
  expect(count).toBeGreaterThanOrEqual(3);
  await Bun.sleep(100); // the interval is 30 ms: a running timer would have sent more by now
  expect(r.lines().length).toBe(count);
  rmSync(d, { recursive: true, force: true });
});

test("without NOTIFY_SOCKET every call is a no-op; send errors go to onError", () => {
  const off = createNotifier({ env: {} });
  expect(off.socket).toBe("");
  off.ready();
  expect(off.startWatchdog()).toBeFunction();
  const errors: string[] = [];
  const broken = createNotifier({ env: { NOTIFY_SOCKET: "/nonexistent/x.sock" }, onError: (e) => errors.push(e.message) });
  broken.ready();
  expect(errors).toEqual([expect.stringContaining("sendto /nonexistent/x.sock")]);
});

test("watchdogInterval honours WATCHDOG_PID and rejects junk", () => {
  expect(watchdogInterval("10000000", undefined, 7)).toBe(5000);
  expect(watchdogInterval("10000000", "7", 7)).toBe(5000);
  expect(watchdogInterval("10000000", "8", 7)).toBeUndefined();
  expect(watchdogInterval("0", undefined, 7)).toBeUndefined();
  expect(watchdogInterval("abc", undefined, 7)).toBeUndefined();
  expect(watchdogInterval(undefined, undefined, 7)).toBeUndefined();
});
