import { write } from "../sys/libc.ts";
import { nowRfc3339Nano } from "../util/time.ts";

/**
 * The monitor's own diagnostics: logrus-style lines (`time="…" level=warning msg="…" id=…`) on
 * fd 2, which the daemon points at `<dir>/monitor.log` or /dev/null. Deliberately not consola:
 * every module this role loads is paid once per container.
 */

/** Severity of a diagnostic line. */
export type DiagLevel = "debug" | "info" | "warning" | "error";

/** Sets fields added to every line (e.g. the container id). */
export function setDiagFields(fields: Record<string, string>): void {
  base = Object.entries(fields)
    .map(([k, v]) => ` ${k}=${quote(v)}`)
    .join("");
}

/** Writes one diagnostic line; never throws. */
export function diag(level: DiagLevel, msg: string, fields: Record<string, unknown> = {}): void {
  let line = `time="${nowRfc3339Nano()}" level=${level} msg=${JSON.stringify(msg)}${base}`;
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    line += ` ${k}=${quote(v instanceof Error ? v.message : typeof v === "string" ? v : JSON.stringify(v))}`;
  }
  try {
    write(2, new TextEncoder().encode(line + "\n"));
  } catch {
    // fd 2 closed or full: diagnostics are best effort
  }
}

/**
 * CRIO_MONITOR_DEBUG (inherited from the daemon's environment): trace the session's steps in
 * the diagnostics log and keep an exec session's log when it ends, for post-mortems.
 */
export const DEBUG = !!process.env.CRIO_MONITOR_DEBUG;

/** A debug line, written only with CRIO_MONITOR_DEBUG. */
export function trace(msg: string, fields: Record<string, unknown>): void {
  if (DEBUG) diag("debug", msg, fields);
}

/** Runs `fn`; a failure is logged as ignored and gives undefined. */
export function tryIt<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    diag("warning", "ignored failure", { error: e });
    return undefined;
  }
}

// --- internal ---

let base = "";

function quote(s: string): string {
  return s !== "" && /^[A-Za-z0-9_.\-/:@+,]+$/.test(s) ? s : JSON.stringify(s);
}
