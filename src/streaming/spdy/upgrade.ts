/**
 * The SPDY/3.1 upgrade of an HTTP request (k8s httpstream.Handshake plus the SPDY
 * ResponseUpgrader): negotiate X-Stream-Protocol-Version (the client's order wins), check the
 * Upgrade headers, answer 101 and start the session on the raw socket.
 */
import type { Duplex } from "node:stream";
import { headerList, headerOf, isUpgradeRequest, writeError, writeSwitchingProtocols, type RequestHead } from "../http.ts";
import { SpdyConnection, type SpdyConnectionOptions } from "./connection.ts";

/** The protocol version header both sides use. */
export const HEADER_PROTOCOL_VERSION = "X-Stream-Protocol-Version";

/** The first client protocol the server also speaks, or undefined. */
export function negotiateProtocol(client: string[], server: readonly string[]): string | undefined {
  return client.find((p) => server.includes(p));
}

/**
 * Upgrades the request to SPDY/3.1 speaking one of `protocols`. On a bad request it answers
 * the error itself (400/403, with X-Accepted-Stream-Protocol-Versions) and returns undefined.
 */
export function upgradeToSpdy(
  socket: Duplex,
  head: RequestHead,
  rest: Buffer,
  protocols: readonly string[],
  o: SpdyConnectionOptions,
): { conn: SpdyConnection; protocol: string } | undefined {
  const raw = head.headers.get(HEADER_PROTOCOL_VERSION.toLowerCase());
  if (!raw) {
    writeError(socket, 400, `unable to upgrade: header ${HEADER_PROTOCOL_VERSION} does not exist in request with ${head.headers.size} headers`);
    return undefined;
  }
  const client = headerList(head, HEADER_PROTOCOL_VERSION);
  if (client.length === 0) {
    writeError(socket, 400, `unable to upgrade: header ${HEADER_PROTOCOL_VERSION} contains [${raw.join(" ")}], but no valid protocols`);
    return undefined;
  }
  const protocol = negotiateProtocol(client, protocols);
  if (!protocol) {
    writeError(
      socket,
      403,
      `unable to upgrade: unable to negotiate protocol: client supports [${client.join(" ")}], server accepts [${protocols.join(" ")}]`,
      protocols.map((p) => ["X-Accepted-Stream-Protocol-Versions", p] as [string, string]),
    );
    return undefined;
  }
  if (!isUpgradeRequest(head) || !(headerOf(head, "upgrade") ?? "").toLowerCase().includes("spdy/3.1")) {
    writeError(socket, 400, "unable to upgrade: missing upgrade headers in request");
    return undefined;
  }
  writeSwitchingProtocols(socket, [
    ["Connection", "Upgrade"],
    ["Upgrade", "SPDY/3.1"],
    [HEADER_PROTOCOL_VERSION, protocol],
    ["Date", new Date().toUTCString()],
  ]);
  return { conn: new SpdyConnection(socket, rest, o), protocol };
}
