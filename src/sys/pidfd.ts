import { daemonLibc, libc } from "./libc.ts";

/**
 * Process descriptors (pidfd_open(2), Linux ≥ 5.3): a pidfd names one process for good (a
 * recycled pid is another process) and polls readable once that process has exited, so the exit
 * of many processes is seen with one poll(2) and no /proc read. Close-on-exec always. Where the
 * kernel lacks it, pidfdOpen answers undefined and the caller keeps its other way.
 */

/** pidfd_open's number in the generic syscall table (the same on x86_64 and aarch64). */
const SYS_PIDFD_OPEN = 434;

/** A pidfd for `pid`; undefined when the process is gone or pidfds are not available. */
export function pidfdOpen(pid: number): number | undefined {
  if (!(pid > 0)) return undefined;
  const fd = Number(daemonLibc().syscall(SYS_PIDFD_OPEN, pid, 0, 0, 0, 0, 0));
  return fd >= 0 ? fd : undefined;
}

/** Closes a pidfd. */
export function pidfdClose(fd: number): void {
  libc().close(fd);
}

/** Of `fds`, the pidfds whose process has exited (poll(2) with no wait; POLLNVAL counts as gone). */
export function exitedPidfds(fds: readonly number[]): Set<number> {
  const out = new Set<number>();
  if (fds.length === 0) return out;
  // struct pollfd { int fd; short events; short revents; }: two int32 per entry
  const pfd = new Int32Array(fds.length * 2);
  for (let i = 0; i < fds.length; i++) {
    pfd[i * 2] = fds[i]!;
    pfd[i * 2 + 1] = 1; // events = POLLIN, revents = 0
  }
  if (libc().poll(pfd, fds.length, 0) <= 0) return out;
  for (let i = 0; i < fds.length; i++) if (pfd[i * 2 + 1]! >>> 16 !== 0) out.add(fds[i]!);
  return out;
}
