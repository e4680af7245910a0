import { expect, test } from "bun:test";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../../harness.ts";
import { clearCleanShutdown, markCleanShutdown, shutdownWasUnclean } from "../../../src/sys/clean-shutdown.ts";

test("first start: .supported is written, no marker", () => {
  using d = tempDir();
  const f = join(d.path, "sub", "clean.shutdown");
  expect(shutdownWasUnclean(f)).toBe(false);
  clearCleanShutdown(f);
  expect(existsSync(`${f}.supported`)).toBe(true);
  expect(existsSync(f)).toBe(false);
  expect(shutdownWasUnclean(f)).toBe(true); // a crash from here on is unclean
});

test("after a clean stop the marker is removed; after an unclean one nothing is rewritten", () => {
  using d = tempDir();
  const f = join(d.path, "clean.shutdown");
  clearCleanShutdown(f);
  markCleanShutdown(f, d.path);
  expect(shutdownWasUnclean(f)).toBe(false);
  clearCleanShutdown(f);
  expect(existsSync(f)).toBe(false);
  expect(shutdownWasUnclean(f)).toBe(true);
  // unclean: marker absent, .supported present — left exactly as it is
  writeFileSync(`${f}.supported`, "kept");
  const before = statSync(`${f}.supported`);
  clearCleanShutdown(f);
  const after = statSync(`${f}.supported`);
  expect([after.ino, after.mtimeMs, after.size]).toEqual([before.ino, before.mtimeMs, before.size]);
  expect(shutdownWasUnclean(f)).toBe(true);
});

test("an empty setting does nothing", () => {
  clearCleanShutdown("");
  expect(shutdownWasUnclean("")).toBe(false);
});
