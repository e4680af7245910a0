import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { endFailedStart, removeContainerLeftovers } from "../../../src/container/leftovers.ts";
import { pathsFor } from "../../../src/paths.ts";

const id = (c: string) => c.repeat(64);

test("containers with no record are found by any trace and undone in order; recorded ones are left alone", async () => {
  const dir = mkdtempSync(join(tmpdir(), "crio-leftovers-"));
  try {
    const paths = pathsFor(join(dir, "root"), join(dir, "run"));
    const known = id("a");
    const mid = id("b"); // rootfs, bundle and monitor: a create cut after the monitor started
    const early = id("c"); // only its rootfs: cut before the bundle
    const inRunc = id("d"); // only runc knows it
    for (const [p, ids] of [
      [paths.storage, [known, mid, early]],
      [join(paths.runroot, "containers"), [known, mid]],
      [paths.monitors, [known, mid]],
    ] as const)
      for (const x of ids) mkdirSync(join(p, x), { recursive: true });
    mkdirSync(paths.exits, { recursive: true });
    writeFileSync(join(paths.exits, "not-an-id"), "0");
    const calls: string[] = [];
    const lines: string[] = [];
    const log = { withTag: () => log, info: (m: string) => lines.push(m), warn: (m: string) => lines.push(`WARN ${m}`) };
    const deps = {
      paths,
      log,
      settings: () => ({ runtimeHandlers: ["runc"] }),
      handlers: {
        get: () => ({
          runtime: {
            list: async () => [known, mid, inRunc].map((x) => ({ id: x })),
            state: async () => undefined,
            delete: async (x: string) => void calls.push(`delete ${x[0]}`),
          },
        }),
      },
      monitors: {
        abandon: async (x: string) => void calls.push(`abandon ${x[0]}`),
        alive: async () => false,
        remove: async (x: string) => void calls.push(`cleanup ${x[0]}`),
      },
      rootfs: { remove: async (x: string) => void calls.push(`rootfs ${x[0]}`) },
    };
    const found = await removeContainerLeftovers(deps as never, new Set([known]), () => []);
    expect(found.sort()).toEqual([mid, early, inRunc].sort());
    expect(calls.filter((c) => c.endsWith(" b"))).toEqual(["abandon b", "delete b", "cleanup b", "rootfs b"]);
    expect(calls.filter((c) => c.endsWith(" c"))).toEqual(["abandon c", "cleanup c", "rootfs c"]);
    expect(calls.filter((c) => c.endsWith(" d"))).toEqual(["abandon d", "delete d", "cleanup d", "rootfs d"]);
    expect(calls.some((c) => c.endsWith(" a"))).toBe(false);
    expect(existsSync(join(paths.runroot, "containers", mid))).toBe(false);
    expect(existsSync(join(paths.runroot, "containers", known))).toBe(true);
    expect(existsSync(join(paths.exits, "not-an-id"))).toBe(true);
    expect(lines.filter((l) => l.startsWith("removed leftovers of container")).length).toBe(3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a runtime create still running at the listing (its monitor outlived the daemon) is waited for, and the container it made deleted", async () => {
  const dir = mkdtempSync(join(tmpdir(), "crio-leftovers-"));
  try {
    const paths = pathsFor(join(dir, "root"), join(dir, "run"));
    const late = id("e"); // rootfs, bundle, monitor dir; runc create finishes after the listing
    for (const p of [paths.storage, join(paths.runroot, "containers"), paths.monitors]) mkdirSync(join(p, late), { recursive: true });
    const calls: string[] = [];
    const log = { withTag: () => log, info: () => {}, warn: (m: string) => calls.push(`WARN ${m}`) };
    let createRunning = 3; // `runc create <id>` seen 3 more times, then gone, having made the container
    const deps = {
      paths,
      log,
      settings: () => ({ runtimeHandlers: ["runc"] }),
      handlers: {
        get: () => ({
          runtime: {
            list: async () => [],
            state: async (x: string) => (createRunning > 0 ? undefined : (calls.push(`state ${x[0]}`), { id: x, status: "created" })),
            delete: async (x: string) => void calls.push(`delete ${x[0]}`),
          },
        }),
      },
      monitors: { abandon: async (x: string) => void calls.push(`abandon ${x[0]}`), alive: async () => false, remove: async () => {} },
      rootfs: { remove: async () => {} },
    };
    const naming = (x: string) => (x === late && createRunning-- > 0 ? [4242] : []);
    expect(await removeContainerLeftovers(deps as never, new Set(), naming)).toEqual([late]);
    expect(calls).toEqual(["abandon e", "state e", "delete e"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a configured handler whose runtime is not installed (crun in the default table) does not stop recovery", async () => {
  const dir = mkdtempSync(join(tmpdir(), "crio-leftovers-"));
  try {
    const paths = pathsFor(join(dir, "root"), join(dir, "run"));
    const early = id("c");
    mkdirSync(join(paths.storage, early), { recursive: true });
    const calls: string[] = [];
    const lines: string[] = [];
    const log = { withTag: () => log, info: (m: string) => lines.push(m), warn: (m: string) => lines.push(`WARN ${m}`) };
    const deps = {
      paths,
      log,
      settings: () => ({ runtimeHandlers: ["runc", "crun"] }),
      handlers: {
        get: (h: string) => {
          if (h === "crun") throw new Error('runtime "crun" not found: set runtime_path or install it in $PATH');
          return { runtime: { list: async () => [], state: async () => undefined, delete: async () => {} } };
        },
      },
      monitors: { abandon: async () => {}, alive: async () => false, remove: async () => {} },
      rootfs: { remove: async (x: string) => void calls.push(`rootfs ${x[0]}`) },
    };
    expect(await removeContainerLeftovers(deps as never, new Set(), () => [])).toEqual([early]);
    expect(calls).toEqual(["rootfs c"]);
    expect(lines.some((l) => l.startsWith('WARN listing the containers of runtime handler "crun"'))).toBe(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe("endFailedStart: a start reported failed leaves nothing running", () => {
  const log = { withTag: () => log, warn: () => {} };
  /** A runtime whose container is in `states` one call after the other (the last repeats); kills recorded. */
  const fake = (states: Array<string | undefined>) => {
    const kills: string[] = [];
    let i = 0;
    const rt = {
      state: async () => {
        const s = states[Math.min(i++, states.length - 1)];
        return s === undefined ? undefined : { status: s, pid: 42 };
      },
      kill: async (_id: string, sig: string, all?: boolean) => void kills.push(`${sig}${all ? " all" : ""}`),
    };
    return { deps: { handlers: { get: () => ({ runtime: rt }) }, log } as never, kills };
  };

  test.each([
    ["gone", [undefined], []],
    ["stopped", ["stopped"], []],
    ["created (runc killed before its start): its init is killed", ["created", "stopped"], ["KILL"]],
    ["running (runc killed after its start): every process is killed", ["running", "running", "stopped"], ["KILL all", "KILL all"]],
  ] as Array<[string, Array<string | undefined>, string[]]>)("%s", async (_name, states, kills) => {
    const f = fake(states);
    expect(await endFailedStart(f.deps, "runc", id("e"))).toBe("stopped");
    expect(f.kills).toEqual(kills);
  });

  test("one that cannot be killed within the wait is reported running (and so listed RUNNING)", async () => {
    const f = fake(["running"]);
    expect(await endFailedStart(f.deps, "runc", id("e"), 250)).toBe("running");
    expect(f.kills.length).toBeGreaterThan(0);
  });
});
