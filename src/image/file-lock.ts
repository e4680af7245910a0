import { RuntimeError, messageOf } from "../errors.ts";
import { close, O, open, tryLockExclusive } from "../sys/libc.ts";
import { Serial } from "../util/wait.ts";

/**
 * An exclusive lock shared between processes (the daemon and `crio pull`): flock(2) on the file,
 * taken in this process on a descriptor of its own (close-on-exec, so no child inherits it) and
 * released by closing it. If this process dies (even by SIGKILL) the kernel closes the descriptor
 * and releases the lock, so a crash never leaves the store locked. Within one process the
 * holders queue up (Serial); across processes a waiter retries the non-blocking flock with a
 * growing pause (1 ms up to 25 ms), so the event loop never blocks on it.
 */
export class FileLock {
  #path: string;
  #serial = new Serial();
  #timeoutMs: number;

  /** `path` is created when missing. */
  constructor(path: string, timeoutMs = 120_000) {
    this.#path = path;
    this.#timeoutMs = timeoutMs;
  }

  /** Runs `fn` while holding the lock. Throws deadline-exceeded when the lock cannot be had in time. */
  async with<T>(fn: () => Promise<T>): Promise<T> {
    return this.#serial.run(async () => {
      const fd = await this.#acquire();
      try {
        return await fn();
      } finally {
        close(fd);
      }
    });
  }

  // --- internal ---

  async #acquire(): Promise<number> {
    let fd: number;
    try {
      fd = open(this.#path, O.RDWR | O.CREAT, 0o600);
    } catch (e) {
      throw new RuntimeError("internal", `cannot lock ${this.#path}: ${messageOf(e)}`, { cause: e });
    }
    try {
      const deadline = Date.now() + this.#timeoutMs;
      for (let pause = 1; !tryLockExclusive(fd); pause = Math.min(25, pause * 2)) {
        if (Date.now() > deadline)
          throw new RuntimeError(
            "deadline-exceeded",
            `image store lock ${this.#path} is held by another process for more than ${Math.ceil(this.#timeoutMs / 1000)} s`,
          );
        await Bun.sleep(pause);
      }
      return fd;
    } catch (e) {
      close(fd);
      throw e instanceof RuntimeError ? e : new RuntimeError("internal", `cannot lock ${this.#path}: ${messageOf(e)}`, { cause: e });
    }
  }
}
