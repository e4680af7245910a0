import type { SocketHandler, UnixSocketListener } from "bun";
import { close, open, O, SysError } from "./libc.ts";

/**
 * Unix socket paths of any length. sun_path holds 107 bytes, but the directory of a socket can be
 * as deep as the operator likes (a runroot under a long temp dir, a kubelet's root dir): every
 * socket the daemon or a monitor binds or connects is named through a short alias instead of its
 * full path — `/proc/self/fd/<fd>/<name>`, where `<fd>` is an O_PATH descriptor of the socket's
 * directory — as conmon does. The kernel resolves the alias to the same directory entry, so the
 * socket file appears at (or is found at) its full path; only the name handed to bind(2) or
 * connect(2) is short. A child process (the OCI runtime connecting to a console socket) reaches
 * the same directory through `/proc/<our pid>/fd/<fd>/<name>` (childPath).
 *
 * Uses libc.ts only: the monitor role imports it, and loads no node: module.
 */
export interface ShortSocketPath {
  /** The full path this stands for. */
  readonly full: string;
  /** What to hand bind/connect/listen: `/proc/self/fd/<fd>/<name>`, at most 107 bytes. */
  readonly path: string;
  /** The O_PATH descriptor of the socket's directory (-1 once released). */
  readonly dirFd: number;
  /** The alias as another process sees it, for a child told where to connect: `/proc/<pid>/fd/<fd>/<name>`. */
  childPath(pid: number): string;
  /**
   * Closes the directory descriptor; the alias then names nothing (or, once the fd number is
   * reused, something else). Keep it until the listener is stopped: Bun's listeners unlink the
   * name they were given when they stop. Idempotent.
   */
  release(): void;
}

/** The longest sun_path a pathname socket can have (108 bytes with the terminating NUL). */
export const SUN_PATH_MAX = 107;

/**
 * Opens the directory of the unix socket `full` (O_PATH) and returns its short alias. Throws a
 * SysError when the directory cannot be opened (ENOENT, ENOTDIR, EACCES: naming it), or
 * ENAMETOOLONG when the socket's own name is too long even for the alias.
 */
export function shortSocketPath(full: string): ShortSocketPath {
  const { dir, name } = splitSocketPath(full);
  const fd = open(dir, O.PATH);
  const path = aliasOf("self", fd, name);
  if (byteLength(path) > SUN_PATH_MAX) {
    close(fd);
    throw new SysError("bind", 36, "ENAMETOOLONG", `${full}: the socket's name "${name}" is too long for a unix socket path (${SUN_PATH_MAX} bytes)`);
  }
  let dirFd = fd;
  return {
    full,
    path,
    get dirFd() {
      return dirFd;
    },
    childPath: (pid) => aliasOf(String(pid), fd, name),
    release() {
      if (dirFd >= 0) close(dirFd);
      dirFd = -1;
    },
  };
}

/**
 * Bun.listen on the unix socket `full` through its short alias. The alias is held while the
 * listener lives: stop the listener first, then release the alias (Bun unlinks the socket file
 * through the name it was given). On failure nothing is held.
 */
export function listenUnix<T>(full: string, socket: SocketHandler<T>): { server: UnixSocketListener<T>; alias: ShortSocketPath } {
  const alias = shortSocketPath(full);
  try {
    return { server: Bun.listen<T>({ unix: alias.path, socket }), alias };
  } catch (e) {
    alias.release();
    throw e;
  }
}

/**
 * Runs `fn` with the short alias of the socket `full` (see shortSocketPath) and releases the
 * directory descriptor when `fn` returns or, when it returns a promise, once that settles: for a
 * connect, whose alias is needed only until the connection is made.
 */
export function withShortSocketPath<T>(full: string, fn: (path: string) => T): T {
  const s = shortSocketPath(full);
  let r: T;
  try {
    r = fn(s.path);
  } catch (e) {
    s.release();
    throw e;
  }
  if (r instanceof Promise) return r.finally(() => s.release()) as T;
  s.release();
  return r;
}

/** The directory (`.` for a bare name) and the name of a socket path; the name must not be empty. */
export function splitSocketPath(full: string): { dir: string; name: string } {
  if (full.includes("\0")) throw new SysError("bind", 22, "EINVAL", `unix socket path "${full.replaceAll("\0", "\\0")}" holds a NUL byte`);
  const slash = full.lastIndexOf("/");
  const name = full.slice(slash + 1);
  if (!name || name === "." || name === "..") throw new SysError("bind", 22, "EINVAL", `"${full}" does not name a unix socket`);
  const dir = slash < 0 ? "." : slash === 0 ? "/" : full.slice(0, slash);
  return { dir, name };
}

// --- internal ---

const aliasOf = (proc: string, fd: number, name: string) => `/proc/${proc}/fd/${fd}/${name}`;

const byteLength = (s: string) => new TextEncoder().encode(s).length;
