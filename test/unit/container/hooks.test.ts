import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HookDirs, injectHooks, matchHook, parseHookConfig, type HookConfig } from "../../../src/container/hooks.ts";
import type { Spec } from "../../../src/oci/spec-types.ts";

const exists = () => true;
const v1 = (o: object) => JSON.stringify({ version: "1.0.0", hook: { path: "/usr/bin/hook" }, when: { always: true }, stages: ["prestart"], ...o });

describe("parseHookConfig", () => {
  test("a 1.0.0 file", () => {
    const c = parseHookConfig(
      v1({ hook: { path: "/usr/bin/hook", args: ["hook", "x"], env: ["A=1"], timeout: 5 }, stages: ["prestart", "poststop"] }),
      "a.json",
      exists,
    );
    expect(c).toEqual({
      hook: { path: "/usr/bin/hook", args: ["hook", "x"], env: ["A=1"], timeout: 5 },
      when: { always: true },
      stages: ["prestart", "poststop"],
    });
  });

  test("a legacy 0.1.0 file becomes any-of conditions", () => {
    const c = parseHookConfig(
      JSON.stringify({ hook: "/usr/bin/old", arguments: ["a"], stage: ["prestart"], cmd: ["^sh$"], annotation: ["x", "y"], hasbindmounts: true }),
      "old.json",
      exists,
    );
    expect(c).toEqual({
      hook: { path: "/usr/bin/old", args: ["/usr/bin/old", "a"] },
      when: { or: true, commands: ["^sh$"], hasBindMounts: true, annotations: { ".*": "x|y" } },
      stages: ["prestart"],
    });
    expect(() => parseHookConfig(JSON.stringify({ hook: "/x", stage: ["prestart"], stages: ["poststop"] }), "old.json", exists)).toThrow(
      "cannot set both 'stage' and 'stages'",
    );
  });

  test("bad files are invalid-argument naming the file and the problem", () => {
    const bad = (text: string, msg: string, ex = exists) =>
      expect(() => parseHookConfig(text, "h.json", ex)).toThrow(expect.objectContaining({ kind: "invalid-argument", message: expect.stringContaining(msg) }));
    bad("{", 'hook "h.json" is not valid JSON');
    bad(JSON.stringify({ version: "2.0.0" }), "unrecognized hook version");
    bad(v1({ hook: {} }), "missing required property: hook.path");
    bad(v1({}), 'hook.path "/usr/bin/hook" does not exist', () => false);
    bad(v1({ stages: ["prestart", "later"] }), 'unknown stage "later"');
    bad(v1({ stages: undefined }), "missing required property: stages");
    bad(v1({ when: { commands: ["("] } }), 'invalid command "("');
    bad(v1({ when: { annotations: { "[": "x" } } }), 'invalid annotation key "["');
    bad(v1({ hook: { path: "/x", timeout: -1 } }), "hook.timeout must be a positive number");
    bad(v1({ when: { always: "yes" } }), "when.always must be true or false");
  });
});

describe("matchHook", () => {
  const t = { args: ["/bin/sh", "-c", "x"], annotations: { "io.example/a": "on", other: "1" }, hasBindMounts: false };
  test("every set condition must hold", () => {
    expect(matchHook({ always: true }, t)).toBe(true);
    expect(matchHook({ always: false }, t)).toBe(false);
    expect(matchHook({}, t)).toBe(false);
    expect(matchHook({ always: true, hasBindMounts: true }, t)).toBe(false);
    expect(matchHook({ always: true, hasBindMounts: true }, { ...t, hasBindMounts: true })).toBe(true);
    expect(matchHook({ annotations: { "^io\\.example/a$": "^on$" } }, t)).toBe(true);
    expect(matchHook({ annotations: { "^io\\.example/a$": "^off$" } }, t)).toBe(false);
    expect(matchHook({ annotations: { "^io\\.example/a$": "on", "^other$": "2" } }, t)).toBe(false);
  });
  test("commands: one match decides (regexps search args[0])", () => {
    expect(matchHook({ commands: ["sh$"] }, t)).toBe(true);
    expect(matchHook({ commands: ["^sh$"] }, t)).toBe(false);
    expect(matchHook({ always: true, commands: ["^nope$"] }, t)).toBe(false);
  });
  test("legacy any-of", () => {
    expect(matchHook({ or: true, hasBindMounts: true, commands: ["^/bin/sh$"] }, t)).toBe(true);
    expect(matchHook({ or: true, hasBindMounts: true }, t)).toBe(false);
  });
});

describe("injectHooks", () => {
  test("name order (case-insensitive), prestart as createRuntime, appended after existing hooks", () => {
    const spec = { ociVersion: "1.0.2", process: { args: ["sleep"], cwd: "/", user: { uid: 0, gid: 0 } }, hooks: { poststop: [{ path: "/first" }] } } as Spec;
    const h = (path: string, stages: string[], when = { always: true }): HookConfig => ({ hook: { path }, when, stages: stages as HookConfig["stages"] });
    const names = injectHooks(
      spec,
      [
        { name: "b.json", config: h("/b", ["prestart", "poststop"]) },
        { name: "A.json", config: h("/a", ["createRuntime", "startContainer"]) },
        { name: "c.json", config: h("/c", ["poststart"], { always: false }) },
      ],
      { annotations: {}, hasBindMounts: false },
    );
    expect(names).toEqual(["A.json", "b.json"]);
    expect(spec.hooks).toEqual({
      poststop: [{ path: "/first" }, { path: "/b" }],
      createRuntime: [{ path: "/a" }, { path: "/b" }],
      startContainer: [{ path: "/a" }],
    });
  });
});

describe("HookDirs", () => {
  test("later directories mask earlier ones by name; bad files are skipped with one warning; changes are noticed", () => {
    const root = mkdtempSync(join(tmpdir(), "hooks-test-"));
    try {
      const a = join(root, "a");
      const b = join(root, "b");
      mkdirSync(a);
      mkdirSync(b);
      const script = join(root, "hook.sh");
      writeFileSync(script, "#!/bin/sh\n");
      const file = (dir: string, name: string, args: string[]) =>
        writeFileSync(join(dir, name), JSON.stringify({ version: "1.0.0", hook: { path: script, args }, when: { always: true }, stages: ["poststop"] }));
      file(a, "10.json", ["from-a"]);
      file(b, "10.json", ["from-b"]);
      file(a, "20.json", ["only-a"]);
      writeFileSync(join(a, "30.json"), "{");
      writeFileSync(join(a, "notes.txt"), "ignored");
      const warnings: string[] = [];
      const dirs = new HookDirs({ warn: (m: string) => warnings.push(m) } as never);
      const load = () =>
        dirs
          .load([a, b, join(root, "missing")])
          .map((h) => `${h.name}:${h.config.hook.args?.[0]}`)
          .sort();
      expect(load()).toEqual(["10.json:from-b", "20.json:only-a"]);
      expect(load()).toEqual(["10.json:from-b", "20.json:only-a"]);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain("30.json");
      // An invalid file masks nothing: the earlier directory's definition comes back.
      writeFileSync(join(b, "10.json"), "[]");
      utimesSync(join(b, "10.json"), new Date(), new Date(Date.now() + 5000));
      expect(load()).toEqual(["10.json:from-a", "20.json:only-a"]);
      expect(warnings).toHaveLength(2);
      file(a, "20.json", ["changed"]);
      utimesSync(join(a, "20.json"), new Date(), new Date(Date.now() + 10_000));
      expect(load()).toEqual(["10.json:from-a", "20.json:changed"]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
