/** Running external programs (runc, crun, CNI plugins, tar, …): the one place that spawns them. */

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
  let p: ReturnType<typeof Bun.spawn>;
  try {
    p = Bun.spawn(argv, {
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
