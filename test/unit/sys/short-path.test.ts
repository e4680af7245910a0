// Unix sockets in directories of any depth, through /proc/self/fd/<dir fd>/<name> aliases.
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { accept, close, read, SysError, unixListen } from "../../../src/sys/libc.ts";
import { JournalSocket } from "../../../src/sys/journal.ts";
import { sdNotify } from "../../../src/sys/notify.ts";
import { shortSocketPath, splitSocketPath, SUN_PATH_MAX, withShortSocketPath } from "../../../src/sys/short-path.ts";
import { socketAnswers } from "../../../src/sys/unix-socket.ts";
import { NotifyReceiver } from "../../support/operator.ts";

const top = mkdtempSync(join(tmpdir(), "crio-short-"));
/** A directory ~300 bytes deep: no socket in it fits sun_path by its full name. */
const deep = join(top, ...Array.from({ length: 4 }, (_, i) => `${i}-a-directory-name-that-makes-socket-paths-longer-than-sun-path-allows`));
mkdirSync(deep, { recursive: true });
afterAll(() => rmSync(top, { recursive: true, force: true }));

const fdOpen = (fd: number) => existsSync(`/proc/self/fd/${fd}`);

test("the alias of a deep socket is short, names the same directory, and is released once", () => {
  const full = join(deep, "attach");
  expect(Buffer.byteLength(full)).toBeGreaterThan(300);
  const a = shortSocketPath(full);
  expect(a.full).toBe(full);
  expect(a.path).toBe(`/proc/self/fd/${a.dirFd}/attach`);
  expect(Buffer.byteLength(a.path)).toBeLessThanOrEqual(SUN_PATH_MAX);
  expect(a.childPath(1234)).toBe(`/proc/1234/fd/${a.dirFd}/attach`);
  expect(readlinkSync(`/proc/self/fd/${a.dirFd}`)).toBe(deep);
  const fd = a.dirFd;
  a.release();
  expect(a.dirFd).toBe(-1);
  expect(fdOpen(fd)).toBe(false);
  a.release(); // idempotent
});

test("Bun.listen and Bun.connect through aliases: the socket is at its full path and answers", async () => {
  const full = join(deep, "ctl");
  const a = shortSocketPath(full);
  const server = Bun.listen({ unix: a.path, socket: { open: (s) => void s.end("hello\n"), data() {} } });
  try {
    expect(statSync(full).isSocket()).toBe(true);
    let got = "";
    const done = Promise.withResolvers<void>();
    await withShortSocketPath(full, (unix) =>
      Bun.connect({ unix, socket: { data: (_s, d) => void (got += Buffer.from(d).toString()), close: () => done.resolve() } }),
    );
    await done.promise;
    expect(got).toBe("hello\n");
    expect(await socketAnswers(full)).toBe(true);
  } finally {
    server.stop(true); // unlinks through the alias: the alias is still held
    a.release();
  }
  expect(existsSync(full)).toBe(false);
  expect(await socketAnswers(full)).toBe(false);
  expect(await socketAnswers(join(deep, "missing-dir", "x.sock"))).toBe(false);
});

test("Bun.serve and fetch through aliases", async () => {
  const full = join(deep, "info.sock");
  const a = shortSocketPath(full);
  const server = Bun.serve({ unix: a.path, fetch: () => new Response("deep") });
  try {
    const body = await withShortSocketPath(full, async (unix) => (await fetch("http://localhost/", { unix } as RequestInit)).text());
    expect(body).toBe("deep");
  } finally {
    await server.stop(true);
    a.release();
  }
});

test("libc unixListen on an alias; another process connects through /proc/<pid>/fd/<fd>/<name>", async () => {
  const full = join(deep, "con");
  const a = shortSocketPath(full);
  const lfd = unixListen(a.path, 1);
  try {
    expect(statSync(full).isSocket()).toBe(true);
    // the OCI runtime's view of a console socket: it is another process, told childPath(our pid)
    const child = Bun.spawn(
      [
        process.execPath,
        "-e",
        `const s = await Bun.connect({ unix: process.argv[1], socket: { data() {} } }); s.write("from-child"); s.end(); await Bun.sleep(50);`,
        a.childPath(process.pid),
      ],
      { stdout: "inherit", stderr: "inherit" },
    );
    let c = -1;
    const until = Date.now() + 10_000;
    while ((c = accept(lfd)) < 0 && Date.now() < until) await Bun.sleep(5);
    expect(c).toBeGreaterThanOrEqual(0);
    const buf = new Uint8Array(64);
    let text = "";
    for (let n; (n = read(c, buf)) > 0; ) text += Buffer.from(buf.subarray(0, n)).toString();
    close(c);
    expect(text).toBe("from-child");
    expect(await child.exited).toBe(0);
  } finally {
    close(lfd);
    a.release();
  }
});

test("withShortSocketPath releases the directory after a return, a settled promise and a throw", async () => {
  const full = join(deep, "x.sock");
  let fd = -1;
  withShortSocketPath(full, (p) => void (fd = Number(/fd\/(\d+)\//.exec(p)![1])));
  expect(fdOpen(fd)).toBe(false);
  const pending = withShortSocketPath(full, async (p) => {
    fd = Number(/fd\/(\d+)\//.exec(p)![1]);
    await Bun.sleep(5);
    expect(fdOpen(fd)).toBe(true); // held while the connect is in flight
    throw new Error("refused");
  });
  await expect(pending).rejects.toThrow("refused");
  expect(fdOpen(fd)).toBe(false);
  expect(() =>
    withShortSocketPath(full, (p) => {
      fd = Number(/fd\/(\d+)\//.exec(p)![1]);
      throw new Error("sync");
    }),
  ).toThrow("sync");
  expect(fdOpen(fd)).toBe(false);
});

test("clear errors: a missing directory, a name too long even for an alias, no name, a NUL", () => {
  const err = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return e as SysError;
    }
    throw new Error("no error");
  };
  const probe = shortSocketPath(join(deep, "s"));
  const lowest = probe.dirFd;
  probe.release();
  const missing = err(() => shortSocketPath(join(deep, "nope", "s.sock")));
  expect(missing).toBeInstanceOf(SysError);
  expect(missing.code).toBe("ENOENT");
  expect(missing.message).toContain(join(deep, "nope"));
  const long = err(() => shortSocketPath(join(deep, "n".repeat(100))));
  expect(long.code).toBe("ENAMETOOLONG");
  expect(long.message).toContain("n".repeat(100));
  expect(err(() => shortSocketPath(deep + "/")).code).toBe("EINVAL");
  expect(err(() => shortSocketPath(join(deep, "a\0b"))).code).toBe("EINVAL");
  // no descriptor leaked by the failures: the next alias gets the same lowest free fd
  const again = shortSocketPath(join(deep, "s"));
  expect(again.dirFd).toBe(lowest);
  again.release();
});

test("splitSocketPath: bare names live in '.', root-level sockets in '/'", () => {
  expect(splitSocketPath("crio.sock")).toEqual({ dir: ".", name: "crio.sock" });
  expect(splitSocketPath("/crio.sock")).toEqual({ dir: "/", name: "crio.sock" });
  expect(splitSocketPath("/run/crio/crio.sock")).toEqual({ dir: "/run/crio", name: "crio.sock" });
});

test("sdNotify reaches a NOTIFY_SOCKET deeper than sun_path", async () => {
  const full = join(deep, "notify.sock");
  const a = shortSocketPath(full);
  try {
    using r = new NotifyReceiver(a.path);
    sdNotify(full, "READY=1");
    expect((await r.waitFor("READY=1")).text).toBe("READY=1");
  } finally {
    a.release();
  }
  expect(() => sdNotify(join(deep, "nope", "n.sock"), "READY=1")).toThrow(/sendto .*nope\/n\.sock: No such file or directory/);
});

test("JournalSocket reaches a journal socket deeper than sun_path; a missing deep dir is a clear error", async () => {
  const full = join(deep, "journal.sock");
  const a = shortSocketPath(full);
  try {
    using r = new NotifyReceiver(a.path);
    const j = new JournalSocket(full);
    j.send([
      ["MESSAGE", "hello"],
      ["TAG", "deep-entry"],
    ]);
    j.close();
    expect(j.failures).toBe(0);
    const m = await r.waitFor("TAG=deep-entry");
    expect(m.text).toContain("hello");
  } finally {
    a.release();
  }
  expect(() => new JournalSocket(join(deep, "nope", "journal.sock"))).toThrow(/journal socket .*nope\/journal\.sock.*ENOENT/);
});
