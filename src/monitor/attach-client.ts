import type { Socket } from "bun";
import { encodeFrame, encodeResize, Frame, FrameDecoder } from "../conmon/protocol.ts";
import { RuntimeError } from "../errors.ts";
import { withShortSocketPath } from "../sys/short-path.ts";

/** Where a client's output goes. */
export interface AttachOutput {
  stdout?(data: Uint8Array): void;
  stderr?(data: Uint8Array): void;
}

/** A connection to a monitor's attach socket (protocol.ts §7). */
export interface AttachConnection {
  /** Sends bytes to the process's stdin. */
  stdin(data: Uint8Array | string): void;
  /** Says this client's input has ended (closes the process's stdin under stdin-once). */
  closeStdin(): void;
  /** Resizes the process's terminal. */
  resize(rows: number, cols: number): void;
  /** The exit code once the monitor sent EXIT; undefined when the connection ended without it. */
  readonly exit: Promise<number | undefined>;
  /** Detaches. */
  close(): void;
}

/** Attaches to the monitor listening at `path` (attachSocketPath, or spawnExec's attachPath). */
export async function attach(path: string, out: AttachOutput): Promise<AttachConnection> {
  return (await connectFrames(path, out)).conn;
}

/**
 * Opens a streaming exec session in a container's monitor through its ctl socket (`ctl`,
 * protocol.ts §6: `request` is the encodeCtlExec line): the connection once the monitor sent
 * STARTED, with the process's pid; undefined when the monitor predates sessions (it answers a
 * text line) or does not listen. Rejects with the runtime's error when the process could not start.
 */
export async function openSession(ctl: string, request: string, out: AttachOutput): Promise<{ conn: AttachConnection; pid: number } | undefined> {
  const c = await openCtl(ctl, request, out);
  if (!c) return undefined;
  const first = await c.first;
  if (first === "unsupported" || first === undefined) {
    c.conn.close();
    return undefined;
  }
  const v = jsonOf(first.payload);
  if (first.type === Frame.STARTED && typeof v.pid === "number" && v.pid > 0) return { conn: c.conn, pid: v.pid };
  c.conn.close();
  throw new RuntimeError("unknown", typeof v.error === "string" ? v.error : "the monitor did not start the process");
}

/**
 * Sends a ctl request whose answer is §7 frames (protocol.ts §6: exec-sync, exec): output goes
 * to `out`; `first` settles with the first frame, or "unsupported" when the monitor answered a
 * text line (it predates the request); `exitInfo` with the EXIT frame's JSON, or undefined when
 * the connection ended without one. Undefined when no monitor listens at `ctl`.
 */
export async function openCtl(ctl: string, request: string, out: AttachOutput) {
  try {
    return await connectFrames(ctl, out, request);
  } catch {
    return undefined;
  }
}

// --- internal ---

type FirstFrame = { type: number; payload: Uint8Array } | "unsupported" | undefined;

/**
 * Connects to a monitor socket that speaks §7 frames, after sending `preamble` (a ctl request)
 * when given; `first` settles with the first frame, "unsupported" when the first byte is no
 * frame type (a text answer), or undefined when the connection ended before any.
 */
async function connectFrames(path: string, out: AttachOutput, preamble?: string) {
  const decoder = new FrameDecoder();
  let firstSeen = false;
  let settleFirst!: (f: FirstFrame) => void;
  const first = new Promise<FirstFrame>((r) => (settleFirst = r));
  const queue: Uint8Array[] = [];
  let settle!: (info: Record<string, unknown> | undefined) => void;
  const exitInfo = new Promise<Record<string, unknown> | undefined>((r) => (settle = r));
  let sock: Socket<undefined>;
  const flush = (s: Socket<undefined>) => {
    while (queue.length) {
      const n = s.write(queue[0]!);
      if (n < queue[0]!.length) {
        if (n > 0) queue[0] = queue[0]!.subarray(n);
        return;
      }
      queue.shift();
    }
  };
  try {
    // through a short alias of the monitor dir: any runroot depth fits sun_path
    sock = await withShortSocketPath(path, (unix) =>
      Bun.connect({
        unix,
        socket: {
          data: (s, d) => {
            if (!firstSeen && preamble !== undefined && (d[0]! < Frame.STDIN || d[0]! > Frame.STARTED)) {
              firstSeen = true;
              settleFirst("unsupported");
              return void s.end();
            }
            let frames;
            try {
              frames = decoder.push(d);
            } catch {
              return void s.terminate();
            }
            for (const f of frames) {
              if (!firstSeen) {
                firstSeen = true;
                settleFirst(f);
              }
              if (f.type === Frame.STDOUT) out.stdout?.(f.payload);
              else if (f.type === Frame.STDERR) out.stderr?.(f.payload);
              else if (f.type === Frame.EXIT) settle(jsonOf(f.payload));
            }
          },
          drain: flush,
          close: () => (settle(undefined), settleFirst(undefined)),
          error: () => (settle(undefined), settleFirst(undefined)),
        },
      }),
    );
  } catch (e) {
    throw new RuntimeError("failed-precondition", `cannot attach: no monitor listens at ${path}`, { cause: e });
  }
  const send = (frame: Uint8Array) => {
    queue.push(frame);
    if (queue.length === 1) flush(sock);
  };
  if (preamble !== undefined) sock.write(preamble);
  const conn: AttachConnection = {
    stdin: (data) => send(encodeFrame(Frame.STDIN, typeof data === "string" ? new TextEncoder().encode(data) : data)),
    closeStdin: () => send(encodeFrame(Frame.CLOSE_STDIN)),
    resize: (rows, cols) => send(encodeResize(rows, cols)),
    exit: exitInfo.then((v) => (typeof v?.exitCode === "number" ? v.exitCode : undefined)),
    close: () => sock.end(),
  };
  return { conn, first, exitInfo };
}

/** An EXIT frame's JSON object ({} when it is not one). */
function jsonOf(payload: Uint8Array): Record<string, unknown> {
  try {
    const v = JSON.parse(new TextDecoder().decode(payload)) as unknown;
    return v && typeof v === "object" ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
