import type { Socket, UnixSocketListener } from "bun";
import { unlink } from "../sys/libc.ts";
import { Ctl, CTL_EXEC_SYNC, encodeFrame, Frame, parseCtl, parseCtlExecSync, type CtlExecSyncRequest } from "./protocol.ts";

/** Where an exec-sync run writes its frames (protocol.ts §6, §7). */
export interface FrameSink {
  /** Queues one frame; resolves once the client has taken most of what is queued. */
  send(type: number, payload: Uint8Array): Promise<void>;
  /** Closes the connection after what is queued. */
  end(): void;
}

/** What the control socket can ask for. */
export interface CtlHandlers {
  resize(rows: number, cols: number): void;
  reopenLog(): void;
  /** Runs a process in the container, streaming frames; absent where the monitor has no container. */
  execSync?(r: CtlExecSyncRequest, out: FrameSink): Promise<void>;
}

/**
 * The control socket (protocol.ts §6): conmon's ctl FIFO as a unix SOCK_STREAM socket, so each
 * request gets an answer — `ok` once the log is reopened, or `error <message>` — and, for
 * `exec-sync`, a connection that carries the exec's output frames instead.
 */
export class CtlServer {
  #server: UnixSocketListener<Conn>;

  /** Listens at `path` (an old socket file there is replaced). */
  constructor(
    readonly path: string,
    private readonly h: CtlHandlers,
  ) {
    unlink(path);
    this.#server = Bun.listen<Conn>({
      unix: path,
      socket: {
        open: (s) => void (s.data = { buf: "", exec: undefined }),
        data: (s, d) => this.#data(s, d),
        drain: (s) => this.#drain(s),
        close: (s) => this.#gone(s),
        error: (s) => this.#gone(s),
      },
    });
  }

  /** Closes the listener and removes the socket file (exec-sync runs finish on their own). */
  close(): void {
    this.#server.stop(false);
    unlink(this.path);
  }

  // --- internal ---

  #data(s: Socket<Conn>, d: Uint8Array): void {
    if (s.data.exec) return; // an exec-sync connection: nothing more is read
    s.data.buf += new TextDecoder().decode(d);
    if (s.data.buf.length > 4096) return void s.terminate();
    for (let nl; !s.data.exec && (nl = s.data.buf.indexOf("\n")) >= 0; ) {
      const line = s.data.buf.slice(0, nl);
      s.data.buf = s.data.buf.slice(nl + 1);
      if (line.startsWith(`${CTL_EXEC_SYNC} `) && this.h.execSync) this.#execSync(s, line.slice(CTL_EXEC_SYNC.length + 1));
      else s.write(this.#run(line) + "\n");
    }
  }

  #execSync(s: Socket<Conn>, json: string): void {
    const x: ExecConn = { queue: [], queued: 0, ending: false, gone: false, waiters: [] };
    s.data.exec = x;
    const out: FrameSink = {
      send: (type, payload) => {
        if (x.gone || x.ending) return Promise.resolve();
        this.#write(s, encodeFrame(type as never, payload));
        if (x.queued <= HIGH_WATER) return Promise.resolve();
        return new Promise<void>((r) => x.waiters.push(r));
      },
      end: () => {
        x.ending = true;
        if (x.queued === 0) s.end();
      },
    };
    let req: CtlExecSyncRequest;
    try {
      req = parseCtlExecSync(json);
    } catch (e) {
      void out.send(Frame.EXIT, new TextEncoder().encode(JSON.stringify({ error: `invalid exec-sync request: ${(e as Error).message}` })));
      out.end();
      return;
    }
    void this.h.execSync!(req, out).catch(() => out.end());
  }

  #write(s: Socket<Conn>, frame: Uint8Array): void {
    const x = s.data.exec!;
    if (x.queue.length === 0) {
      const n = s.write(frame);
      if (n >= frame.length) return;
      frame = frame.subarray(Math.max(n, 0));
    }
    x.queue.push(frame);
    x.queued += frame.length;
  }

  #drain(s: Socket<Conn>): void {
    const x = s.data.exec;
    if (!x) return;
    while (x.queue.length) {
      const head = x.queue[0]!;
      const n = s.write(head);
      if (n > 0) x.queued -= n;
      if (n < head.length) {
        if (n > 0) x.queue[0] = head.subarray(n);
        break;
      }
      x.queue.shift();
    }
    if (x.queued <= HIGH_WATER) for (const w of x.waiters.splice(0)) w();
    if (x.queue.length === 0 && x.ending) s.end();
  }

  #gone(s: Socket<Conn>): void {
    const x = s.data?.exec;
    if (!x) return;
    x.gone = true; // the daemon went away: the run goes on, its output is dropped
    x.queue = [];
    x.queued = 0;
    for (const w of x.waiters.splice(0)) w();
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
  queue: Uint8Array[];
  queued: number;
  ending: boolean;
  gone: boolean;
  waiters: Array<() => void>;
}

interface Conn {
  buf: string;
  exec: ExecConn | undefined;
}

/** Output queued for a slow daemon before the exec'd process is slowed down. */
const HIGH_WATER = 256 * 1024;
