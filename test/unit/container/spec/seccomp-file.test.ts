// seccomp_profile's file: loaded at start (an invalid one is refused), re-read when it changes,
// the previous profile kept when the new file is invalid.
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SeccompProfileFile } from "../../../../src/container/spec/seccomp-file.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function world() {
  const dir = mkdtempSync(join(tmpdir(), "seccomp-file-"));
  dirs.push(dir);
  const lines: string[] = [];
  const log = { info: (m: string) => lines.push(`info ${m}`), error: (m: string) => lines.push(`error ${m}`) };
  const file = (name: string, action: string, mtime?: number) => {
    const p = join(dir, name);
    writeFileSync(p, JSON.stringify({ defaultAction: action, syscalls: [] }));
    if (mtime) utimesSync(p, mtime, mtime);
    return p;
  };
  return { dir, lines, log: log as never, file };
}

test("none configured: the built-in default (undefined)", () => {
  const w = world();
  expect(new SeccompProfileFile("", w.log).profile("")).toBeUndefined();
});

test("an invalid file at start is refused (invalid-argument, naming it)", () => {
  const w = world();
  const bad = join(w.dir, "bad.json");
  writeFileSync(bad, "{not json");
  expect(() => new SeccompProfileFile(bad, w.log)).toThrow(
    expect.objectContaining({ kind: "invalid-argument", message: expect.stringContaining(`invalid seccomp_profile "${bad}"`) }),
  );
  expect(() => new SeccompProfileFile(join(w.dir, "missing.json"), w.log)).toThrow(expect.objectContaining({ kind: "invalid-argument" }));
});

test("re-read when the file changes; an invalid change keeps the previous profile, once logged", () => {
  const w = world();
  const p = w.file("p.json", "SCMP_ACT_ERRNO", 1000);
  const s = new SeccompProfileFile(p, w.log);
  expect(s.profile(p)?.defaultAction).toBe("SCMP_ACT_ERRNO");
  w.file("p.json", "SCMP_ACT_LOG", 2000);
  expect(s.profile(p)?.defaultAction).toBe("SCMP_ACT_LOG");
  writeFileSync(p, "{broken");
  utimesSync(p, 3000, 3000);
  expect(s.profile(p)?.defaultAction).toBe("SCMP_ACT_LOG");
  expect(s.profile(p)?.defaultAction).toBe("SCMP_ACT_LOG"); // not tried (nor logged) again until it changes
  expect(w.lines.filter((l) => l.startsWith("error")).length).toBe(1);
  // another path (SIGHUP changed seccomp_profile)
  const q = w.file("q.json", "SCMP_ACT_KILL");
  expect(s.profile(q)?.defaultAction).toBe("SCMP_ACT_KILL");
  expect(w.lines.filter((l) => l.startsWith("info")).length).toBe(3);
});
