import { killTree } from "../sys/kill-tree.ts";
import { close } from "../sys/libc.ts";
import { diag } from "./diag.ts";
import { Pump, type OutputPipe } from "./io.ts";
import type { Launched } from "./launch.ts";
import { Frame } from "./protocol.ts";
import type { ProcessExit } from "./reaper.ts";

/** An output frame type: terminal output is stdout. */
export type OutputType = typeof Frame.STDOUT | typeof Frame.STDERR;

/** A stream being read: it settles when it ends; cancel() stops reading it. */
export interface Reading {
  readonly done: Promise<void>;
  cancel(): void;
}

/**
 * Reads the process's output (its pty master, else its stdout and stderr pipes, starting with
 * what was read while the runtime ran), each chunk to `sink` with its frame type; the sink's
 * promise is awaited before the next read (flow control). `ended` is called when a stream ends.
 */
export function pumpOutput(proc: Launched, sink: (type: OutputType, chunk: Uint8Array) => void | Promise<void>, ended?: (type: OutputType) => void): Reading[] {
  const streams: Array<[number | OutputPipe | undefined, OutputType]> = [
    [proc.master, Frame.STDOUT],
    [proc.stdout, Frame.STDOUT],
    [proc.stderr, Frame.STDERR],
  ];
  const readings: Reading[] = [];
  for (const [from, type] of streams) {
    if (from === undefined) continue;
    let r: Reading;
    if (typeof from === "number") r = new Pump(from, (chunk) => sink(type, chunk));
    else {
      r = from;
      void from
        .attach((chunk) => sink(type, chunk))
        .then((dropped) => {
          if (dropped > 0)
            diag("warning", "output written while the runtime ran was more than kept: its start was dropped", {
              stream: type === Frame.STDERR ? "stderr" : "stdout",
              dropped,
            });
        });
    }
    if (ended) void r.done.then(() => ended(type));
    readings.push(r);
  }
  return readings;
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
export async function drain(pumps: Reading[]): Promise<void> {
  await Promise.race([Promise.all(pumps.map((p) => p.done)), Bun.sleep(DRAIN_MS)]);
  for (const p of pumps) p.cancel();
}

/** Stops reading and closes our ends of the process's stdout, stderr and pty (stdin belongs to its Writer). */
export function closeAll(proc: Launched): void {
  for (const p of [proc.stdout, proc.stderr]) {
    if (!p) continue;
    p.cancel();
    close(p.fd);
  }
  if (proc.master !== undefined) close(proc.master);
}

// --- internal ---

/** How long output may keep flowing after the process exited (orphans holding the pipes). */
const DRAIN_MS = 2000;
