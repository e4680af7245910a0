/**
 * The session protocols of the streaming server — SPDY/3.1 (and its zlib header blocks),
 * WebSocket, remotecommand v1–v5 and port-forward — in one chunk that server.ts imports on the
 * first session: a daemon that never streams does not load or evaluate them.
 */
export { serveSpdyPortForward } from "./portforward/spdy.ts";
export { serveWebSocketPortForward } from "./portforward/websocket.ts";
export { runCommandSession } from "./remotecommand/session.ts";
export { acceptSpdyCommand } from "./remotecommand/spdy.ts";
export { acceptWebSocketCommand } from "./remotecommand/websocket.ts";
