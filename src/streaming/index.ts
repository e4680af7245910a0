/**
 * The streaming server for CRI Exec, Attach and PortForward: SPDY/3.1 and WebSocket clients
 * (kubectl through the kubelet, crictl) reach the backend through single-use URLs.
 */
export { StreamingServer, type StreamingServerOptions } from "./server.ts";
export type { TlsFiles } from "./tls.ts";
export type { AttachRequest, ExecRequest, PortForwardRequest, StreamIO, StreamingBackend, TerminalSize } from "./types.ts";
