import { dlopen, FFIType as T } from "bun:ffi";

/**
 * Process descriptors (pidfd_open(2), Linux ≥ 5.3, glibc ≥ 2.36): a pidfd names one process for
 * good (a recycled pid is another process) and polls readable once that process has exited, so
 * the exit of many processes is seen with one poll(2) and no /proc read. Close-on-exec always.
 * Where the kernel or libc lacks it, pidfdOpen answers undefined and the caller keeps its other way.
 */

let fns: ReturnType<typeof load> | null | undefined;

function load() {
  return dlopen("libc.so.6", {
    pidfd_open: { args: [T.i32, T.u32], returns: T.i32 },
    poll: { args: [T.ptr, T.u64, T.i32], returns: T.i32 },
    close: { args: [T.i32], returns: T.i32 },
  }).symbols;
}

function lib() {
  if (fns === undefined) {
    try {
      fns = load();
    } catch {
      fns = null; // glibc < 2.36: no pidfd_open symbol
    }
  }
  return fns;
}

/** A pidfd for `pid`; undefined when the process is gone or pidfds are not available. */
export function pidfdOpen(pid: number): number | undefined {
  if (!(pid > 0)) return undefined;
  const fd = lib()?.pidfd_open(pid, 0) ?? -1;
  return fd >= 0 ? fd : undefined;
}

/** Closes a pidfd. */
export function pidfdClose(fd: number): void {
  lib()?.close(fd);
}

/** Of `fds`, the pidfds whose process has exited (poll(2) with no wait; POLLNVAL counts as gone). */
export function exitedPidfds(fds: readonly number[]): Set<number> {
  const out = new Set<number>();
  const l = lib();
  if (!l || fds.length === 0) return out;
  // struct pollfd { int fd; short events; short revents; }: two int32 per entry
  const pfd = new Int32Array(fds.length * 2);
  for (let i = 0; i < fds.length; i++) {
    pfd[i * 2] = fds[i]!;
    pfd[i * 2 + 1] = 1; // events = POLLIN, revents = 0
  }
  if (l.poll(pfd, fds.length, 0) <= 0) return out;
  for (let i = 0; i < fds.length; i++) if (pfd[i * 2 + 1]! >>> 16 !== 0) out.add(fds[i]!);
  return out;
}
