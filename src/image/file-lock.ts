import { closeSync, openSync } from "node:fs";
import { RuntimeError } from "../errors.ts";
import { Serial } from "../util/wait.ts";

/**
 * An exclusive lock shared between processes (the daemon and `crio pull`), held by a child
 * `flock(1)` process: it takes flock(2) on the file, prints a line, and holds the lock until its
 * stdin closes. If this process dies (even by SIGKILL) the pipe closes, the child exits, and the
 * kernel releases the lock, so a crash never leaves the store locked. Within one process the
 * holders queue up (Serial), so only one child runs at a time.
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
      const release = await this.#acquire();
      try {
        return await fn();
      } finally {
        await release();
      }
    });
  }

  // --- internal ---

  async #acquire(): Promise<() => Promise<void>> {
    closeSync(openSync(this.#path, "a", 0o600));
    const secs = Math.max(1, Math.ceil(this.#timeoutMs / 1000));
    // -o: the lock fd is not passed on to the shell; `read` blocks until our end of the pipe closes.
    const p = Bun.spawn(["flock", "-x", "-o", "-w", String(secs), this.#path, "-c", "echo locked; read -r _ || true"], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    const reader = (p.stdout as ReadableStream<Uint8Array>).getReader();
    let got = "";
    while (!got.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      got += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    if (!got.startsWith("locked")) {
      const err = await new Response(p.stderr as ReadableStream).text();
      const code = await p.exited;
      if (code === 1 && !err.trim())
        throw new RuntimeError("deadline-exceeded", `image store lock ${this.#path} is held by another process for more than ${secs} s`);
      throw new RuntimeError("internal", `cannot lock ${this.#path}: flock exited ${code}: ${err.trim()}`);
    }
    return async () => {
      try {
        p.stdin.end();
      } catch {
        // already closed
      }
      await p.exited;
    };
  }
}
