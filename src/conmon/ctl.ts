import type { Socket, UnixSocketListener } from "bun";
import { unlink } from "../sys/libc.ts";
import { Ctl, parseCtl } from "./protocol.ts";

/** What the control socket can ask for. */
export interface CtlHandlers {
  resize(rows: number, cols: number): void;
  reopenLog(): void;
}

/**
 * The control socket (protocol.ts §6): conmon's ctl FIFO as a unix SOCK_STREAM socket, so each
 * request gets an answer — `ok` once the log is reopened, or `error <message>`.
 */
export class CtlServer {
  #server: UnixSocketListener<{ buf: string }>;

  /** Listens at `path` (an old socket file there is replaced). */
  constructor(
    readonly path: string,
    private readonly h: CtlHandlers,
  ) {
    unlink(path);
    this.#server = Bun.listen<{ buf: string }>({
      unix: path,
      socket: {
        open: (s) => void (s.data = { buf: "" }),
        data: (s, d) => this.#data(s, d),
      },
    });
  }

  /** Closes the listener and removes the socket file. */
  close(): void {
    this.#server.stop(true);
    unlink(this.path);
  }

  // --- internal ---

  #data(s: Socket<{ buf: string }>, d: Uint8Array): void {
    s.data.buf += new TextDecoder().decode(d);
    if (s.data.buf.length > 4096) return void s.terminate();
    for (let nl; (nl = s.data.buf.indexOf("\n")) >= 0; ) {
      const line = s.data.buf.slice(0, nl);
      s.data.buf = s.data.buf.slice(nl + 1);
      s.write(this.#run(line) + "\n");
    }
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
