import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  accept,
  close,
  exitCodeOf,
  fileSize,
  ftruncate,
  listDir,
  mkdirp,
  O,
  open,
  pipe,
  pollIn,
  read,
  readText,
  rename,
  setMtime,
  setNonBlocking,
  SysError,
  unixListen,
  unlink,
  waitpidNoHang,
  write,
  writeAll,
} from "../../../src/sys/libc.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const temp = () => (dirs.push(mkdtempSync(join(tmpdir(), "crio-libc-"))), dirs.at(-1)!);
const bytes = (s: string) => new TextEncoder().encode(s);

test("files: mkdirp, open, write, size, truncate, mtime, rename, list, unlink", () => {
  const d = temp();
  mkdirp(join(d, "a/b/c"));
  mkdirp(join(d, "a/b/c")); // exists: fine
  const p = join(d, "a/b/c/f");
  const fd = open(p, O.WRONLY | O.CREAT | O.APPEND, 0o640);
  writeAll(fd, bytes("hello "));
  writeAll(fd, bytes("world"));
  expect(fileSize(fd)).toBe(11);
  ftruncate(fd, 5);
  close(fd);
  expect(readText(p)).toBe("hello");
  setMtime(p, 1_700_000_000_250);
  expect(statSync(p).mtimeMs).toBeCloseTo(1_700_000_000_250, 0);
  rename(p, join(d, "a/b/c/g"));
  expect(listDir(join(d, "a/b/c"))).toEqual(["g"]);
  expect(listDir(join(d, "nope"))).toBeUndefined();
  expect(readText(join(d, "nope"))).toBeUndefined();
  unlink(join(d, "a/b/c/g"));
  unlink(join(d, "a/b/c/g")); // missing: fine
  expect(() => open(join(d, "nope/x"), O.RDONLY)).toThrow(SysError);
  try {
    open(join(d, "nope/x"), O.RDONLY);
  } catch (e) {
    expect((e as SysError).code).toBe("ENOENT");
  }
});

test("pipes are pipes; non-blocking reads and writes say when they would block", () => {
  const [r, w] = pipe();
  try {
    expect(readText(`/proc/self/fdinfo/${r}`)).toContain("flags:\t02000000"); // O_CLOEXEC, blocking
    setNonBlocking(r);
    const buf = new Uint8Array(16);
    expect(read(r, buf)).toBe(-1);
    expect(write(w, bytes("abc"))).toBe(3);
    expect(read(r, buf)).toBe(3);
    setNonBlocking(w);
    let n = 0;
    while (write(w, new Uint8Array(4096)) > 0) n++;
    expect(n).toBeGreaterThan(0); // filled the pipe, then -1 instead of blocking
  } finally {
    close(r);
    close(w);
  }
});

test("a unix listener accepts without blocking", async () => {
  const path = join(temp(), "s");
  const fd = unixListen(path);
  try {
    expect(accept(fd)).toBe(-1);
    expect(pollIn(fd, 0)).toBe(false);
    const sock = await Bun.connect({ unix: path, socket: { data() {} } });
    expect(pollIn(fd, 2000)).toBe(true);
    const c = accept(fd);
    expect(c).toBeGreaterThan(0);
    close(c);
    sock.end();
  } finally {
    close(fd);
  }
  expect(() => unixListen(`/tmp/${"x".repeat(120)}`)).toThrow("ENAMETOOLONG");
});

test("wait statuses and waitpid on one pid only", async () => {
  expect([exitCodeOf(3 << 8), exitCodeOf(9), exitCodeOf(15), exitCodeOf(0)]).toEqual([3, 137, 143, 0]);
  expect(() => waitpidNoHang(-1)).toThrow(RangeError);
  expect(() => waitpidNoHang(0)).toThrow(RangeError);
  expect(() => waitpidNoHang(1)).toThrow("ECHILD"); // not our child
});

test("releaseCleanFilePages drops the clean file mappings' pages; the process runs on and maps back what it uses", async () => {
  // in a child: the test runner's own mappings are left alone
  const script = `
    import { releaseCleanFilePages, readText } from ${JSON.stringify(`${import.meta.dir}/../../../src/sys/libc.ts`)};
    const fileRss = () => { let kb = 0; for (const m of readText("/proc/self/smaps", 8 << 20).split(/\\n(?=[0-9a-f]+-)/)) if (/^[0-9a-f-]+ r-[x-]p \\S+ \\S+ \\S+ +\\//.test(m) && /^Anonymous:\\s+0 kB/m.test(m)) kb += Number(/^Rss:\\s+(\\d+)/m.exec(m)[1]); return kb; };
    const before = fileRss();
    const released = releaseCleanFilePages();
    const after = fileRss();
    // still working: JS, the allocator, libc through ffi
    const ok = JSON.parse(JSON.stringify({ x: [1, 2, 3].map((n) => n * 2) })).x.join(",") === "2,4,6" && readText("/proc/self/stat").length > 0;
    console.log(JSON.stringify({ before, released, after, ok }));`;
  const p = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  expect(err).toBe("");
  expect(code).toBe(0);
  const r = JSON.parse(out);
  expect(r.ok).toBe(true);
  expect(r.released).toBeGreaterThan(1000);
  expect(r.after).toBeLessThan(r.before / 2);
});
