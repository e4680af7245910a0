/**
 * One exec or attach session, whatever the transport: hand the client's streams to the backend,
 * turn its outcome into the status on the error stream, then end the connection. The client
 * vanishing (or the idle timeout) aborts the backend's signal instead.
 */
import type { Readable, Writable } from "node:stream";
import { messageOf } from "../../errors.ts";
import type { Logger } from "../../log/index.ts";
import { AsyncQueue } from "../async-queue.ts";
import type { AttachRequest, ExecRequest, StreamingBackend, StreamIO, TerminalSize } from "../types.ts";
import { pumpResizeEvents } from "./resize.ts";
import { exitCodeStatus, internalErrorStatus, successStatus, type StreamStatus } from "./status.ts";

/** The client's streams of one session, whichever protocol carried them. */
export interface CommandStreams {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  /** JSON resize messages from the client (tty sessions). */
  resize?: Readable;
  /** Puts the final status on the error stream. */
  writeStatus(s: StreamStatus): Promise<void>;
  /** Ends the connection gracefully once everything is written. */
  close(): Promise<void>;
  /** Drops the connection. */
  destroy(): void;
  /** Resolves when the transport is gone (client hung up, idle timeout, close or destroy). */
  closed: Promise<unknown>;
}

/** The request a token stood for. */
export type CommandRequest = { kind: "exec"; req: ExecRequest } | { kind: "attach"; req: AttachRequest };

/** Runs the session to its end; never throws. */
export async function runCommandSession(backend: StreamingBackend, cmd: CommandRequest, s: CommandStreams, log: Logger): Promise<void> {
  const ac = new AbortController();
  let gone = false;
  void s.closed.then(() => {
    gone = true;
    ac.abort(new Error("the streaming client disconnected"));
  });
  const resize = new AsyncQueue<TerminalSize>();
  if (s.resize) pumpResizeEvents(s.resize, resize);
  const io: StreamIO = { stdin: s.stdin, stdout: s.stdout, stderr: s.stderr, tty: cmd.req.tty, resize, signal: ac.signal };
  const id = cmd.req.containerId;
  let status: StreamStatus;
  try {
    if (cmd.kind === "exec") {
      const { exitCode } = await backend.exec(cmd.req, io);
      status = exitCode === 0 ? successStatus() : exitCodeStatus(exitCode, cmd.req.cmd);
      log.debug("exec session ended", { containerId: id, exitCode });
    } else {
      await backend.attach(cmd.req, io);
      status = successStatus();
      log.debug("attach session ended", { containerId: id });
    }
  } catch (e) {
    const what = cmd.kind === "exec" ? "error executing command in container" : "error attaching to container";
    status = internalErrorStatus(`${what}: ${messageOf(e)}`);
    if (!gone) log.warn(`${cmd.kind} session failed`, { containerId: id, error: messageOf(e) });
  }
  resize.end();
  s.stdin?.destroy();
  if (gone) return s.destroy();
  try {
    // Everything the backend wrote goes out before the status, then the connection ends.
    await Promise.race([Promise.all([endWritable(s.stdout), endWritable(s.stderr)]), s.closed]);
    if (!gone) await s.writeStatus(status);
    await s.close();
  } catch (e) {
    log.debug("ending a streaming session failed", { containerId: id, error: messageOf(e) });
    s.destroy();
  }
}

// --- internal ---

function endWritable(w: Writable | undefined): Promise<void> {
  if (!w || w.writableFinished || w.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    w.once("finish", resolve);
    w.once("close", resolve);
    w.end();
  });
}
