/** Running external programs (runc, crun, CNI plugins, …) to completion: run() and runRaw(), in-thread or on the spawner thread. */
import { spawn } from "./spawn.ts";

/** A program exited non-zero (or could not start); carries the tail of its stderr. */
export class ExecError extends Error {
  override name = "ExecError";
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly stdout = "",
  ) {
    super(`${argv[0]} ${argv[1] ?? ""}`.trim() + ` failed (exit ${exitCode ?? "?"})${stderr ? `: ${stderr}` : ""}`);
  }
}

export interface RunOptions {
  /** Bytes or text written to the program's stdin, which is then closed. */
  stdin?: string | Uint8Array;
  signal?: AbortSignal;
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Kill the program after this many milliseconds. */
  timeoutMs?: number;
}

/** Runs argv to completion; returns stdout, or throws ExecError with the tail of stderr. */
export async function run(argv: string[], o: RunOptions = {}): Promise<string> {
  const r = await runRaw(argv, o);
  if (r.code !== 0) throw new ExecError(argv, r.code, r.stderr.trim().slice(-4096), r.stdout);
  return r.stdout;
}

/** Runs argv to completion and returns code, stdout and stderr without throwing on a non-zero exit. */
export async function runRaw(argv: string[], o: RunOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  if (offload) return runInWorker(argv, o);
  let p: ReturnType<typeof spawn<Uint8Array | "ignore", "pipe", "pipe">>;
  try {
    p = spawn(argv, {
      stdin: o.stdin !== undefined ? (typeof o.stdin === "string" ? new TextEncoder().encode(o.stdin) : o.stdin) : "ignore",
      stdout: "pipe",
      stderr: "pipe",
      // process.env, not Bun's default (the environment at start-up): the daemon deletes what its
      // children must not see (NOTIFY_SOCKET: `runc start` would set up a notify socket and fail).
      env: (o.env ?? process.env) as Record<string, string>,
      cwd: o.cwd,
      signal: o.signal,
      timeout: o.timeoutMs,
      killSignal: "SIGKILL",
    });
  } catch (e) {
    throw new ExecError(argv, null, e instanceof Error ? e.message : String(e));
  }
  const [stdout, stderr, code] = await Promise.all([
    new Response(p.stdout as ReadableStream).text(),
    new Response(p.stderr as ReadableStream).text(),
    p.exited,
  ]);
  return { code, stdout, stderr };
}

// --- the spawner thread ---------------------------------------------------------------------

/** A program for the spawner thread (exec-worker.ts). */
export interface SpawnJob {
  id: number;
  argv: string[];
  stdin?: Uint8Array;
  env: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
}
/** The spawner thread's answer. */
export type SpawnReply = { id: number; code: number | null; stdout: string; stderr: string } | { id: number; error: string };

/**
 * A blocking syscall for the spawner thread: umount2(2) (an unmount waits for the kernel's RCU
 * grace periods and the namespace lock: ms, tens of ms on a loaded node) and mount(2).
 */
export type Syscall =
  | { sys: "umount2"; target: string; flags: number }
  | { sys: "mount"; source: string; target: string; fstype: string; flags: number; data?: string };
/** A Syscall as posted to the thread, and its answer: the return value and errno (0 when it succeeded). */
export type SyscallJob = Syscall & { id: number };
export type SyscallReply = { id: number; rc: number; errno: number };

/** Idle time after which the spawner thread ends (its memory comes back before the idle daemon settles, ~1.3 s after start); the next program starts it again (a few ms, on its own thread). */
const IDLE_MS = 1_000;

let offload = false;
let worker: Worker | undefined;
let idleTimer: ReturnType<typeof setTimeout> | undefined;
let nextId = 1;
type ProgramResult = { code: number | null; stdout: string; stderr: string };
const pending = new Map<
  number,
  | { argv: string[]; resolve: (r: ProgramResult) => void; reject: (e: unknown) => void }
  | { sys: Syscall; resolve: (r: SyscallReply) => void; reject: (e: unknown) => void }
>();

/**
 * From now on, run programs on a spawner thread (a Worker) instead of this one: spawning blocks
 * its thread until the child has exec'd, which on a busy node stalls the daemon's event loop (and
 * every RPC waiting on it) for ms to tens of ms per program. The daemon turns this on once it
 * serves; tools and tests keep spawning in-thread.
 */
export function offloadSpawns(on = true): void {
  offload = on;
  if (!on) stopWorker();
}

function workerUrl(): string {
  // Compiled, the worker is its own entry point at sys/exec-worker.js in the binary (build.ts).
  return Bun.isStandaloneExecutable ? "/$bunfs/root/sys/exec-worker.js" : new URL("./exec-worker.ts", import.meta.url).href;
}

function startWorker(): Worker {
  const w = new Worker(workerUrl());
  w.onmessage = (e: MessageEvent<SpawnReply | SyscallReply>) => {
    const r = e.data;
    const p = pending.get(r.id);
    if (!p) return;
    pending.delete(r.id);
    if ("sys" in p) p.resolve(r as SyscallReply);
    else if ("error" in r) p.reject(new ExecError(p.argv, null, r.error));
    else p.resolve({ code: (r as ProgramResult).code, stdout: (r as ProgramResult).stdout, stderr: (r as ProgramResult).stderr });
    if (pending.size === 0) idle();
  };
  w.onerror = (e) => {
    // the thread died: fail what it was running; the next program starts a new one
    const err = new ExecError(["spawner thread"], null, e.message || "the spawner thread failed");
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    stopWorker();
  };
  return w;
}

function stopWorker(): void {
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = undefined;
  worker?.terminate();
  worker = undefined;
}

function idle(): void {
  worker?.unref(); // nothing in flight: the thread must not keep the process alive
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    if (pending.size === 0) stopWorker();
  }, IDLE_MS);
  idleTimer.unref();
}

/** The spawner thread, started when needed and kept alive while something is in flight. */
function busyWorker(): Worker {
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = undefined;
  worker ??= startWorker();
  worker.ref();
  return worker;
}

/**
 * Runs a blocking syscall on the spawner thread once the daemon offloads (offloadSpawns): the
 * event loop answering the kubelet does not wait in the kernel. Undefined when not offloading
 * (tools, tests): the caller makes the call on its own thread.
 */
export function syscallOffThread(call: Syscall): Promise<SyscallReply> | undefined {
  if (!offload) return undefined;
  const w = busyWorker();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { sys: call, resolve, reject });
    w.postMessage({ ...call, id } satisfies SyscallJob);
  });
}

function runInWorker(argv: string[], o: RunOptions): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // as spawn() does with a signal already aborted: nothing is started
  if (o.signal?.aborted) return Promise.reject(new ExecError(argv, null, "The operation was aborted"));
  const w = busyWorker();
  const id = nextId++;
  const job: SpawnJob = {
    id,
    argv,
    stdin: o.stdin === undefined ? undefined : typeof o.stdin === "string" ? new TextEncoder().encode(o.stdin) : o.stdin,
    env: Object.fromEntries(Object.entries(o.env ?? process.env).filter((kv): kv is [string, string] => kv[1] !== undefined)),
    cwd: o.cwd,
    timeoutMs: o.timeoutMs,
  };
  return new Promise((resolve, reject) => {
    const onAbort = () => w.postMessage({ kill: id });
    o.signal?.addEventListener("abort", onAbort, { once: true });
    pending.set(id, {
      argv,
      resolve: (r: ProgramResult) => (o.signal?.removeEventListener("abort", onAbort), resolve(r)),
      reject: (e) => (o.signal?.removeEventListener("abort", onAbort), reject(e)),
    });
    w.postMessage(job);
  });
}
