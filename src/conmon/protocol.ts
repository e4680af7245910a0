/**
 * The contract between the daemon (src/monitor/) and the monitor role (`crio conmon …`,
 * src/conmon/). Both sides import this file and nothing else of each other. It is all argv, one
 * pipe, files and two unix sockets, so moving to one monitor per pod later only changes how a
 * `MonitorArgs` request reaches the monitor (argv today, a socket message then).
 *
 * 1. argv: `crio conmon --mode create|exec|exec-sync --id ID …` (buildArgs / parseArgs).
 *    `crio conmon --version` prints PROTOCOL and exits 0.
 *    Standby exec-sync (`--mode exec-sync --standby`, no --id/--container/--dir/--timeout-ms):
 *    the monitor starts with its fds 3-5 wired, then blocks in poll(2) on fd 0, a pipe from the
 *    daemon, until one ExecSyncRequest line arrives (encodeExecRequest: id, container, dir,
 *    timeoutMs); from there it is an ordinary exec-sync monitor with those arguments. End of
 *    file on fd 0 before a full line (the daemon closed it, or died) makes it exit 0 at once,
 *    silently; a bad request is reported as `{"error":…}` on fd 3 (exit 2). The daemon keeps one
 *    such monitor warm per runtime handler so an ExecSync does not wait for a process start.
 *    Standby exec (`--mode exec --standby`, nor --terminal/--stdin/--attach-timeout-ms either):
 *    the same wait, fd 0 only, for one ExecSessionRequest line (id, container, dir, terminal,
 *    stdin, attachTimeoutMs); it then points its fd 2 at `<dir>/monitor.log` and is an ordinary
 *    exec monitor. The daemon keeps one warm per runtime handler for streaming exec sessions.
 *    Standby create (`--mode create --standby` with --exit-dir, nothing about the container):
 *    the same wait for one CreateRequest line (id, dir, bundle, logPath, terminal, stdin,
 *    stdinOnce, logSizeMax, noSyncLog; the container is the id); it then points its fd 2 at
 *    `<dir>/monitor.log` and is an ordinary container monitor, which outlives the daemon as any
 *    does. The daemon keeps one warm per runtime handler so CreateContainer does not wait for a
 *    process start (a compiled Bun program needs ~9 ms to reach its main).
 * 2. fd 3 (SYNC_FD), a pipe the daemon reads, one JSON line per message (encodeSync/parseSync):
 *    create, exec: `{"pid":N}` once the runtime created the process (after the log, attach and
 *                  ctl sockets are ready), or `{"error":"<runtime's message>"}` (the last error
 *                  of its JSON log, else the last 4096 characters it wrote to stderr, else its
 *                  exit status); then fd 3 closes.
 *    exec-sync:    `{"pid":N}` then `{"exitCode":N,"timedOut":bool}` when the process is gone
 *                  (after a timeout: killed with its descendants and reaped first).
 *    exec-sync hands fd 4 and 5 (EXEC_STDOUT_FD/EXEC_STDERR_FD, pipes the daemon reads) straight
 *    to the runtime: the output never passes through the monitor. Its fds 0-2 are not used.
 *    The monitor's fd 2 is its diagnostics log (logrus-style lines); the daemon points it at
 *    `<dir>/monitor.log` or /dev/null.
 * 3. Files in the monitor dir `<socketDir>/<id>/` (monitorFiles): `pid` (the container's, written
 *    by the runtime), `monitor.pid`, `attach` and `ctl` sockets, `runtime.log` (the runtime's JSON
 *    log, read for its error text), `con` (the console socket, transient), `process.json` (exec
 *    modes; the daemon writes it). Exec modes remove the whole dir when they end. The dir may be
 *    any depth: both sides bind and connect its sockets through `/proc/self/fd/<dir fd>/<name>`
 *    (sys/short-path.ts), and the runtime is told `/proc/<monitor pid>/fd/<dir fd>/con`.
 * 4. Exit files, written atomically when the process has been reaped and its output drained:
 *    `<exitDir>/<id>` holds the decimal exit code (128 + signal when killed, conmon's
 *    get_exit_status); its mtime is the moment of the exit. `<exitDir>/<id>.oom` (empty) exists
 *    when the cgroup's OOM killer killed a process of the container; it is written before the
 *    exit file. Temporary files start with a dot. exec-sync writes no exit file.
 * 5. The log file (create mode, or exec with --log-path), CRI format, one line per record:
 *    `<RFC3339Nano> <stdout|stderr> <F|P> <bytes>\n`. F ends a line; P is a piece of a line longer
 *    than LOG_LINE_MAX bytes (pieces of exactly LOG_LINE_MAX, then F with the rest). A line is
 *    written as soon as its newline arrives; an unterminated tail is written as F at end of
 *    stream. With a terminal everything is `stdout`. When the file would grow beyond
 *    --log-size-max it is truncated to zero and writing goes on (conmon's behaviour).
 *    Without a terminal, what the runtime itself (or a hook, or a wrapper around it) writes to
 *    stdout and stderr before it exits is the process's output, logged first (the last 1 MiB of
 *    it, should there be more): the monitor reads those pipes while it waits for the runtime, so
 *    they never fill up and block it. With a terminal the runtime's stdout is /dev/null and its
 *    stderr a pipe of its own, likewise read while it runs and used only for its error.
 * 6. `ctl` socket (SOCK_STREAM), lines as conmon's ctl FIFO: `1 <rows> <cols>\n` resizes the
 *    terminal, `2 0 0\n` reopens the log file (kubelet rotation). Each line is answered with
 *    `ok\n` or `error <message>\n`.
 *    `exec-sync <json>\n` (CtlExecSyncRequest: id, dir, timeoutMs; a container's monitor only)
 *    runs `<runtime> exec -d` in the monitor's container with `<dir>/process.json` (the daemon
 *    writes it, and creates the dir), as an exec-sync monitor would, without starting a process
 *    for the monitor: the connection then carries §7 frames, STDOUT and STDERR, and last EXIT
 *    with `{"exitCode":N,"timedOut":bool}` or `{"error":"<the runtime's message>"}`, after which
 *    the monitor closes it. The dir is gone when EXIT is sent. A monitor that predates this
 *    answers `error unknown request …` as text (a first byte that is no frame type).
 *    `exec <json>\n` (CtlExecRequest: id, dir, terminal, stdin; a container's monitor only) is
 *    a streaming exec session the same way: the monitor runs `<runtime> exec -d` (with a
 *    terminal: the pty through the console socket `<dir>/con`) and answers STARTED with
 *    `{"pid":N}`, or EXIT with `{"error":…}`; then the connection is the session, §7 frames both
 *    ways — STDIN, RESIZE, CLOSE_STDIN from the client; STDOUT, STDERR and last EXIT
 *    `{"exitCode":N}` from the monitor. The client closing the connection kills the process and
 *    its descendants. The dir is gone when EXIT is sent.
 *    When the container exits, its monitor waits up to 2 s for the execs it runs (which die with
 *    the container's pid namespace) to send their EXIT before it exits itself.
 * 7. `attach` socket (SOCK_STREAM), frames of [type u8][length u32 big-endian][payload]:
 *    client → monitor: STDIN bytes, RESIZE (rows u16, cols u16, big-endian), CLOSE_STDIN;
 *    monitor → client: STDOUT / STDERR bytes (terminal output is STDOUT), then EXIT with JSON
 *    `{"exitCode":N}` when the process ended (also to a client that connects after that), after
 *    which the monitor shuts down its sending side and closes the connection once the client
 *    closed its own (or after 2 s): the client should close when it has read EXIT.
 *    Output written before a client connects is not replayed, except in exec mode, where the
 *    monitor starts reading the process's output only once the first client is attached.
 *    stdin-once: when the first client that attached leaves (or sends CLOSE_STDIN), the
 *    container's stdin is closed.
 */
import { concatBytes } from "../util/bytes.ts";

/** The longest timeout a monitor accepts (setTimeout's limit); buildArgs clamps to it. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Bumped when this contract changes incompatibly. */
export const PROTOCOL = 1;

/** The fd on which the monitor reports to the daemon. */
export const SYNC_FD = 3;
/** exec-sync: the fds the daemon passes for the process's stdout and stderr. */
export const EXEC_STDOUT_FD = 4;
export const EXEC_STDERR_FD = 5;

/** Longest log record payload; longer lines are split into P pieces (containerd's default). */
export const LOG_LINE_MAX = 16384;
/** ExecSync output cap per stream (CRI-O's maxExecSyncSize). */
export const EXEC_SYNC_OUTPUT_MAX = 16 * 1024 * 1024;
/** Largest attach frame payload accepted. */
export const FRAME_MAX = 1 << 20;

/** What the monitor runs: a container (`runtime create`), or a process in one (`runtime exec`). */
export type MonitorMode = "create" | "exec" | "exec-sync";

/** Everything a monitor needs, as carried on its command line. */
export interface MonitorArgs {
  mode: MonitorMode;
  /** Container id (create) or exec session id (exec modes): names the monitor dir and exit file. */
  id: string;
  /** The container the runtime acts on (equals `id` in create mode). */
  container: string;
  /**
   * The runtime's command prefix (binary and global flags: `--root`, `--systemd-cgroup`), made
   * by the daemon's RuntimeCommand (src/oci/command.ts); the monitor builds its create/exec argv
   * from it with the same builder, so it runs the runtime exactly as the daemon does.
   */
  runtime: string[];
  /** create: the OCI bundle. */
  bundle?: string;
  /** Monitor dir (sockets, pid files), normally `<socketDir>/<id>`. */
  dir: string;
  /** CRI log file (create; optional for exec). */
  logPath?: string;
  /** Where `<id>` and `<id>.oom` are written (create; optional for exec). */
  exitDir?: string;
  terminal: boolean;
  stdin: boolean;
  stdinOnce: boolean;
  /** Log size cap in bytes; 0 or less is unlimited. */
  logSizeMax: number;
  /** Do not fsync the log file on reopen and at the end (the handler's no_sync_log). */
  noSyncLog?: boolean;
  /** exec-sync: kill the process after this many ms; 0 = never. */
  timeoutMs: number;
  /** exec: kill the process when no client attached within this many ms; 0 = wait forever. */
  attachTimeoutMs: number;
  /** Wait for the request on fd 0 (id, container and dir are "" until then; §1). */
  standby?: boolean;
}

/** What a standby exec-sync monitor reads on fd 0: the arguments it started without. */
export interface ExecSyncRequest {
  id: string;
  container: string;
  dir: string;
  timeoutMs: number;
}

/** What a standby exec (session) monitor reads on fd 0. */
export interface ExecSessionRequest {
  id: string;
  container: string;
  dir: string;
  terminal: boolean;
  stdin: boolean;
  /** Kill the process when no client attached within this many ms; 0 = wait forever. */
  attachTimeoutMs: number;
}

/** What a standby create monitor reads on fd 0: the container it is to create and serve. */
export interface CreateRequest {
  /** The container id (also the runtime's name for it). */
  id: string;
  dir: string;
  bundle: string;
  logPath: string;
  terminal: boolean;
  stdin: boolean;
  stdinOnce: boolean;
  logSizeMax: number;
  noSyncLog: boolean;
}

/** One request line for a standby monitor (timeouts clamped as buildArgs does). */
export function encodeExecRequest(r: ExecSyncRequest | ExecSessionRequest | CreateRequest): string {
  const ms = (n: number) => (n > 0 ? Number(msArg(n)) : 0);
  if ("bundle" in r) {
    const { id, dir, bundle, logPath, terminal, stdin, stdinOnce, noSyncLog } = r;
    return JSON.stringify({ id, dir, bundle, logPath, terminal, stdin, stdinOnce, logSizeMax: Math.max(0, Math.trunc(r.logSizeMax)), noSyncLog }) + "\n";
  }
  const { id, container, dir } = r;
  if ("timeoutMs" in r) return JSON.stringify({ id, container, dir, timeoutMs: ms(r.timeoutMs) }) + "\n";
  return JSON.stringify({ id, container, dir, terminal: r.terminal, stdin: r.stdin, attachTimeoutMs: ms(r.attachTimeoutMs) }) + "\n";
}

/** Parses a request line into the standby's full arguments; throws an Error naming what is wrong. */
export function applyExecRequest(a: MonitorArgs, line: string): MonitorArgs {
  if (!a.standby) throw new Error("not a standby monitor");
  const r = JSON.parse(line) as Record<string, unknown>;
  if (a.mode === "create") {
    const id = requireId(r, "id");
    const out: MonitorArgs = {
      ...a,
      standby: false,
      id,
      container: id,
      dir: requireDir(r),
      bundle: requirePath(r, "bundle"),
      logPath: requirePath(r, "logPath"),
      terminal: requireBool(r, "terminal"),
      stdin: requireBool(r, "stdin"),
      stdinOnce: requireBool(r, "stdinOnce"),
      logSizeMax: requireSize(r, "logSizeMax"),
    };
    if (requireBool(r, "noSyncLog")) out.noSyncLog = true;
    return out;
  }
  const out = { ...a, standby: false, id: requireId(r, "id"), container: requireId(r, "container"), dir: requireDir(r) };
  if (a.mode === "exec-sync") return { ...out, timeoutMs: requireMs(r, "timeoutMs") };
  return { ...out, terminal: requireBool(r, "terminal"), stdin: requireBool(r, "stdin"), attachTimeoutMs: requireMs(r, "attachTimeoutMs") };
}

/** Turns MonitorArgs into the argv that follows `crio conmon`. */
export function buildArgs(a: MonitorArgs): string[] {
  const argv = ["--mode", a.mode];
  if (a.standby) argv.push("--standby");
  else argv.push("--id", a.id, "--container", a.container);
  argv.push("--runtime-command", JSON.stringify(a.runtime));
  if (!a.standby) argv.push("--dir", a.dir);
  if (a.bundle !== undefined) argv.push("--bundle", a.bundle);
  if (a.logPath !== undefined) argv.push("--log-path", a.logPath);
  if (a.exitDir !== undefined) argv.push("--exit-dir", a.exitDir);
  if (a.terminal) argv.push("--terminal");
  if (a.stdin) argv.push("--stdin");
  if (a.stdinOnce) argv.push("--stdin-once");
  if (a.logSizeMax > 0) argv.push("--log-size-max", String(a.logSizeMax));
  if (a.noSyncLog) argv.push("--no-sync-log");
  if (a.timeoutMs > 0) argv.push("--timeout-ms", msArg(a.timeoutMs));
  if (a.attachTimeoutMs > 0) argv.push("--attach-timeout-ms", msArg(a.attachTimeoutMs));
  return argv;
}

/** Parses the argv that follows `crio conmon`; throws an Error naming the bad flag. */
export function parseArgs(argv: readonly string[]): MonitorArgs {
  const v = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (BOOLEAN.has(k)) flags.add(k);
    else if (VALUED.has(k)) {
      const val = argv[++i];
      if (val === undefined) throw new Error(`flag ${k} needs a value`);
      v.set(k, val);
    } else throw new Error(`unknown argument ${JSON.stringify(k)}`);
  }
  const need = (k: string) => {
    const x = v.get(k);
    if (!x) throw new Error(`flag ${k} is required`);
    return x;
  };
  const num = (k: string) => {
    const x = v.get(k);
    if (x === undefined) return 0;
    if (!/^-?\d+$/.test(x)) throw new Error(`flag ${k} needs an integer, got ${JSON.stringify(x)}`);
    return Number(x);
  };
  // a timer longer than 2^31-1 ms fires at once (setTimeout's overflow), so refuse one
  const ms = (k: string) => {
    const n = num(k);
    if (n < 0 || n > MAX_TIMER_MS) throw new Error(`flag ${k} needs 0 to ${MAX_TIMER_MS} ms, got ${n}`);
    return n;
  };
  const mode = need("--mode");
  if (mode !== "create" && mode !== "exec" && mode !== "exec-sync") throw new Error(`unknown mode ${JSON.stringify(mode)}`);
  const standby = flags.has("--standby");
  if (standby) {
    const late = {
      "exec-sync": ["--id", "--container", "--dir", "--timeout-ms"],
      exec: ["--id", "--container", "--dir", "--timeout-ms", "--attach-timeout-ms", "--terminal", "--stdin"],
      create: [
        "--id",
        "--container",
        "--dir",
        "--bundle",
        "--log-path",
        "--terminal",
        "--stdin",
        "--stdin-once",
        "--log-size-max",
        "--no-sync-log",
        "--timeout-ms",
        "--attach-timeout-ms",
      ],
    }[mode];
    for (const k of late) if (v.has(k) || flags.has(k)) throw new Error(`a standby monitor gets ${k} in its request`);
    if (mode === "create" && !v.get("--exit-dir")) throw new Error("a standby create monitor needs --exit-dir");
  }
  // a standby monitor learns these from its request (applyExecRequest)
  const id = standby ? "" : need("--id");
  const container = standby ? "" : need("--container");
  if (!standby) for (const x of [id, container]) if (!isValidId(x)) throw new Error(`invalid id ${JSON.stringify(x)}`);
  const a: MonitorArgs = {
    mode,
    id,
    container,
    runtime: runtimeCommand(need("--runtime-command")),
    bundle: v.get("--bundle"),
    dir: standby ? "" : need("--dir"),
    logPath: v.get("--log-path"),
    exitDir: v.get("--exit-dir"),
    terminal: flags.has("--terminal"),
    stdin: flags.has("--stdin"),
    stdinOnce: flags.has("--stdin-once"),
    logSizeMax: num("--log-size-max"),
    timeoutMs: ms("--timeout-ms"),
    attachTimeoutMs: ms("--attach-timeout-ms"),
  };
  if (standby) a.standby = true;
  if (flags.has("--no-sync-log")) a.noSyncLog = true;
  if (mode === "create" && !standby && (!a.bundle || !a.logPath || !a.exitDir)) throw new Error("create mode needs --bundle, --log-path and --exit-dir");
  if (mode === "exec-sync" && a.terminal) throw new Error("exec-sync does not support --terminal");
  return a;
}

/** Ids (container and exec session) name files and sockets: letters, digits, `_` and `-`. */
export function isValidId(id: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/.test(id);
}

/** The files of one monitor dir. */
export function monitorFiles(dir: string) {
  return {
    dir,
    attach: `${dir}/attach`,
    ctl: `${dir}/ctl`,
    pid: `${dir}/pid`,
    monitorPid: `${dir}/monitor.pid`,
    console: `${dir}/con`,
    runtimeLog: `${dir}/runtime.log`,
    diag: `${dir}/monitor.log`,
    process: `${dir}/process.json`,
  };
}

/** A message on SYNC_FD. */
export type SyncMessage = { pid: number } | { error: string } | { exitCode: number; timedOut: boolean };

/** One sync line. */
export function encodeSync(m: SyncMessage): string {
  return JSON.stringify(m) + "\n";
}

/** Parses one sync line; throws on anything that is not a SyncMessage. */
export function parseSync(line: string): SyncMessage {
  const m = JSON.parse(line) as Record<string, unknown>;
  if (typeof m.error === "string") return { error: m.error };
  if (Number.isInteger(m.pid) && (m.pid as number) > 0) return { pid: m.pid as number };
  if (Number.isInteger(m.exitCode)) return { exitCode: m.exitCode as number, timedOut: m.timedOut === true };
  throw new Error(`bad sync message ${JSON.stringify(line.slice(0, 200))}`);
}

/** What an exit file says. `exitedAt` is milliseconds since the epoch. */
export interface ExitRecord {
  exitCode: number;
  exitedAt: number;
  oomKilled: boolean;
}

/** `<exitDir>/<id>`: the decimal exit code. */
export const exitFilePath = (exitDir: string, id: string) => `${exitDir}/${id}`;
/** `<exitDir>/<id>.oom`: present when the OOM killer ended the container. */
export const oomFilePath = (exitDir: string, id: string) => `${exitDir}/${id}.oom`;

/** Parses an exit file's content; undefined when it is not a decimal integer. */
export function parseExitCode(text: string): number | undefined {
  const t = text.trim();
  return /^-?\d+$/.test(t) ? Number(t) : undefined;
}

/** Attach frame types. */
export const Frame = { STDIN: 1, STDOUT: 2, STDERR: 3, RESIZE: 4, CLOSE_STDIN: 5, EXIT: 6, STARTED: 7 } as const;
export type FrameType = (typeof Frame)[keyof typeof Frame];

/** One attach frame. */
export function encodeFrame(type: FrameType, payload: Uint8Array = EMPTY): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, 5);
  return out;
}

/** A RESIZE frame. */
export function encodeResize(rows: number, cols: number): Uint8Array {
  const p = new Uint8Array(4);
  const d = new DataView(p.buffer);
  d.setUint16(0, rows);
  d.setUint16(2, cols);
  return encodeFrame(Frame.RESIZE, p);
}

/** Reads rows and cols from a RESIZE payload. */
export function decodeResize(p: Uint8Array): { rows: number; cols: number } | undefined {
  if (p.length !== 4) return undefined;
  const d = new DataView(p.buffer, p.byteOffset, 4);
  return { rows: d.getUint16(0), cols: d.getUint16(2) };
}

/** Splits a byte stream into frames; throws on a frame larger than FRAME_MAX. */
export class FrameDecoder {
  #buf: Uint8Array = EMPTY;
  /** Feeds bytes; returns the frames completed by them. */
  push(chunk: Uint8Array): Array<{ type: number; payload: Uint8Array }> {
    let buf = this.#buf.length ? concatBytes([this.#buf, chunk]) : chunk;
    const out: Array<{ type: number; payload: Uint8Array }> = [];
    while (buf.length >= 5) {
      const len = new DataView(buf.buffer, buf.byteOffset + 1, 4).getUint32(0);
      if (len > FRAME_MAX) throw new Error(`attach frame of ${len} bytes is too large`);
      if (buf.length < 5 + len) break;
      out.push({ type: buf[0]!, payload: buf.slice(5, 5 + len) });
      buf = buf.subarray(5 + len);
    }
    this.#buf = buf.length ? buf.slice() : EMPTY;
    return out;
  }
}

/** ctl commands (conmon's numbering). */
export const Ctl = { RESIZE: 1, REOPEN_LOG: 2 } as const;

/** One ctl line. */
export function encodeCtl(kind: number, a = 0, b = 0): string {
  return `${kind} ${a} ${b}\n`;
}

/** Parses one ctl line (without its newline). */
export function parseCtl(line: string): { kind: number; a: number; b: number } | undefined {
  const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s*$/.exec(line);
  return m ? { kind: Number(m[1]), a: Number(m[2]), b: Number(m[3]) } : undefined;
}

/** ctl `exec-sync`: what to run (the process is `<dir>/process.json`). */
export interface CtlExecSyncRequest {
  /** The exec's id (names its dir; the runtime does not see it). */
  id: string;
  dir: string;
  /** Kill the process and its descendants after this many ms; 0 = never. */
  timeoutMs: number;
}

export const CTL_EXEC_SYNC = "exec-sync";
export const CTL_EXEC = "exec";

/** ctl `exec`: a streaming session (the process is `<dir>/process.json`). */
export interface CtlExecRequest {
  id: string;
  dir: string;
  terminal: boolean;
  stdin: boolean;
}

/** The ctl line of an exec session request. */
export function encodeCtlExec(r: CtlExecRequest): string {
  return `${CTL_EXEC} ${JSON.stringify({ id: r.id, dir: r.dir, terminal: r.terminal, stdin: r.stdin })}\n`;
}

/** Parses the JSON after `exec `; throws an Error naming what is wrong. */
export function parseCtlExec(json: string): CtlExecRequest {
  const r = JSON.parse(json) as Record<string, unknown>;
  return { id: requireId(r, "id"), dir: requireDir(r), terminal: requireBool(r, "terminal"), stdin: requireBool(r, "stdin") };
}

/** The ctl line of an exec-sync request. */
export function encodeCtlExecSync(r: CtlExecSyncRequest): string {
  return `${CTL_EXEC_SYNC} ${JSON.stringify({ id: r.id, dir: r.dir, timeoutMs: r.timeoutMs > 0 ? Number(msArg(r.timeoutMs)) : 0 })}\n`;
}

/** Parses the JSON after `exec-sync `; throws an Error naming what is wrong. */
export function parseCtlExecSync(json: string): CtlExecSyncRequest {
  const r = JSON.parse(json) as Record<string, unknown>;
  return { id: requireId(r, "id"), dir: requireDir(r), timeoutMs: requireMs(r, "timeoutMs") };
}

/** `r[k]` when it is a valid id; throws naming the field otherwise. */
function requireId(r: Record<string, unknown>, k: string): string {
  const v = r[k];
  if (typeof v !== "string" || !isValidId(v)) throw new Error(`invalid ${k} ${JSON.stringify(v)}`);
  return v;
}

/** `r[k]` when it is a boolean; throws naming the field otherwise. */
function requireBool(r: Record<string, unknown>, k: string): boolean {
  if (typeof r[k] !== "boolean") throw new Error(`invalid ${k} ${JSON.stringify(r[k])}`);
  return r[k];
}

/** `r[k]` when it is a whole number of ms a timer can take (0 to MAX_TIMER_MS); throws otherwise. */
function requireMs(r: Record<string, unknown>, k: string): number {
  const t = r[k];
  if (typeof t !== "number" || !Number.isInteger(t) || t < 0 || t > MAX_TIMER_MS)
    throw new Error(`${k} needs 0 to ${MAX_TIMER_MS} ms, got ${JSON.stringify(t)}`);
  return t;
}

/** `r[k]` when it is an absolute path without `..`; throws naming the field otherwise. */
function requirePath(r: Record<string, unknown>, k: string): string {
  const v = r[k];
  if (typeof v !== "string" || !v.startsWith("/") || v.split("/").includes("..") || v.includes("\0")) throw new Error(`invalid ${k} ${JSON.stringify(v)}`);
  return v;
}

/** `r[k]` when it is a whole number (a size in bytes; 0 or less = unlimited); throws otherwise. */
function requireSize(r: Record<string, unknown>, k: string): number {
  const v = r[k];
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw new Error(`invalid ${k} ${JSON.stringify(v)}`);
  return v;
}

/** `r.dir` when it is an absolute path without `..`; throws otherwise. */
function requireDir(r: Record<string, unknown>): string {
  const v = r.dir;
  if (typeof v !== "string" || !v.startsWith("/") || v.split("/").includes("..")) throw new Error(`invalid dir ${JSON.stringify(v)}`);
  return v;
}

/** The two output streams of a process. */
export type LogStream = "stdout" | "stderr";

/** One parsed CRI log record. */
export interface LogRecord {
  time: string;
  stream: LogStream;
  partial: boolean;
  text: string;
}

/** Parses one CRI log line (without its newline); undefined when malformed. */
export function parseLogLine(line: string): LogRecord | undefined {
  const m = /^(\S+) (stdout|stderr) ([FP]) (.*)$/s.exec(line);
  if (!m) return undefined;
  return { time: m[1]!, stream: m[2] as LogStream, partial: m[3] === "P", text: m[4]! };
}

// --- internal ---

const EMPTY = new Uint8Array(0);
const BOOLEAN = new Set(["--terminal", "--stdin", "--stdin-once", "--standby", "--no-sync-log"]);
const VALUED = new Set([
  "--mode",
  "--id",
  "--container",
  "--runtime-command",
  "--bundle",
  "--dir",
  "--log-path",
  "--exit-dir",
  "--log-size-max",
  "--timeout-ms",
  "--attach-timeout-ms",
]);

/** The value of --runtime-command: a JSON array of strings, the first an absolute path. */
function runtimeCommand(v: string): string[] {
  let a: unknown;
  try {
    a = JSON.parse(v);
  } catch {
    throw new Error(`flag --runtime-command needs a JSON array of strings, got ${JSON.stringify(v)}`);
  }
  if (!Array.isArray(a) || a.length === 0 || a.some((x) => typeof x !== "string" || x === ""))
    throw new Error(`flag --runtime-command needs a JSON array of non-empty strings, got ${JSON.stringify(v)}`);
  if (!(a[0] as string).startsWith("/")) throw new Error(`flag --runtime-command: the runtime must be an absolute path, got ${JSON.stringify(a[0])}`);
  return a as string[];
}

/** A positive timeout as an integer flag value (rounded up, at most MAX_TIMER_MS). */
function msArg(n: number): string {
  return String(Math.min(Math.ceil(n), MAX_TIMER_MS));
}
