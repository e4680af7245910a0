// The CRI socket: a unix-socket listener whose connections are handed in-process to the gRPC
// server (cri/grpc-server.ts on cri/h2-connection.ts). Until the HTTP/2 server was our own, this
// front also rewrote the `:authority` older grpc-go clients send (the socket path, which Bun's
// node:http2 refused); our server accepts any authority, so the bytes now go straight to it.

import type { Socket } from "bun";
import { RuntimeError, messageOf } from "../errors.ts";
import { listenUnix } from "../sys/short-path.ts";
import type { H2Connection, Transport } from "./h2-connection.ts";

/** A listening front; see `listenH2Front`. */
export interface H2Front {
  /** Stops accepting connections (open ones stay) and resolves once the last one has closed. */
  close(): Promise<void>;
  /** Drops every open connection. */
  destroyConnections(): void;
}

/**
 * Listens on the unix socket `path` (Bun's native sockets: no node:net stream machinery per
 * chunk) and has `serve` make the HTTP/2 connection of each accepted client. Rejects with
 * RuntimeError("unavailable") when it cannot listen.
 */
export async function listenH2Front(path: string, serve: (t: Transport) => H2Connection): Promise<H2Front> {
  const open = new Set<Socket<Client>>();
  let stopped: (() => void) | undefined;
  const gone = (s: Socket<Client>) => {
    if (!open.delete(s)) return;
    s.data.conn?.closed();
    if (stopped && open.size === 0) stopped();
  };
  let l: ReturnType<typeof listenUnix<Client>>;
  try {
    l = listenUnix<Client>(path, {
      open(s) {
        open.add(s);
        s.data = { out: [], outAt: 0, pending: 0, ending: false, conn: undefined };
        s.data.conn = serve(transport(s));
      },
      data(s, chunk) {
        s.data.conn?.input(chunk);
      },
      drain(s) {
        if (writeOut(s)) s.data.conn?.drained();
      },
      close: gone,
      end: gone,
      error: gone,
    });
  } catch (e) {
    throw new RuntimeError("unavailable", `listen on "${path}": ${messageOf(e)}`, { cause: e });
  }
  return {
    close: () =>
      new Promise<void>((resolve) => {
        l.server.stop(false);
        l.alias.release();
        if (open.size === 0) resolve();
        else stopped = resolve;
      }),
    destroyConnections: () => {
      for (const s of [...open]) {
        s.terminate();
        gone(s);
      }
    },
  };
}

// --- internal ---

interface Client {
  /** Bytes the kernel did not take yet: `out[0]` from `outAt`, then the rest. */
  out: Uint8Array[];
  outAt: number;
  pending: number;
  /** end() was asked while bytes were pending. */
  ending: boolean;
  conn: H2Connection | undefined;
}

function transport(s: Socket<Client>): Transport {
  const c = s.data;
  return {
    write(b) {
      if (c.pending > 0) {
        c.out.push(b);
        c.pending += b.length;
        return;
      }
      const n = s.write(b);
      if (n < 0 || n === b.length) return;
      c.out.push(n === 0 ? b : b.subarray(n));
      c.pending += b.length - n;
    },
    get pending() {
      return c.pending;
    },
    pause: () => s.pause(),
    resume: () => s.resume(),
    end() {
      if (c.pending === 0) s.end();
      else c.ending = true;
    },
    destroy: () => s.terminate(),
  };
}

/** Writes what is pending; true once nothing is. */
function writeOut(s: Socket<Client>): boolean {
  const c = s.data;
  while (c.out.length > 0) {
    const b = c.out[0]!;
    const n = s.write(c.outAt === 0 ? b : b.subarray(c.outAt));
    if (n < 0) return false;
    c.pending -= n;
    c.outAt += n;
    if (c.outAt < b.length) return false;
    c.out.shift();
    c.outAt = 0;
  }
  if (c.ending) s.end();
  return true;
}
