import type { Socket } from "bun";
import { encodeFrame, encodeResize, Frame, FrameDecoder } from "../conmon/protocol.ts";
import { RuntimeError } from "../errors.ts";

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
  const decoder = new FrameDecoder();
  const queue: Uint8Array[] = [];
  let settle!: (code: number | undefined) => void;
  const exit = new Promise<number | undefined>((r) => (settle = r));
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
    sock = await Bun.connect({
      unix: path,
      socket: {
        data: (s, d) => {
          let frames;
          try {
            frames = decoder.push(d);
          } catch {
            return void s.terminate();
          }
          for (const f of frames) {
            if (f.type === Frame.STDOUT) out.stdout?.(f.payload);
            else if (f.type === Frame.STDERR) out.stderr?.(f.payload);
            else if (f.type === Frame.EXIT) settle(exitCodeOf(f.payload));
          }
        },
        drain: flush,
        close: () => settle(undefined),
        error: () => settle(undefined),
      },
    });
  } catch (e) {
    throw new RuntimeError("failed-precondition", `cannot attach: no monitor listens at ${path}`, { cause: e });
  }
  const send = (frame: Uint8Array) => {
    queue.push(frame);
    if (queue.length === 1) flush(sock);
  };
  return {
    stdin: (data) => send(encodeFrame(Frame.STDIN, typeof data === "string" ? new TextEncoder().encode(data) : data)),
    closeStdin: () => send(encodeFrame(Frame.CLOSE_STDIN)),
    resize: (rows, cols) => send(encodeResize(rows, cols)),
    exit,
    close: () => sock.end(),
  };
}

// --- internal ---

function exitCodeOf(payload: Uint8Array): number | undefined {
  try {
    const v = JSON.parse(new TextDecoder().decode(payload)) as { exitCode?: unknown };
    return typeof v.exitCode === "number" ? v.exitCode : undefined;
  } catch {
    return undefined;
  }
}
