// The CRI socket: a unix-socket listener whose connections are handed in-process to the gRPC
// server (cri/grpc-server.ts on cri/h2-connection.ts). Until the HTTP/2 server was our own, this
// front also rewrote the `:authority` older grpc-go clients send (the socket path, which Bun's
// node:http2 refused); our server accepts any authority, so the bytes now go straight to it.

import { createServer, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { RuntimeError, messageOf } from "../errors.ts";
import { shortSocketPath } from "../sys/short-path.ts";

/** A listening front; see `listenH2Front`. */
export interface H2Front {
  /** Stops accepting connections (open ones stay) and resolves when the listener is closed. */
  close(): Promise<void>;
  /** Drops every open connection. */
  destroyConnections(): void;
}

/**
 * Listens on the unix socket `path` and passes each accepted connection to `serve`.
 * Rejects with RuntimeError("unavailable") when it cannot listen.
 */
export async function listenH2Front(path: string, serve: (conn: Duplex) => void): Promise<H2Front> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    open.add(client);
    client.once("close", () => open.delete(client));
    serve(client);
  });
  // bound through a short alias of its directory (any path length), held while the server runs:
  // closing the server unlinks the socket through it
  let alias;
  try {
    alias = shortSocketPath(path);
  } catch (e) {
    throw new RuntimeError("unavailable", `listen on "${path}": ${messageOf(e)}`, { cause: e });
  }
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e) => reject(new RuntimeError("unavailable", `listen on "${path}": ${messageOf(e)}`, { cause: e })));
      server.listen(alias.path, () => resolve());
    });
  } catch (e) {
    alias.release();
    throw e;
  }
  return {
    close: () => new Promise<void>((resolve) => server.close(() => (alias.release(), resolve()))),
    destroyConnections: () => {
      for (const c of open) c.destroy();
    },
  };
}
