import { rm } from "node:fs/promises";
import { join } from "node:path";
import { Ctl, encodeCtl, monitorFiles } from "../conmon/protocol.ts";
import { RuntimeError } from "../errors.ts";
import { withShortSocketPath } from "../sys/short-path.ts";

/** The attach socket of container (or exec session) `id`. */
export function attachSocketPath(socketDir: string, id: string): string {
  return monitorFiles(join(socketDir, id)).attach;
}

/** Asks the monitor to reopen the container's log file (after the kubelet renamed it). */
export async function reopenLog(socketDir: string, id: string): Promise<void> {
  await ctlRequest(socketDir, id, encodeCtl(Ctl.REOPEN_LOG));
}

/** Resizes the container's terminal. */
export async function resize(socketDir: string, id: string, rows: number, cols: number): Promise<void> {
  await ctlRequest(socketDir, id, encodeCtl(Ctl.RESIZE, rows, cols));
}

/** Removes a monitor's dir (pid files, sockets, logs) once its container is removed. */
export async function removeMonitorDir(socketDir: string, id: string): Promise<void> {
  await rm(join(socketDir, id), { recursive: true, force: true });
}

// --- internal ---

/** Sends one ctl line and waits for `ok` (10 s). Fails precondition when no monitor listens. */
async function ctlRequest(socketDir: string, id: string, line: string, timeoutMs = 10_000): Promise<void> {
  const path = monitorFiles(join(socketDir, id)).ctl;
  let answer = "";
  let settle!: (reply: string | Error) => void;
  const reply = new Promise<string | Error>((r) => (settle = r));
  let sock;
  try {
    // through a short alias of the monitor dir: any runroot depth fits sun_path
    sock = await withShortSocketPath(path, (unix) =>
      Bun.connect({
        unix,
        socket: {
          data: (_s, d) => {
            answer += new TextDecoder().decode(d);
            const nl = answer.indexOf("\n");
            if (nl >= 0) settle(answer.slice(0, nl));
          },
          close: () => settle(new Error("the monitor closed the connection")),
          error: (_s, e) => settle(e),
        },
      }),
    );
  } catch {
    throw new RuntimeError("failed-precondition", `the monitor of "${id}" is not running`);
  }
  try {
    sock.write(line);
    const timer = setTimeout(() => settle(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const r = await reply;
    clearTimeout(timer);
    if (r instanceof Error) throw new RuntimeError("unavailable", `monitor of "${id}": ${r.message}`);
    if (r !== "ok") throw new RuntimeError("internal", `monitor of "${id}": ${r.replace(/^error /, "")}`);
  } finally {
    sock.end();
  }
}
