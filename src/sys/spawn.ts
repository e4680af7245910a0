/**
 * The one place a child process is started: every `Bun.spawn` of the program is this `spawn()`
 * (test/unit/architecture.test.ts holds that). Its callers: `run()` in exec.ts and the spawner
 * thread behind it (runc, CNI plugins, unshare, …), the monitor (`crio conmon`, monitor/spawn.ts)
 * and the OCI runtime under it (conmon/launch.ts), layer unpacking (tar, zstd), the image store's
 * lock holder (flock), the port-forward helper (`crio nsdial`) and user namespace helpers.
 * It imports nothing (the monitor role loads it: no node: module, no libc).
 */
import type { SpawnOptions, Subprocess } from "bun";

/** Options of spawn(): Bun.spawn's, plus the death signal. */
export type SpawnOpts<In extends SpawnOptions.Writable, Out extends SpawnOptions.Readable, Err extends SpawnOptions.Readable> = SpawnOptions.SpawnOptions<
  In,
  Out,
  Err
> & {
  /** SIGKILL the child when this process dies (see dieWithParent()). */
  dieWithParent?: boolean;
};

/** Starts `argv` (Bun.spawn, same options and defaults). */
export function spawn<
  const In extends SpawnOptions.Writable = "ignore",
  const Out extends SpawnOptions.Readable = "pipe",
  const Err extends SpawnOptions.Readable = "inherit",
>(argv: string[], o: SpawnOpts<In, Out, Err> = {}): Subprocess<In, Out, Err> {
  const { dieWithParent: die, ...opts } = o;
  return Bun.spawn(die ? dieWithParent(argv) : argv, opts as SpawnOptions.SpawnOptions<In, Out, Err>);
}

/**
 * `argv` run so that the kernel SIGKILLs it when this process dies (PR_SET_PDEATHSIG through
 * util-linux setpriv): a CNI plugin, tar or zstd must not go on after a kill -9 of the daemon.
 * Without /usr/bin/setpriv, `argv` as is (the child then ends at EOF of its input, or runs on).
 */
export function dieWithParent(argv: readonly string[]): string[] {
  pdeathsig ??= Bun.which("setpriv", { PATH: "/usr/bin" }) === "/usr/bin/setpriv" ? ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--"] : [];
  return [...pdeathsig, ...argv];
}

/**
 * Reads a child's output up to its first newline (a helper saying "ready" or "locked") and lets
 * go of the stream; what it read (more than the line if it came in one chunk), or less at EOF.
 */
export async function readFirstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  let seen = "";
  while (!seen.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return seen;
}

let pdeathsig: string[] | undefined;
