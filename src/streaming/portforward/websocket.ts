/**
 * Port forwarding over WebSocket (the kubelet's portforward/websocket.go): the ports are fixed
 * up front (`?port=80,8080`, also `ports=`, else the CRI request's list); port i gets channel
 * 2i for data (both ways) and 2i+1 for errors. The server starts each of those channels with
 * the port as a little-endian uint16. The connection ends when every forward has ended.
 */
import type { Duplex } from "node:stream";
import { messageOf } from "../../errors.ts";
import type { Logger } from "../../log/index.ts";
import { writeError, type RequestHead } from "../http.ts";
import { ChannelMux, type ChannelKind } from "../websocket/channels.ts";
import { upgradeToWebSocket } from "../websocket/handshake.ts";
import type { StreamingBackend } from "../types.ts";

/** WebSocket subprotocols for port forwarding. */
export const WS_PORTFORWARD_PROTOCOLS: Record<string, { base64: boolean }> = {
  "v4.channel.k8s.io": { base64: false },
  "v4.base64.channel.k8s.io": { base64: true },
  "": { base64: false },
};

/** The ports a WebSocket port-forward URL names (query `port`, or `ports`), or an error text. */
export function portsFromQuery(query: URLSearchParams): number[] | string {
  const values = [...query.getAll("port"), ...query.getAll("ports")];
  const ports: number[] = [];
  for (const v of values) {
    if (v === "") return 'query parameter "port" cannot be empty';
    for (const p of v.split(",")) {
      if (!/^\d{1,5}$/.test(p) || Number(p) > 65535) return `unable to parse "${v}" as a port`;
      if (Number(p) < 1) return `port "${v}" must be > 0`;
      ports.push(Number(p));
    }
  }
  return ports;
}

/** Serves one WebSocket port-forward connection to its end. */
export async function serveWebSocketPortForward(
  socket: Duplex,
  head: RequestHead,
  rest: Buffer,
  podSandboxId: string,
  defaultPorts: number[],
  backend: StreamingBackend,
  o: { idleTimeoutMs: number; log: Logger },
): Promise<void> {
  const fromQuery = portsFromQuery(head.query);
  if (typeof fromQuery === "string") return writeError(socket, 400, fromQuery);
  const ports = fromQuery.length > 0 ? fromQuery : defaultPorts;
  if (ports.length === 0) return writeError(socket, 400, 'query parameter "port" is required');
  const up = upgradeToWebSocket(socket, head, rest, Object.keys(WS_PORTFORWARD_PROTOCOLS), { idleTimeoutMs: o.idleTimeoutMs, log: o.log });
  if (!up) return;
  const { ws, protocol } = up;
  const kinds = ports.flatMap((): ChannelKind[] => ["readwrite", "write"]);
  const mux = new ChannelMux(ws, { base64: WS_PORTFORWARD_PROTOCOLS[protocol]!.base64, streamClose: false, channels: kinds });
  const ac = new AbortController();
  void ws.closed.then(() => ac.abort(new Error("the port forward client disconnected")));
  const prefix = (port: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(port);
    return b;
  };
  try {
    for (const [i, port] of ports.entries()) {
      await mux.send(2 * i, prefix(port));
      await mux.send(2 * i + 1, prefix(port));
    }
  } catch {
    return ws.destroy(); // the client is already gone
  }
  await Promise.allSettled(
    ports.map(async (port, i) => {
      const data = mux.channels[2 * i]!;
      try {
        await backend.portForward(podSandboxId, port, data, ac.signal);
      } catch (e) {
        if (ac.signal.aborted) return;
        o.log.warn("port forward failed", { podSandboxId, port, error: messageOf(e) });
        const msg = `error forwarding port ${port} to pod ${podSandboxId}, uid : ${messageOf(e)}`;
        await mux.send(2 * i + 1, Buffer.from(msg, "utf8")).catch(() => {});
      }
    }),
  );
  if (!ws.isClosed) await ws.close(1000);
}
