// The runtime handler registry: one object per handler, rebuilt only when a reload changes what
// it was built from (runtime path or root, monitor path or env), the old one's standbys closed.
import { expect, test } from "bun:test";
import { pathsFor } from "../../../src/paths.ts";
import { RuntimeHandlers, type HandlerConfig, type HandlersSettings } from "../../../src/runtime/index.ts";

const entry = (o: Partial<HandlerConfig> = {}): HandlerConfig => ({
  runtimePath: "/nonexistent/runc",
  runtimeRoot: "/run/x-runc",
  monitorPath: "",
  monitorEnv: [],
  noSyncLog: false,
  containerCreateTimeout: 240,
  ...o,
});

function world(cgroupManager: "systemd" | "cgroupfs" = "cgroupfs") {
  let settings: HandlersSettings = {
    runtimes: { runc: entry(), crun: entry({ runtimePath: "", runtimeRoot: "/run/x-crun" }) },
    defaultRuntime: "runc",
    logToJournald: false,
    noPivot: false,
    monitorCgroupOf: () => "",
  };
  const found = new Map<string, string>();
  const log = { warn: () => {}, info: () => {}, withTag: () => log };
  const handlers = new RuntimeHandlers(
    { settings: () => settings, paths: pathsFor("/nonexistent/root", "/nonexistent/run"), cgroupManager, log: log as never },
    (name) => found.get(name),
  );
  return { handlers, found, set: (f: (s: HandlersSettings) => HandlersSettings) => (settings = f(settings)) };
}

test("one object per handler, its runtime's command prefix from the handler's settings", () => {
  const w = world("systemd");
  const h = w.handlers.get("runc");
  expect(w.handlers.get("runc")).toBe(h);
  expect(w.handlers.default()).toBe(h);
  expect(h.runtime.command.prefix).toEqual(["/nonexistent/runc", "--root", "/run/x-runc", "--systemd-cgroup"]);
  // the monitors run the same prefix (MonitorArgs.runtime)
  expect(h.monitors.config.runtime).toEqual(h.runtime.command.prefix);
});

test("an unknown handler is invalid-argument; a runtime found nowhere is failed-precondition, found later it is used", () => {
  const w = world();
  expect(() => w.handlers.get("kata")).toThrow(expect.objectContaining({ kind: "invalid-argument" }));
  expect(() => w.handlers.get("crun")).toThrow(
    expect.objectContaining({ kind: "failed-precondition", message: expect.stringContaining('runtime "crun" not found') }),
  );
  w.found.set("crun", "/somewhere/crun");
  expect(w.handlers.get("crun").runtime.path).toBe("/somewhere/crun");
});

test("a reload that changes runtime path, root, monitor path or env replaces the handler and closes the old one's standbys", () => {
  const w = world();
  let h = w.handlers.get("runc");
  const changes: Array<Partial<HandlerConfig>> = [
    { runtimePath: "/other/runc" },
    { runtimeRoot: "/run/other" },
    { monitorPath: "/usr/bin/mon" },
    { monitorEnv: ["A=1"] },
  ];
  for (const change of changes) {
    w.set((s) => ({ ...s, runtimes: { ...s.runtimes, runc: { ...s.runtimes.runc!, ...change } } }));
    let closed = false;
    const close = h.monitors.close.bind(h.monitors);
    h.monitors.close = () => {
      closed = true;
      close();
    };
    const next = w.handlers.get("runc");
    expect(next).not.toBe(h);
    expect(closed).toBe(true);
    h = next;
  }
  expect(h.monitors.config.selfCommand).toEqual(["/usr/bin/mon"]);
  expect(h.monitors.config.env).toMatchObject({ A: "1" });
  // other settings (create timeout, …) are read on each call: no new handler
  w.set((s) => ({ ...s, runtimes: { ...s.runtimes, runc: { ...s.runtimes.runc!, containerCreateTimeout: 5, noSyncLog: true } } }));
  expect(w.handlers.get("runc")).toBe(h);
});

test('Status lists the default handler first as "", then each; a handler that cannot run reports nothing supported', async () => {
  const w = world();
  const list = await w.handlers.status();
  expect(list.map((h) => h.name)).toEqual(["", "runc", "crun"]);
  expect(list.find((h) => h.name === "crun")).toEqual({ name: "crun", recursiveReadOnlyMounts: false, userNamespaces: false });
});
