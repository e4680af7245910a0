import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeExitRecord } from "../../../src/conmon/exit-file.ts";
import { ExitWatcher, readExitFile, removeExitFile, type ExitRecord } from "../../../src/monitor/index.ts";
import { waitFor } from "../../harness.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function exitsDir(): string {
  const d = mkdtempSync(join(tmpdir(), "crio-exits-"));
  dirs.push(d);
  return join(d, "exits"); // the watcher makes it
}

test("exit files: code, time, OOM marker; removal", async () => {
  const dir = exitsDir();
  const w = new ExitWatcher(dir, () => {});
  await w.start();
  w.close();
  writeExitRecord(dir, "a", 137, 1_700_000_000_123, true);
  writeExitRecord(dir, "b", 0, 1_700_000_001_000, false);
  expect(await readExitFile(dir, "a")).toEqual({ exitCode: 137, exitedAt: expect.closeTo(1_700_000_000_123, 0) as unknown as number, oomKilled: true });
  expect(await readExitFile(dir, "b")).toMatchObject({ exitCode: 0, oomKilled: false });
  expect(await readExitFile(dir, "c")).toBeUndefined();
  await removeExitFile(dir, "a");
  expect(await readExitFile(dir, "a")).toBeUndefined();
});

test("the watcher reports each exit once: at start, on inotify, after forget", async () => {
  const dir = exitsDir();
  const seen: Array<[string, ExitRecord]> = [];
  const early = new ExitWatcher(dir, () => {});
  await early.start(); // makes the directory
  early.close();
  writeExitRecord(dir, "before", 1, Date.now(), false);
  const w = new ExitWatcher(dir, (id, e) => seen.push([id, e]), 60_000);
  await w.start();
  expect(seen.map(([id]) => id)).toEqual(["before"]);
  writeExitRecord(dir, "live", 2, Date.now(), true);
  writeFileSync(join(dir, ".live2.tmp-1"), "garbage"); // temp files and markers are not exits
  writeFileSync(join(dir, "not.an.id"), "3");
  await waitFor(() => seen.length === 2, 5000, "inotify event");
  await w.rescan();
  expect(seen.map(([id, e]) => `${id}=${e.exitCode}/${e.oomKilled}`)).toEqual(["before=1/false", "live=2/true"]);
  w.forget("live");
  await w.rescan();
  expect(seen.length).toBe(3);
  w.close();
  writeExitRecord(dir, "after-close", 0, Date.now(), false);
  await w.rescan();
  expect(seen.length).toBe(3);
});
