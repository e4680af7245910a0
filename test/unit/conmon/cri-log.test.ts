import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CriLog } from "../../../src/conmon/cri-log.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(maxSize = 0, lineMax = 64) {
  const dir = mkdtempSync(join(tmpdir(), "crio-crilog-"));
  dirs.push(dir);
  const path = join(dir, "pod", "ctr", "0.log"); // the directory is made on open
  const log = new CriLog(path, maxSize, () => "T", lineMax);
  const read = () => readFileSync(path, "utf8");
  const w = (stream: "stdout" | "stderr", s: string) => log.write(stream, new TextEncoder().encode(s));
  return { log, path, read, w };
}

test("complete lines are written at once; tails wait for their newline, per stream", () => {
  const { log, read, w } = setup();
  w("stdout", "one\ntw");
  expect(read()).toBe("T stdout F one\n");
  w("stderr", "e1\n");
  w("stdout", "o\n\n");
  expect(read()).toBe("T stdout F one\nT stderr F e1\nT stdout F two\nT stdout F \n");
  w("stderr", "no newline");
  log.flush("stdout");
  expect(read()).not.toContain("no newline");
  log.close(); // end of output: the tail is a full record
  expect(read().endsWith("T stderr F no newline\n")).toBe(true);
});

test("lines longer than the limit become P pieces and a final F", () => {
  const { log, read, w } = setup(0, 4);
  w("stdout", "abcdefghij\n");
  expect(read()).toBe("T stdout P abcd\nT stdout P efgh\nT stdout F ij\n");
  w("stdout", "123");
  w("stdout", "45");
  expect(read().split("\n").at(-2)).toBe("T stdout P 1234");
  w("stdout", "\n");
  log.close();
  expect(read().split("\n").slice(-3)).toEqual(["T stdout P 1234", "T stdout F 5", ""]);
});

test("the size cap truncates the file and goes on", () => {
  const { log, read, w } = setup(40);
  w("stdout", "aaaaaaaa\nbbbbbbbb\n"); // 2 × 19 bytes
  expect(read()).toBe("T stdout F aaaaaaaa\nT stdout F bbbbbbbb\n");
  w("stdout", "cccccccc\n");
  expect(read()).toBe("T stdout F cccccccc\n");
  w("stdout", "d\ne\nf\ng\n");
  expect(read()).toBe("T stdout F e\nT stdout F f\nT stdout F g\n"); // d fitted, e did not
  log.close();
});

test("reopen follows a rename", () => {
  const { log, path, read, w } = setup();
  w("stdout", "before\n");
  renameSync(path, `${path}.1`);
  w("stdout", "lost in the old file\n");
  log.reopen();
  w("stdout", "after\n");
  log.close();
  expect(read()).toBe("T stdout F after\n");
  expect(readFileSync(`${path}.1`, "utf8")).toBe("T stdout F before\nT stdout F lost in the old file\n");
});
