/**
 * The server half of the RFC 6455 opening handshake, with Kubernetes' subprotocol rule
 * (wsstream: the first protocol the client lists that the server speaks wins, and a client
 * that lists none gets protocol "" when the server allows it).
 */
import type { Duplex } from "node:stream";
import { headerList, headerOf, writeError, writeSwitchingProtocols, type RequestHead } from "../http.ts";
import { WebSocketConnection, type WebSocketOptions } from "./connection.ts";
import { acceptKey } from "./frames.ts";

/** Picks the subprotocol: the client's first that `supported` has ("" stands for none asked). */
export function negotiateSubprotocol(requested: string[], supported: readonly string[]): string | undefined {
  const asked = requested.length === 0 ? [""] : requested;
  return asked.find((p) => supported.includes(p));
}

/**
 * Completes the handshake speaking one of `supported`. On a bad request it answers the error
 * itself (405, 400, 403) and returns undefined.
 */
export function upgradeToWebSocket(
  socket: Duplex,
  head: RequestHead,
  rest: Buffer,
  supported: readonly string[],
  o: WebSocketOptions,
): { ws: WebSocketConnection; protocol: string } | undefined {
  if (head.method !== "GET") {
    writeError(socket, 405, "websocket handshake must be a GET");
    return undefined;
  }
  if (headerOf(head, "sec-websocket-version") !== "13") {
    writeError(socket, 400, "unsupported websocket version", [["Sec-WebSocket-Version", "13"]]);
    return undefined;
  }
  const key = headerOf(head, "sec-websocket-key") ?? "";
  if (Buffer.from(key, "base64").length !== 16) {
    writeError(socket, 400, "missing or malformed Sec-WebSocket-Key");
    return undefined;
  }
  const requested = headerList(head, "sec-websocket-protocol");
  const protocol = negotiateSubprotocol(requested, supported);
  if (protocol === undefined) {
    writeError(socket, 403, `requested protocol(s) are not supported: [${requested.join(" ")}]; supports [${supported.join(" ")}]`);
    return undefined;
  }
  const headers: Array<[string, string]> = [
    ["Upgrade", "websocket"],
    ["Connection", "Upgrade"],
    ["Sec-WebSocket-Accept", acceptKey(key)],
  ];
  if (protocol !== "") headers.push(["Sec-WebSocket-Protocol", protocol]);
  writeSwitchingProtocols(socket, headers);
  return { ws: new WebSocketConnection(socket, rest, o), protocol };
}
