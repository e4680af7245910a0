/**
 * Exec/attach over WebSocket (k8s remotecommand websocket.go): fixed channels 0 stdin,
 * 1 stdout, 2 stderr, 3 error, 4 resize. The server first sends an empty message on the lowest
 * channel it writes, so the client knows the session is up. v5 adds the client's stdin close.
 */
import type { Duplex } from "node:stream";
import type { Logger } from "../../log/index.ts";
import type { RequestHead } from "../http.ts";
import { ChannelMux, type ChannelKind } from "../websocket/channels.ts";
import { upgradeToWebSocket } from "../websocket/handshake.ts";
import type { CommandStreams } from "./session.ts";
import type { StreamWants } from "./spdy.ts";
import { encodeStatus } from "./status.ts";

/** WebSocket subprotocols for exec/attach: framing and whether the status is v4 JSON. */
export const WS_COMMAND_PROTOCOLS: Record<string, { base64: boolean; v4: boolean; streamClose: boolean }> = {
  "v5.channel.k8s.io": { base64: false, v4: true, streamClose: true },
  "v4.channel.k8s.io": { base64: false, v4: true, streamClose: false },
  "v4.base64.channel.k8s.io": { base64: true, v4: true, streamClose: false },
  "channel.k8s.io": { base64: false, v4: false, streamClose: false },
  "base64.channel.k8s.io": { base64: true, v4: false, streamClose: false },
  "": { base64: false, v4: false, streamClose: false },
};

const STDIN = 0,
  STDOUT = 1,
  STDERR = 2,
  ERROR = 3,
  RESIZE = 4;

/** Completes the handshake and opens the channels; undefined when the handshake was refused (already answered). */
export async function acceptWebSocketCommand(
  socket: Duplex,
  head: RequestHead,
  rest: Buffer,
  wants: StreamWants,
  o: { idleTimeoutMs: number; log: Logger },
): Promise<CommandStreams | undefined> {
  const up = upgradeToWebSocket(socket, head, rest, Object.keys(WS_COMMAND_PROTOCOLS), { idleTimeoutMs: o.idleTimeoutMs, log: o.log });
  if (!up) return undefined;
  const { ws, protocol } = up;
  const p = WS_COMMAND_PROTOCOLS[protocol]!;
  const kinds: ChannelKind[] = [wants.stdin ? "read" : "ignore", wants.stdout ? "write" : "ignore", wants.stderr ? "write" : "ignore", "write", "read"];
  const mux = new ChannelMux(ws, { base64: p.base64, streamClose: p.streamClose, channels: kinds });
  const first = wants.stdout ? STDOUT : wants.stderr ? STDERR : ERROR;
  await mux.send(first, Buffer.alloc(0)).catch(() => {});
  const ch = mux.channels;
  return {
    stdin: wants.stdin ? ch[STDIN] : undefined,
    stdout: wants.stdout ? ch[STDOUT] : undefined,
    stderr: wants.stderr ? ch[STDERR] : undefined,
    resize: ch[RESIZE],
    writeStatus: async (s) => {
      const data = encodeStatus(s, p.v4);
      if (data) await mux.send(ERROR, data);
    },
    close: async () => {
      await ws.close(1000);
    },
    destroy: () => ws.destroy(),
    closed: ws.closed,
  };
}
