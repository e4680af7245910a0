import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "../log/index.ts";
import { messageOf } from "../errors.ts";
import { smapsRollup } from "../sys/proc-self.ts";

/**
 * SIGUSR1: a diagnostics dump, as CRI-O writes its goroutine stacks on SIGUSR1 — here, after a
 * full garbage collection (so the heap counts only live objects, and memory figures taken before
 * and after a workload compare what it kept, not when the collector last ran), the process's
 * memory (RSS, PSS, anonymous), the JavaScript heap by object type, and what
 * `extra` adds (requests in flight, warm monitors, …), as JSON in
 * `$TMPDIR/crio-debug-<time>.json` (mode 0600). The daemon keeps running; the path is logged.
 */
export function installDebugDump(log: Logger, extra: () => Record<string, unknown> = () => ({})): () => void {
  const onSignal = () => {
    void writeDump(log, extra).catch((e) => log.error(`cannot write the debug dump: ${messageOf(e)}`));
  };
  process.on("SIGUSR1", onSignal);
  return () => void process.off("SIGUSR1", onSignal);
}

/** Writes one dump now; returns its path. */
export async function writeDump(log: Logger, extra: () => Record<string, unknown> = () => ({})): Promise<string> {
  const { heapStats } = await import("bun:jsc");
  const at = new Date();
  Bun.gc(true);
  const h = heapStats();
  const top = (counts: Record<string, number>, n: number) =>
    Object.fromEntries(
      Object.entries(counts)
        .sort((a, b) => b[1] - a[1])
        .slice(0, n),
    );
  const dump = {
    time: at.toISOString(),
    pid: process.pid,
    uptimeSeconds: Math.round(process.uptime()),
    memoryKiB: smapsRollup(),
    heap: {
      sizeBytes: h.heapSize,
      capacityBytes: h.heapCapacity,
      extraMemoryBytes: h.extraMemorySize,
      objects: h.objectCount,
      protectedObjects: h.protectedObjectCount,
      objectTypes: top(h.objectTypeCounts, 40),
    },
    ...safe(extra),
  };
  const path = join(tmpdir(), `crio-debug-${at.toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(path, JSON.stringify(dump, null, 2) + "\n", { mode: 0o600 });
  log.info(`wrote debug dump to ${path}`);
  return path;
}

// --- internal ---

function safe(extra: () => Record<string, unknown>): Record<string, unknown> {
  try {
    return extra();
  } catch (e) {
    return { extraError: messageOf(e) };
  }
}
