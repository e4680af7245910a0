// The one builder of runtime command lines: every verb, both cgroup drivers.
import { describe, expect, test } from "bun:test";
import { RuntimeCommand } from "../../../src/oci/command.ts";
import { buildArgs, parseArgs, type MonitorArgs } from "../../../src/conmon/protocol.ts";

const verbs = (c: RuntimeCommand): Record<string, string[]> => ({
  create: c.create("c1", { bundle: "/b/c1", pidFile: "/m/c1/pid" }),
  "create (monitor)": c.create("c1", { bundle: "/b/c1", pidFile: "/m/c1/pid", consoleSocket: "/m/c1/console", log: "/m/c1/runtime.log" }),
  start: c.start("c1"),
  exec: c.exec("c1", { processPath: "/m/e1/process.json" }),
  "exec (monitor)": c.exec("c1", { processPath: "/m/e1/process.json", detach: true, pidFile: "/m/e1/pid", log: "/m/e1/runtime.log" }),
  "exec (daemon, ExecSync)": c.exec("c1", { processPath: "/m/e1/process.json", pidFile: "/m/e1/pid", log: "/m/e1/runtime.log", debug: true }),
  kill: c.kill("c1", "SIGTERM"),
  "kill --all": c.kill("c1", 9, true),
  update: c.update("c1", "-"),
  state: c.state("c1"),
  delete: c.delete("c1"),
  "delete --force": c.delete("c1", true),
  list: c.list(),
  pause: c.pause("c1"),
  resume: c.resume("c1"),
  features: c.features(),
});

describe.each([
  ["cgroupfs", false, ["/usr/sbin/runc", "--root", "/run/runc"]],
  ["systemd", true, ["/usr/sbin/runc", "--root", "/run/runc", "--systemd-cgroup"]],
] as const)("RuntimeCommand with the %s driver", (_driver, systemdCgroup, prefix) => {
  const c = RuntimeCommand.of({ path: "/usr/sbin/runc", root: "/run/runc", systemdCgroup });

  test("every verb starts with the handler's prefix, global flags before the verb", () => {
    expect(c.prefix).toEqual(prefix);
    expect(c.systemdCgroup).toBe(systemdCgroup);
    for (const [verb, argv] of Object.entries(verbs(c))) {
      expect({ verb, head: argv.slice(0, prefix.length) }).toEqual({ verb, head: [...prefix] });
      // --systemd-cgroup is global: never after the verb, and there exactly when the driver says
      expect({ verb, n: argv.filter((a) => a === "--systemd-cgroup").length }).toEqual({ verb, n: systemdCgroup ? 1 : 0 });
    }
  });

  test("each verb's own arguments", () => {
    const p = [...prefix];
    const v = verbs(c);
    expect(v.create).toEqual([...p, "create", "--bundle", "/b/c1", "--pid-file", "/m/c1/pid", "c1"]);
    expect(v["create (monitor)"]).toEqual([
      ...p,
      "--log",
      "/m/c1/runtime.log",
      "--log-format",
      "json",
      "create",
      "--bundle",
      "/b/c1",
      "--pid-file",
      "/m/c1/pid",
      "--console-socket",
      "/m/c1/console",
      "c1",
    ]);
    expect(v.start).toEqual([...p, "start", "c1"]);
    expect(v.exec).toEqual([...p, "exec", "--process", "/m/e1/process.json", "c1"]);
    // --debug is global too: before the verb
    expect(v["exec (daemon, ExecSync)"]).toEqual([
      ...p,
      "--log",
      "/m/e1/runtime.log",
      "--log-format",
      "json",
      "--debug",
      "exec",
      "--process",
      "/m/e1/process.json",
      "--pid-file",
      "/m/e1/pid",
      "c1",
    ]);
    expect(v["exec (monitor)"]).toEqual([
      ...p,
      "--log",
      "/m/e1/runtime.log",
      "--log-format",
      "json",
      "exec",
      "--process",
      "/m/e1/process.json",
      "--detach",
      "--pid-file",
      "/m/e1/pid",
      "c1",
    ]);
    expect(v.kill).toEqual([...p, "kill", "c1", "SIGTERM"]);
    expect(v["kill --all"]).toEqual([...p, "kill", "--all", "c1", "9"]);
    expect(v.update).toEqual([...p, "update", "--resources", "-", "c1"]);
    expect(v.state).toEqual([...p, "state", "c1"]);
    expect(v.delete).toEqual([...p, "delete", "c1"]);
    expect(v["delete --force"]).toEqual([...p, "delete", "--force", "c1"]);
    expect(v.list).toEqual([...p, "list", "--format", "json"]);
    expect(v.pause).toEqual([...p, "pause", "c1"]);
    expect(v.resume).toEqual([...p, "resume", "c1"]);
    expect(v.features).toEqual([...p, "features"]);
    expect(c.version()).toEqual(["/usr/sbin/runc", "--version"]);
  });

  test("the monitor rebuilds the same create argv from the prefix it is handed on its command line", () => {
    const a: MonitorArgs = {
      mode: "create",
      id: "c1",
      container: "c1",
      runtime: [...c.prefix],
      bundle: "/b/c1",
      dir: "/m/c1",
      logPath: "/l",
      exitDir: "/x",
      terminal: false,
      stdin: false,
      stdinOnce: false,
      logSizeMax: 0,
      timeoutMs: 0,
      attachTimeoutMs: 0,
    };
    const got = new RuntimeCommand(parseArgs(buildArgs(a)).runtime);
    expect(got.create("c1", { bundle: "/b/c1", pidFile: "/m/c1/pid" })).toEqual(c.create("c1", { bundle: "/b/c1", pidFile: "/m/c1/pid" }));
  });
});

test("a prefix without a runtime is refused", () => {
  expect(() => new RuntimeCommand([])).toThrow("a runtime command needs the runtime's path");
});
