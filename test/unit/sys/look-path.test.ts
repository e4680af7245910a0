import { expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lookPath, lookPathCached } from "../../../src/sys/look-path.ts";

test("lookPath: the first executable file in the path; not a directory, not a plain file; undefined when absent", () => {
  const dir = mkdtempSync(join(tmpdir(), "look-path-"));
  try {
    const [a, b] = [join(dir, "a"), join(dir, "b")];
    mkdirSync(a);
    mkdirSync(b);
    mkdirSync(join(a, "tool")); // a directory is not it
    writeFileSync(join(a, "plain"), ""); // nor a file without x
    writeFileSync(join(b, "tool"), "#!/bin/sh\n");
    chmodSync(join(b, "tool"), 0o755);
    expect(lookPath("tool", `${a}:${b}`)).toBe(join(b, "tool"));
    expect(lookPath("plain", `${a}:${b}`)).toBeUndefined();
    expect(lookPath("missing", `${a}:${b}`)).toBeUndefined();
    expect(lookPath("sh")).toBeDefined(); // $PATH by default
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("lookPathCached remembers what it found (for the same path), not what it did not find", () => {
  const dir = mkdtempSync(join(tmpdir(), "look-path-"));
  try {
    const tool = join(dir, "tool");
    expect(lookPathCached("tool", dir)).toBeUndefined();
    writeFileSync(tool, "#!/bin/sh\n");
    chmodSync(tool, 0o755);
    expect(lookPathCached("tool", dir)).toBe(tool); // installed later: found
    rmSync(tool);
    expect(lookPathCached("tool", dir)).toBe(tool); // remembered
    expect(lookPath("tool", dir)).toBeUndefined();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
