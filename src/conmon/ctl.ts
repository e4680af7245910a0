import type { Socket, UnixSocketListener } from "bun";
import { unlink } from "../sys/libc.ts";
import { listenUnix, type ShortSocketPath } from "../sys/short-path.ts";
import { concatBytes } from "../util/bytes.ts";
import { SendQueue } from "./io.ts";
import {
  Ctl,
  CTL_EXEC,
  CTL_EXEC_SYNC,
  encodeFrame,
  Frame,
  FrameDecoder,
  parseCtl,
  parseCtlExec,
  parseCtlExecSync,
  type CtlExecRequest,
  type CtlExecSyncRequest,
} from "./protocol.ts";

/** Where an exec-sync run writes its frames (protocol.ts §6, §7). */
export interface FrameSink {
  /** Queues one frame; resolves once the client has taken most of what is queued. */
  send(type: number, payload: Uint8Array): Promise<void>;
  /** Closes the connection after what is queued. */
  end(): void;
}

/** An exec session's connection: frames out, and the client's frames and departure in. */
export interface SessionConn extends FrameSink {
  /** Receives the client's frames (STDIN, RESIZE, CLOSE_STDIN). */
  onFrame(fn: (type: number, payload: Uint8Array) => void): void;
  /** Called once when the client has gone (closed, or the connection failed). */
  onGone(fn: () => void): void;
}

/** What the control socket can ask for. */
export interface CtlHandlers {
  resize(rows: number, cols: number): void;
  reopenLog(): void;
  /** Runs a process in the container, streaming frames; absent where the monitor has no container. */
  execSync?(r: CtlExecSyncRequest, out: FrameSink): Promise<void>;
  /** Runs a streaming exec session in the container; absent where the monitor has no container. */
  exec?(r: CtlExecRequest, conn: SessionConn): Promise<void>;
}

/**
 * The control socket (protocol.ts §6): conmon's ctl FIFO as a unix SOCK_STREAM socket, so each
 * request gets an answer — `ok` once the log is reopened, or `error <message>` — and, for
 * `exec-sync`, a connection that carries the exec's output frames instead.
 */
export class CtlServer {
  #server: UnixSocketListener<Conn>;
  /** The socket's short alias (any runroot depth), held until the listener stops. */
  #alias: ShortSocketPath;

  /** Listens at `path` (an old socket file there is replaced). */
  constructor(
    readonly path: string,
    private readonly h: CtlHandlers,
  ) {
    unlink(path);
    const l = listenUnix<Conn>(path, {
      open: (s) => void (s.data = { raw: EMPTY, exec: undefined }),
      data: (s, d) => this.#data(s, d),
      drain: (s) => this.#drain(s),
      close: (s) => this.#gone(s),
      error: (s) => this.#gone(s),
    });
    this.#server = l.server;
    this.#alias = l.alias;
  }

  /** Closes the listener and removes the socket file (exec-sync runs finish on their own). */
  close(): void {
    this.#server.stop(false); // unlinks the socket through its alias: release the alias after
    this.#alias.release();
    unlink(this.path);
  }

  // --- internal ---

  #data(s: Socket<Conn>, d: Uint8Array): void {
    const x = s.data.exec;
    if (x) return this.#frames(s, x, d); // an exec connection: frames (exec-sync: ignored)
    // bytes, not text: an exec request may be followed at once by the session's binary frames
    s.data.raw = s.data.raw.length ? concatBytes([s.data.raw, d]) : d;
    if (s.data.raw.length > 4096 && s.data.raw.indexOf(10) < 0) return void s.terminate();
    for (let nl; !s.data.exec && (nl = s.data.raw.indexOf(10)) >= 0; ) {
      const line = new TextDecoder().decode(s.data.raw.subarray(0, nl));
      s.data.raw = s.data.raw.subarray(nl + 1);
      if (line.startsWith(`${CTL_EXEC_SYNC} `) && this.h.execSync) this.#execSync(s, line.slice(CTL_EXEC_SYNC.length + 1));
      else if (line.startsWith(`${CTL_EXEC} `) && this.h.exec) this.#exec(s, line.slice(CTL_EXEC.length + 1));
      else s.write(this.#run(line) + "\n");
    }
    const rest = s.data.raw;
    s.data.raw = EMPTY;
    if (s.data.exec && rest.length) this.#frames(s, s.data.exec, rest);
    else if (!s.data.exec) s.data.raw = rest;
  }

  #frames(s: Socket<Conn>, x: ExecConn, d: Uint8Array): void {
    if (!x.decoder) return;
    let frames;
    try {
      frames = x.decoder.push(d);
    } catch {
      return void s.terminate();
    }
    for (const f of frames) x.onFrame?.(f.type, f.payload);
  }

  #exec(s: Socket<Conn>, json: string): void {
    const x = this.#open(s);
    x.decoder = new FrameDecoder();
    const conn: SessionConn = {
      ...this.#sink(s, x),
      onFrame: (fn) => void (x.onFrame = fn),
      onGone: (fn) => void (x.onGone = fn),
    };
    let req: CtlExecRequest;
    try {
      req = parseCtlExec(json);
    } catch (e) {
      return refuse(conn, CTL_EXEC, e);
    }
    void this.h.exec!(req, conn).catch(() => conn.end());
  }

  #open(s: Socket<Conn>): ExecConn {
    const x: ExecConn = { out: new SendQueue(), ending: false, gone: false, waiters: [] };
    s.data.exec = x;
    return x;
  }

  #sink(s: Socket<Conn>, x: ExecConn): FrameSink {
    return {
      send: (type, payload) => {
        if (x.gone || x.ending) return Promise.resolve();
        x.out.write(s, encodeFrame(type as never, payload));
        if (x.out.queued <= HIGH_WATER) return Promise.resolve();
        return new Promise<void>((r) => x.waiters.push(r));
      },
      end: () => {
        x.ending = true;
        if (x.out.queued === 0) s.end();
      },
    };
  }

  #execSync(s: Socket<Conn>, json: string): void {
    const x = this.#open(s);
    const out = this.#sink(s, x);
    let req: CtlExecSyncRequest;
    try {
      req = parseCtlExecSync(json);
    } catch (e) {
      return refuse(out, CTL_EXEC_SYNC, e);
    }
    void this.h.execSync!(req, out).catch(() => out.end());
  }

  #drain(s: Socket<Conn>): void {
    const x = s.data.exec;
    if (!x) return;
    const empty = x.out.flush(s);
    if (x.out.queued <= HIGH_WATER) for (const w of x.waiters.splice(0)) w();
    if (empty && x.ending) s.end();
  }

  #gone(s: Socket<Conn>): void {
    const x = s.data?.exec;
    if (!x || x.gone) return;
    x.gone = true; // the daemon went away: output is dropped (an exec session is ended by its handler)
    x.out.clear();
    for (const w of x.waiters.splice(0)) w();
    x.onGone?.();
  }

  #run(line: string): string {
    const c = parseCtl(line);
    try {
      if (c?.kind === Ctl.RESIZE) this.h.resize(c.a, c.b);
      else if (c?.kind === Ctl.REOPEN_LOG) this.h.reopenLog();
      else return `error unknown request ${JSON.stringify(line.slice(0, 64))}`;
      return "ok";
    } catch (e) {
      return `error ${(e instanceof Error ? e.message : String(e)).replace(/\n/g, " ")}`;
    }
  }
}

// --- internal ---

interface ExecConn {
  out: SendQueue;
  ending: boolean;
  gone: boolean;
  waiters: Array<() => void>;
  /** exec sessions: the client's frames */
  decoder?: FrameDecoder;
  onFrame?: (type: number, payload: Uint8Array) => void;
  onGone?: () => void;
}

interface Conn {
  raw: Uint8Array;
  exec: ExecConn | undefined;
}

const EMPTY = new Uint8Array(0);

/** Answers a malformed exec request with EXIT carrying the error, and ends the connection. */
function refuse(out: FrameSink, what: string, e: unknown): void {
  void out.send(Frame.EXIT, new TextEncoder().encode(JSON.stringify({ error: `invalid ${what} request: ${(e as Error).message}` })));
  out.end();
}

/** Output queued for a slow daemon before the exec'd process is slowed down. */
const HIGH_WATER = 256 * 1024;
