import { CString, dlopen, FFIType as T, ptr, read as peek, type FFIFunction, type Pointer } from "bun:ffi";
import { concatBytes } from "../util/bytes.ts";

/**
 * glibc bindings through bun:ffi: the syscalls Bun does not expose (prctl, waitpid on one pid,
 * pipes that are real pipes, SCM_RIGHTS, TIOCSWINSZ) and the plain file calls the monitor uses
 * instead of node:fs, which costs ~600 KB of heap per process (measured with 20 monitors).
 *
 * Linux on LP64 (x86_64, aarch64) only: the struct layouts below (msghdr, cmsghdr, sockaddr_un,
 * pollfd, winsize, timespec) are the same on both. The library is opened on first use, so
 * importing this file costs nothing. Never call waitpid(-1): it would steal Bun's own children.
 *
 * This file owns the program's libc handle: every bun:ffi symbol of libc is declared here, in two
 * sets bound on first use each — MONITOR (what the monitor role calls: bound in every monitor)
 * and DAEMON (mount, setns, the raw syscall, datagrams, …: the monitor never binds them, so
 * never pays for their trampolines). Other sys/ files call libc() or daemonLibc() and read
 * errno() here; none calls dlopen (test/unit/architecture.test.ts).
 */

/** open(2) flags, identical on x86_64 and aarch64. */
export const O = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  TRUNC: 0o1000,
  APPEND: 0o2000,
  NONBLOCK: 0o4000,
  CLOEXEC: 0o2000000,
  /** A descriptor that only names a file or directory (for /proc/self/fd/N/… aliases). */
  PATH: 0o10000000,
} as const;

/** A failed libc call: `code` is the errno name (ENOENT, EAGAIN, …). */
export class SysError extends Error {
  override name = "SysError";
  constructor(
    readonly call: string,
    readonly errno: number,
    readonly code: string,
    detail = "",
  ) {
    super(`${call}${detail ? ` ${detail}` : ""}: ${code} (${strerror(errno)})`);
  }
}

/** open(2); returns the fd. */
export function open(path: string, flags: number, mode = 0o644): number {
  const fd = libc().open(cstr(path), flags | O.CLOEXEC, mode);
  if (fd < 0) throw fail("open", path);
  return fd;
}

/** close(2); errors are ignored (the fd is gone either way). */
export function close(fd: number): void {
  if (fd >= 0) libc().close(fd);
}

/** One write(2); returns the bytes written, or -1 when a non-blocking fd would block. */
export function write(fd: number, data: Uint8Array): number {
  if (data.length === 0) return 0;
  for (;;) {
    const n = Number(libc().write(fd, data, data.length));
    if (n >= 0) return n;
    const e = errno();
    if (e === EINTR) continue;
    if (e === EAGAIN) return -1;
    throw fail("write", `fd ${fd}`, e);
  }
}

/** Writes all of `data` to a blocking fd (a regular file). */
export function writeAll(fd: number, data: Uint8Array): void {
  for (let off = 0; off < data.length; ) {
    const n = write(fd, off ? data.subarray(off) : data);
    if (n < 0) throw fail("write", `fd ${fd}`, EAGAIN);
    off += n;
  }
}

/** One read(2) into `buf`; returns the byte count, 0 at end of file, -1 when it would block. */
export function read(fd: number, buf: Uint8Array): number {
  for (;;) {
    const n = Number(libc().read(fd, buf, buf.length));
    if (n >= 0) return n;
    const e = errno();
    if (e === EINTR) continue;
    if (e === EAGAIN) return -1;
    throw fail("read", `fd ${fd}`, e);
  }
}

/** Reads a small file (/proc, /sys, pid files) as text; undefined when it does not exist. */
export function readText(path: string, max = 1 << 20): string | undefined {
  let fd: number;
  try {
    fd = open(path, O.RDONLY);
  } catch (e) {
    if (e instanceof SysError && (e.code === "ENOENT" || e.code === "ESRCH")) return undefined;
    throw e;
  }
  try {
    const buf = new Uint8Array(Math.min(max, 8192)); // /proc and pid files are small
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let n; total < max && (n = read(fd, buf)) > 0; total += n) parts.push(buf.slice(0, n));
    return new TextDecoder().decode(concatBytes(parts, total));
  } catch (e) {
    if (e instanceof SysError && e.code === "ESRCH") return undefined; // the process died meanwhile
    throw e;
  } finally {
    close(fd);
  }
}

/** The names in a directory (without . and ..); undefined when it does not exist. */
export function listDir(path: string): string[] | undefined {
  const dir = libc().opendir(cstr(path));
  if (!dir) {
    if (errno() === ENOENT) return undefined;
    throw fail("opendir", path);
  }
  const names: string[] = [];
  try {
    for (let ent; (ent = libc().readdir64(dir)); ) {
      const name = new CString(ent, 19 /* offsetof(struct dirent64, d_name) */).toString();
      if (name !== "." && name !== "..") names.push(name);
    }
  } finally {
    libc().closedir(dir);
  }
  return names;
}

/** rename(2). */
export function rename(from: string, to: string): void {
  if (libc().rename(cstr(from), cstr(to)) !== 0) throw fail("rename", `${from} -> ${to}`);
}

/** unlink(2); a missing file is not an error. */
export function unlink(path: string): void {
  if (libc().unlink(cstr(path)) !== 0 && errno() !== ENOENT) throw fail("unlink", path);
}

/** rmdir(2); a missing or non-empty directory is left alone. */
export function rmdir(path: string): void {
  libc().rmdir(cstr(path));
}

/** mkdir -p. */
export function mkdirp(path: string, mode = 0o700): void {
  if (libc().mkdir(cstr(path), mode) === 0) return;
  const e = errno();
  if (e === EEXIST) return;
  if (e !== ENOENT) throw fail("mkdir", path, e);
  const parent = path.slice(0, path.replace(/\/+$/, "").lastIndexOf("/"));
  if (!parent || parent === path) throw fail("mkdir", path, e);
  mkdirp(parent, mode);
  if (libc().mkdir(cstr(path), mode) !== 0 && errno() !== EEXIST) throw fail("mkdir", path);
}

/**
 * flock(2) LOCK_EX | LOCK_NB on `fd`: true when taken, false when another open file holds it.
 * The lock goes with the open file: close(fd) (or the process's death) releases it.
 */
export function tryLockExclusive(fd: number): boolean {
  for (;;) {
    if (daemonLibc().flock(fd, 2 | 4) === 0) return true;
    const e = errno();
    if (e === EINTR) continue;
    if (e === EAGAIN) return false;
    throw fail("flock", `fd ${fd}`, e);
  }
}

/** fsync(2). */
export function fsync(fd: number): void {
  if (libc().fsync(fd) !== 0) throw fail("fsync", `fd ${fd}`);
}

/** ftruncate(2). */
export function ftruncate(fd: number, length: number): void {
  if (libc().ftruncate(fd, length) !== 0) throw fail("ftruncate", `fd ${fd}`);
}

/** The size of an open file (lseek to its end; the fd is O_APPEND or about to be closed). */
export function fileSize(fd: number): number {
  const n = Number(libc().lseek(fd, 0, 2 /* SEEK_END */));
  if (n < 0) throw fail("lseek", `fd ${fd}`);
  return n;
}

/**
 * Rewrites this process's command line as `ps` and /proc/<pid>/cmdline show it, in place: the
 * kernel reads it from the original argv area (arg_start..arg_end, fields 48 and 49 of
 * /proc/self/stat), which a process may overwrite through /proc/self/mem. It cannot grow: false
 * (nothing written) when `args` do not fit. The rest of the area is zeroed. (libc only: the
 * monitor, which uses it, loads no node:fs — that alone costs each monitor ~0.35 MB.)
 */
export function setCmdline(args: string[]): boolean {
  const stat = readText("/proc/self/stat") ?? "";
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // f[0] is field 3 (state)
  const start = Number(f[48 - 3]);
  const end = Number(f[49 - 3]);
  const text = new TextEncoder().encode(args.join("\0") + "\0");
  if (!(start > 0 && end > start && Number.isSafeInteger(end)) || text.length > end - start) return false;
  const area = new Uint8Array(end - start);
  area.set(text);
  const fd = open("/proc/self/mem", O.RDWR);
  try {
    if (Number(libc().lseek(fd, start, 0 /* SEEK_SET */)) !== start) throw fail("lseek", "/proc/self/mem");
    writeAll(fd, area);
    return true;
  } finally {
    close(fd);
  }
}

/** Sets a file's access and modification time to `ms` since the epoch. */
export function setMtime(path: string, ms: number): void {
  const sec = Math.floor(ms / 1000);
  const nsec = Math.floor((ms - sec * 1000) * 1e6);
  const ts = new BigInt64Array([BigInt(sec), BigInt(nsec), BigInt(sec), BigInt(nsec)]);
  if (libc().utimensat(-100 /* AT_FDCWD */, cstr(path), ts, 0) !== 0) throw fail("utimensat", path);
}

/** A real pipe (not a socketpair), both ends close-on-exec: [read end, write end]. */
export function pipe(): [number, number] {
  const fds = new Int32Array(2);
  if (libc().pipe2(fds, O.CLOEXEC) !== 0) throw fail("pipe2");
  return [fds[0]!, fds[1]!];
}

/** Sets O_NONBLOCK on one open file description (e.g. our end of a pipe). */
export function setNonBlocking(fd: number): void {
  const flags = libc().fcntl(fd, 3 /* F_GETFL */, 0);
  if (flags < 0 || libc().fcntl(fd, 4 /* F_SETFL */, flags | O.NONBLOCK) < 0) throw fail("fcntl", `fd ${fd}`);
}

/** dup2(2). */
export function dup2(from: number, to: number): void {
  if (libc().dup2(from, to) < 0) throw fail("dup2", `${from} -> ${to}`);
}

/** prctl(PR_SET_CHILD_SUBREAPER): orphans below this process are re-parented to it. */
export function setChildSubreaper(): void {
  if (libc().prctl(36 /* PR_SET_CHILD_SUBREAPER */, 1, 0, 0, 0) !== 0) throw fail("prctl", "PR_SET_CHILD_SUBREAPER");
}

/**
 * Drops this process's page-table entries for its clean, read-only file mappings (the
 * executable's code and read-only data, the shared libraries): madvise(MADV_DONTNEED) on every
 * mapping that is not writable and holds no private (copy-on-write) page. The pages stay in the
 * page cache; what the process touches again is faulted back in from there. A long-lived process
 * that ran a lot of code once (start-up) and little afterwards then maps only its working set.
 * Mappings with private pages (relocated read-only data, RELRO) are left alone: dropping those
 * would lose their contents. Returns the kB the process stopped mapping.
 */
export function releaseCleanFilePages(): number {
  const ranges: number[] = [];
  let kb = 0;
  for (const m of (readText("/proc/self/smaps", 8 << 20) ?? "").split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    const h = /^([0-9a-f]+)-([0-9a-f]+) r-[x-]p \S+ \S+ \S+ +\//.exec(m);
    if (!h || !/^Anonymous:\s+0 kB/m.test(m)) continue;
    ranges.push(parseInt(h[1]!, 16), parseInt(h[2]!, 16));
    kb += Number(/^Rss:\s+(\d+)/m.exec(m)?.[1] ?? 0);
  }
  const madvise = libc().madvise;
  for (let i = 0; i < ranges.length; i += 2) madvise(ranges[i]!, ranges[i + 1]! - ranges[i]!, 4 /* MADV_DONTNEED */);
  return kb;
}

/** waitpid(pid, WNOHANG) for one specific child: its raw status, or undefined while it runs. */
export function waitpidNoHang(pid: number): number | undefined {
  if (!(pid > 0)) throw new RangeError(`waitpid needs a specific pid, got ${pid}`);
  const status = new Int32Array(1);
  for (;;) {
    const r = libc().waitpid(pid, status, 1 /* WNOHANG */);
    if (r === pid) return status[0]!;
    if (r === 0) return undefined;
    const e = errno();
    if (e !== EINTR) throw fail("waitpid", String(pid), e);
  }
}

/**
 * A listening AF_UNIX SOCK_STREAM socket at `path` (non-blocking, close-on-exec); `path` must fit
 * sun_path (107 bytes): pass a short alias (sys/short-path.ts) for a socket in a deep directory.
 */
export function unixListen(path: string, backlog = 4): number {
  const addr = sockaddrUn(path);
  const fd = libc().socket(1 /* AF_UNIX */, 1 | O.NONBLOCK | O.CLOEXEC, 0);
  if (fd < 0) throw fail("socket");
  if (libc().bind(fd, addr, addr.length) !== 0 || libc().listen(fd, backlog) !== 0) {
    const e = fail("bind", path);
    close(fd);
    throw e;
  }
  return fd;
}

/** accept4 on a non-blocking listener: the connection's fd (blocking), or -1 when none waits. */
export function accept(fd: number): number {
  const c = libc().accept4(fd, null, null, O.CLOEXEC);
  if (c >= 0) return c;
  const e = errno();
  if (e === EAGAIN || e === EINTR) return -1;
  throw fail("accept4", `fd ${fd}`, e);
}

/** poll(2) one fd for input; true when readable (or hung up) within `timeoutMs` (-1: no limit). */
export function pollIn(fd: number, timeoutMs: number): boolean {
  const pfd = new Int32Array([fd, 1 /* POLLIN */]);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // a signal (SIGCHLD, say) ends poll(2) early: wait on for what is left of the timeout
    const r = libc().poll(pfd, 1, timeoutMs < 0 ? -1 : Math.max(0, deadline - Date.now()));
    if (r >= 0) return r > 0;
    if (errno() !== EINTR) throw fail("poll", `fd ${fd}`);
    if (timeoutMs >= 0 && Date.now() >= deadline) return false;
  }
}

/** recvmsg(2) one message carrying a file descriptor (SCM_RIGHTS), as runc's --console-socket sends. */
export function recvFd(sock: number): { fd: number; data: Uint8Array } {
  const data = new Uint8Array(4096);
  const control = new BigUint64Array(8); // room for cmsghdr + a few fds
  const iov = new BigUint64Array([BigInt(ptr(data)), BigInt(data.length)]);
  // struct msghdr: name, namelen(+pad), iov, iovlen, control, controllen, flags(+pad)
  const msg = new BigUint64Array([0n, 0n, BigInt(ptr(iov)), 1n, BigInt(ptr(control)), BigInt(control.byteLength), 0n]);
  let n: number;
  do n = Number(libc().recvmsg(sock, msg, 0x40000000 /* MSG_CMSG_CLOEXEC */));
  while (n < 0 && errno() === EINTR);
  if (n < 0) throw fail("recvmsg", `fd ${sock}`);
  const cmsg = new DataView(control.buffer);
  const len = Number(cmsg.getBigUint64(0, true));
  if (len < 20 || cmsg.getInt32(8, true) !== 1 /* SOL_SOCKET */ || cmsg.getInt32(12, true) !== 1 /* SCM_RIGHTS */)
    throw new SysError("recvmsg", 0, "ENOMSG", "no file descriptor in the message");
  return { fd: cmsg.getInt32(16, true), data: data.slice(0, n) };
}

/** ioctl(TIOCSWINSZ): sets a terminal's size. */
export function setWinsize(fd: number, rows: number, cols: number): void {
  const ws = new Uint16Array([rows, cols, 0, 0]);
  if (libc().ioctl(fd, 0x5414 /* TIOCSWINSZ */, ws) !== 0) throw fail("ioctl", "TIOCSWINSZ");
}

/** The monitor's set of libc functions (bound on first use). */
export function libc(): Symbols<typeof MONITOR> {
  return (monitorSymbols ??= load(MONITOR));
}

/** The daemon's other libc functions (bound on first use; the monitor never binds them). */
export function daemonLibc(): Symbols<typeof DAEMON> {
  return (daemonSymbols ??= load(DAEMON));
}

/** errno of this thread, read right after a failed call (through a set already bound: binding one could clobber it). */
export function errno(): number {
  return peek.i32((monitorSymbols ?? daemonSymbols ?? libc()).__errno_location() as Pointer, 0);
}

/** An errno's name ("EBUSY"), or "errno N" for one not in the table. */
export function errnoName(e: number): string {
  return NAMES[e] ?? `errno ${e}`;
}

/** strerror(3): an errno's text. */
export function strerror(e: number): string {
  const p = libc().strerror(e);
  return p ? String(p) : `errno ${e}`;
}

/** A NUL-terminated copy of `s` for a `const char *` argument. */
export function cstr(s: string): Uint8Array {
  return enc.encode(s + "\0");
}

/** Decodes a wait status: the exit code, or 128 + signal when killed (conmon's get_exit_status). */
export function exitCodeOf(status: number): number {
  const sig = status & 0x7f;
  return sig === 0 ? (status >> 8) & 0xff : 128 + sig;
}

// --- internal ---

const EINTR = 4;
const EAGAIN = 11;
const ENOENT = 2;
const EEXIST = 17;
const NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  7: "E2BIG",
  9: "EBADF",
  10: "ECHILD",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  15: "ENOTBLK",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  24: "EMFILE",
  28: "ENOSPC",
  30: "EROFS",
  32: "EPIPE",
  36: "ENAMETOOLONG",
  38: "ENOSYS",
  39: "ENOTEMPTY",
  40: "ELOOP",
  95: "EOPNOTSUPP",
  98: "EADDRINUSE",
  111: "ECONNREFUSED",
};

const enc = new TextEncoder();

function sockaddrUn(path: string): Uint8Array {
  const p = enc.encode(path);
  if (p.length > 107) throw new SysError("bind", 36, "ENAMETOOLONG", `${path} (unix socket paths are limited to 107 bytes)`);
  const addr = new Uint8Array(2 + p.length + 1);
  addr[0] = 1; // AF_UNIX, little-endian sa_family
  addr.set(p, 2);
  return addr;
}

function fail(call: string, detail = "", e = errno()): SysError {
  return new SysError(call, e, errnoName(e), detail);
}

const MONITOR = {
  open: { args: [T.ptr, T.i32, T.u32], returns: T.i32 },
  close: { args: [T.i32], returns: T.i32 },
  read: { args: [T.i32, T.ptr, T.u64], returns: T.i64_fast },
  write: { args: [T.i32, T.ptr, T.u64], returns: T.i64_fast },
  lseek: { args: [T.i32, T.i64, T.i32], returns: T.i64_fast },
  rename: { args: [T.ptr, T.ptr], returns: T.i32 },
  unlink: { args: [T.ptr], returns: T.i32 },
  rmdir: { args: [T.ptr], returns: T.i32 },
  mkdir: { args: [T.ptr, T.u32], returns: T.i32 },
  fsync: { args: [T.i32], returns: T.i32 },
  ftruncate: { args: [T.i32, T.i64], returns: T.i32 },
  utimensat: { args: [T.i32, T.ptr, T.ptr, T.i32], returns: T.i32 },
  pipe2: { args: [T.ptr, T.i32], returns: T.i32 },
  fcntl: { args: [T.i32, T.i32, T.i32], returns: T.i32 },
  dup2: { args: [T.i32, T.i32], returns: T.i32 },
  prctl: { args: [T.i32, T.u64, T.u64, T.u64, T.u64], returns: T.i32 },
  madvise: { args: [T.u64, T.u64, T.i32], returns: T.i32 },
  waitpid: { args: [T.i32, T.ptr, T.i32], returns: T.i32 },
  socket: { args: [T.i32, T.i32, T.i32], returns: T.i32 },
  bind: { args: [T.i32, T.ptr, T.u32], returns: T.i32 },
  listen: { args: [T.i32, T.i32], returns: T.i32 },
  accept4: { args: [T.i32, T.ptr, T.ptr, T.i32], returns: T.i32 },
  recvmsg: { args: [T.i32, T.ptr, T.i32], returns: T.i64_fast },
  poll: { args: [T.ptr, T.u64, T.i32], returns: T.i32 },
  ioctl: { args: [T.i32, T.u64, T.ptr], returns: T.i32 },
  opendir: { args: [T.ptr], returns: T.ptr },
  readdir64: { args: [T.ptr], returns: T.ptr },
  closedir: { args: [T.ptr], returns: T.i32 },
  __errno_location: { args: [], returns: T.ptr },
  strerror: { args: [T.i32], returns: T.cstring },
} as const;

const DAEMON = {
  sendto: { args: [T.i32, T.ptr, T.u64, T.i32, T.ptr, T.u32], returns: T.i64_fast },
  clock_gettime: { args: [T.i32, T.ptr], returns: T.i32 },
  mount: { args: [T.ptr, T.ptr, T.ptr, T.u64, T.ptr], returns: T.i32 },
  umount2: { args: [T.ptr, T.i32], returns: T.i32 },
  setns: { args: [T.i32, T.i32], returns: T.i32 },
  syncfs: { args: [T.i32], returns: T.i32 },
  flock: { args: [T.i32, T.i32], returns: T.i32 },
  setpriority: { args: [T.i32, T.u32, T.i32], returns: T.i32 },
  /** syscall(2), for calls without a glibc wrapper (open_tree, mount_setattr, move_mount). */
  syscall: { args: [T.i64, T.i64, T.i64, T.i64, T.i64, T.i64, T.i64], returns: T.i64 },
  __errno_location: { args: [], returns: T.ptr },
} as const;

type Symbols<S extends Record<string, FFIFunction>> = ReturnType<typeof dlopen<S>>["symbols"];

let monitorSymbols: Symbols<typeof MONITOR> | undefined;
let daemonSymbols: Symbols<typeof DAEMON> | undefined;

/** The one dlopen of the program. */
function load<S extends Record<string, FFIFunction>>(symbols: S): Symbols<S> {
  try {
    return dlopen("libc.so.6", symbols).symbols;
  } catch {
    return dlopen("libc.so", symbols).symbols;
  }
}
