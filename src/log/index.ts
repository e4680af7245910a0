// consola/core: the logger without the default instance, reporters and terminal probing of the package root (~6 ms of start-up)
import { createConsola, type ConsolaInstance, type LogObject } from "consola/core";
import { nowRfc3339Nano } from "../util/time.ts";

/**
 * Logging for the daemon and the monitor: logrus-style text lines (CRI-O's format) on stderr,
 * `time="…" level=info msg="…" key=value`, or JSON lines. The level and filter are process-wide
 * and can change at run time (SIGHUP reload). Modules take a tagged child: log.withTag("image").
 */

export type Logger = ConsolaInstance;
export type LogLevelName = "fatal" | "panic" | "error" | "warn" | "info" | "debug" | "trace";
export type LogFormat = "text" | "json";

/** Level names in CRI-O's order, most severe first. */
export const LOG_LEVELS: readonly LogLevelName[] = ["fatal", "panic", "error", "warn", "info", "debug", "trace"];

const CONSOLA_LEVEL: Record<LogLevelName, number> = { fatal: 0, panic: 0, error: 0, warn: 1, info: 3, debug: 4, trace: 5 };
const NAME_OF_TYPE: Record<string, string> = {
  fatal: "fatal",
  error: "error",
  warn: "warning",
  log: "info",
  info: "info",
  success: "info",
  ready: "info",
  start: "info",
  box: "info",
  debug: "debug",
  trace: "trace",
  verbose: "trace",
  fail: "error",
};

const state: { format: LogFormat; filter?: RegExp; level: number; out: (line: string) => void } = {
  format: "text",
  level: CONSOLA_LEVEL.info,
  out: (line) => process.stderr.write(line),
};

/**
 * The root logger. consola copies the level into every child made with withTag(), so the
 * instances pass everything and the reporter applies the one process-wide level: a child taken
 * at module load still follows a later SIGHUP level change.
 */
export const log: Logger = createConsola({
  level: 999,
  reporters: [{ log: (o: LogObject) => report(o) }],
});

/** Sets the process-wide level. */
export function setLogLevel(level: LogLevelName): void {
  state.level = CONSOLA_LEVEL[level];
}

/** True when messages of this level are printed (guard expensive debug formatting with it). */
export function logEnabled(level: LogLevelName): boolean {
  return CONSOLA_LEVEL[level] <= state.level;
}

/** Sets text or JSON output. */
export function setLogFormat(format: LogFormat): void {
  state.format = format;
}

/** Only messages matching `re` are printed ("" clears the filter). */
export function setLogFilter(re: string): void {
  state.filter = re ? new RegExp(re) : undefined;
}

/** Redirects output (tests). */
export function setLogSink(out: (line: string) => void): void {
  state.out = out;
}

// --- internal ---

function report(o: LogObject): void {
  if (o.level > state.level) return;
  const args = [...o.args];
  let fields: Record<string, unknown> = {};
  const last = args[args.length - 1];
  if (args.length > 1 && last && typeof last === "object" && !(last instanceof Error)) {
    fields = last as Record<string, unknown>;
    args.pop();
  }
  const msg = args.map((a) => (a instanceof Error ? errorText(a) : typeof a === "string" ? a : safeJson(a))).join(" ");
  if (state.filter && !state.filter.test(msg)) return;
  const level = NAME_OF_TYPE[o.type] ?? "info";
  const time = nowRfc3339Nano();
  const all: Record<string, unknown> = o.tag ? { ...fields, component: o.tag } : fields;
  if (state.format === "json") {
    state.out(safeJson({ time, level, msg, ...all }) + "\n");
    return;
  }
  let line = `time="${time}" level=${level} msg=${JSON.stringify(msg)}`;
  for (const [k, v] of Object.entries(all)) {
    if (v === undefined) continue;
    line += ` ${k}=${quote(typeof v === "string" ? v : v instanceof Error ? errorText(v) : safeJson(v))}`;
  }
  state.out(line + "\n");
}

function errorText(e: Error): string {
  let s = e.message;
  let c = (e as { cause?: unknown }).cause;
  for (let depth = 0; c instanceof Error && depth < 5; depth++, c = (c as { cause?: unknown }).cause) if (!s.includes(c.message)) s += `: ${c.message}`;
  return s;
}

function quote(s: string): string {
  if (s !== "" && /^[A-Za-z0-9_.\-/:@+,]+$/.test(s)) return s;
  return JSON.stringify(s);
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x)) ?? String(v);
  } catch {
    return String(v);
  }
}
