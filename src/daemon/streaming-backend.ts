import type { Duplex } from "node:stream";
import { RuntimeError } from "../errors.ts";
import type { Logger } from "../log/index.ts";
import { attach, selfCommand, type AttachConnection } from "../monitor/index.ts";
import type { StreamIO, StreamingBackend } from "../streaming/index.ts";
import { spawn } from "../sys/spawn.ts";
import type { Built } from "./services.ts";

/**
 * The streaming server's backend: exec sessions under an exec monitor, attach to a container's
 * monitor, and port-forward through a `crio nsdial` child inside the pod's network namespace.
 */
export function streamingBackend(b: Built, log: Logger): StreamingBackend {
  const l = log.withTag("streaming");
  return {
    async exec(req, io) {
      const { container: c, process: proc } = await b.containers.execTarget(req.containerId, req.cmd, req.tty);
      const m = b.handlers.get(c.meta.runtimeHandler).monitors;
      // In the container's own monitor when it can (no process started); else a monitor of its own.
      const inMonitor = await m.execSessionInContainer({ containerId: c.meta.id, process: proc, terminal: req.tty, stdin: req.stdin }, sinks(io));
      if (inMonitor) {
        // the client leaving closes the connection (pump), on which the monitor kills the process
        const code = await pump(inMonitor.conn, io, true);
        return { exitCode: code ?? 255 };
      }
      const session = await m.spawnExec({ containerId: c.meta.id, process: proc, terminal: req.tty, stdin: req.stdin });
      // The client going away ends the session: the exec'd process is killed, not left behind.
      const killExec = () => {
        try {
          process.kill(session.pid, "SIGKILL");
        } catch {}
      };
      // the client may have left while the process was being started: an abort then is past
      if (io.signal.aborted) killExec();
      else io.signal.addEventListener("abort", killExec, { once: true });
      try {
        const conn = await attach(session.attachPath, sinks(io)).catch((e: unknown) => {
          killExec(); // nobody will ever read it: do not leave it running until the attach timeout
          throw e;
        });
        const code = await pump(conn, io, true);
        return { exitCode: code ?? 255 };
      } finally {
        io.signal.removeEventListener("abort", killExec);
      }
    },
    async attach(req, io) {
      const c = b.containers.attachTarget(req.containerId);
      const m = b.handlers.get(c.meta.runtimeHandler).monitors;
      await pump(await m.attach(c.meta.id, sinks(io)), io, false);
    },
    async portForward(podSandboxId, port, conn, signal) {
      const { netns } = b.sandboxes.portForwardTarget(podSandboxId);
      if (!netns) {
        // A host-network pod: localhost is the node's own.
        await dialHost(conn, port, signal);
        return;
      }
      await dialInNetns(conn, netns, port, signal, l);
    },
  };
}

// --- internal ---

function sinks(io: StreamIO) {
  return {
    stdout: io.stdout ? (d: Uint8Array) => void io.stdout!.write(d) : undefined,
    stderr: io.stderr ? (d: Uint8Array) => void io.stderr!.write(d) : undefined,
  };
}

/** Moves stdin and resizes to the monitor until the session ends; returns the exit code (exec). */
async function pump(conn: AttachConnection, io: StreamIO, isExec: boolean): Promise<number | undefined> {
  const onAbort = () => conn.close();
  io.signal.addEventListener("abort", onAbort, { once: true });
  void (async () => {
    for await (const r of io.resize) conn.resize(r.height, r.width);
  })().catch(() => {});
  if (io.stdin) {
    io.stdin.on("data", (d: Buffer) => conn.stdin(d));
    io.stdin.on("end", () => conn.closeStdin());
  }
  try {
    const gone = io.signal.aborted
      ? Promise.resolve(undefined)
      : new Promise<undefined>((r) => io.signal.addEventListener("abort", () => r(undefined), { once: true }));
    const code = await Promise.race([conn.exit, gone]);
    return isExec ? code : undefined;
  } finally {
    io.signal.removeEventListener("abort", onAbort);
    conn.close();
  }
}

async function dialHost(conn: Duplex, port: number, signal: AbortSignal): Promise<void> {
  const { connect } = await import("node:net");
  await new Promise<void>((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port });
    s.once("error", (e) => reject(new RuntimeError("unavailable", `failed to connect to localhost:${port}: ${e.message}`)));
    s.once("connect", () => {
      conn.pipe(s);
      s.pipe(conn);
    });
    s.once("close", () => resolve());
    signal.addEventListener("abort", () => s.destroy(), { once: true });
  });
}

async function dialInNetns(conn: Duplex, netns: string, port: number, signal: AbortSignal, l: Logger): Promise<void> {
  const child = spawn([...selfCommand(), "nsdial", netns, String(port)], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const kill = () => child.kill("SIGKILL");
  signal.addEventListener("abort", kill, { once: true });
  conn.on("data", (d: Buffer) => {
    child.stdin.write(d);
    child.stdin.flush();
  });
  conn.on("end", () => void child.stdin.end());
  conn.on("error", kill);
  const out = (async () => {
    for await (const chunk of child.stdout) if (!conn.write(chunk)) await new Promise((r) => conn.once("drain", r));
  })();
  const err = new Response(child.stderr).text();
  const code = await child.exited;
  await out.catch(() => {});
  signal.removeEventListener("abort", kill);
  if (code !== 0 && !signal.aborted) {
    const text = (await err).trim();
    l.debug(`port-forward to ${port} in ${netns} failed: ${text}`);
    throw new RuntimeError("unavailable", text || `port-forward helper exited with ${code}`);
  }
  conn.end();
}
