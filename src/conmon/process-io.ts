import { close } from "../sys/libc.ts";
import { Pump } from "./io.ts";
import { killTree } from "./kill-tree.ts";
import type { Launched } from "./launch.ts";
import { Frame } from "./protocol.ts";
import type { ProcessExit } from "./reaper.ts";

/** An output frame type: terminal output is stdout. */
export type OutputType = typeof Frame.STDOUT | typeof Frame.STDERR;

/**
 * Reads the process's output (its pty master, else its stdout and stderr pipes), each chunk to
 * `sink` with its frame type; the sink's promise is awaited before the next read (flow control).
 * `ended` is called when a stream ends.
 */
export function pumpOutput(proc: Launched, sink: (type: OutputType, chunk: Uint8Array) => void | Promise<void>, ended?: (type: OutputType) => void): Pump[] {
  const streams: Array<[number | undefined, OutputType]> = [
    [proc.master, Frame.STDOUT],
    [proc.stdout, Frame.STDOUT],
    [proc.stderr, Frame.STDERR],
  ];
  const pumps: Pump[] = [];
  for (const [fd, type] of streams) {
    if (fd === undefined) continue;
    const p = new Pump(fd, (chunk) => sink(type, chunk));
    if (ended) void p.done.then(() => ended(type));
    pumps.push(p);
  }
  return pumps;
}

/**
 * Waits for the process's exit; with `timeoutMs` > 0 the process and its descendants are killed
 * once it has run that long (timedOut), and the exit is the one after the kill.
 */
export async function awaitExit(proc: Launched, timeoutMs: number): Promise<{ exit: ProcessExit; timedOut: boolean }> {
  let timedOut = false;
  if (timeoutMs > 0) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<true>((r) => (timer = setTimeout(() => r(true), timeoutMs)));
    timedOut = (await Promise.race([proc.exited, expired])) === true;
    clearTimeout(timer);
    if (timedOut) await killTree(proc.pid);
  }
  return { exit: await proc.exited, timedOut };
}

/** Lets the output still in the pipes reach its readers (≤ DRAIN_MS after the exit), then stops reading. */
export async function drain(pumps: Pump[]): Promise<void> {
  await Promise.race([Promise.all(pumps.map((p) => p.done)), Bun.sleep(DRAIN_MS)]);
  for (const p of pumps) p.cancel();
}

/** Closes our ends of the process's stdout, stderr and pty (stdin belongs to its Writer). */
export function closeAll(proc: Launched): void {
  for (const fd of [proc.stdout, proc.stderr, proc.master]) if (fd !== undefined) close(fd);
}

// --- internal ---

/** How long output may keep flowing after the process exited (orphans holding the pipes). */
const DRAIN_MS = 2000;
