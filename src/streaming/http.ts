/**
 * Just enough HTTP/1.1 for the streaming endpoints: read one request head from a raw socket
 * (the body of these requests is always empty), answer with a plain error, or switch protocols.
 * A raw socket is what both upgrades need after the 101, so no HTTP library sits in between.
 */
import type { Duplex } from "node:stream";

/** A parsed request line and header block. Header names are lower-case. */
export interface RequestHead {
  method: string;
  /** The request target as sent, e.g. `/exec/abc?x=1`. */
  target: string;
  path: string;
  query: URLSearchParams;
  headers: Map<string, string[]>;
}

/** A request that cannot be parsed; `status` is the answer to send. */
export class HttpRequestError extends Error {
  override name = "HttpRequestError";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Status texts of the answers this server gives. */
export const STATUS_TEXT: Record<number, string> = {
  101: "Switching Protocols",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  426: "Upgrade Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/**
 * Reads one request head. Resolves with it and the bytes that followed it; the socket is left
 * paused with no 'data' listener. Rejects with HttpRequestError (400, 408, 431), or a plain
 * Error when the socket closes first.
 */
export function readRequestHead(socket: Duplex, o: { maxBytes: number; timeoutMs: number }): Promise<{ head: RequestHead; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const cleanup = () => {
      clearTimeout(timer);
      socket.pause();
      socket.off("data", onData);
      socket.off("close", onClose);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new HttpRequestError(408, "timed out reading the request"));
    }, o.timeoutMs);
    const onClose = () => {
      cleanup();
      reject(new Error("connection closed before the request was complete"));
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) {
        if (buf.length > o.maxBytes) {
          cleanup();
          reject(new HttpRequestError(431, "request header is too large"));
        }
        return;
      }
      cleanup();
      try {
        resolve({ head: parseRequestHead(buf.subarray(0, end).toString("latin1")), rest: buf.subarray(end + 4) });
      } catch (e) {
        reject(e);
      }
    };
    socket.on("data", onData);
    socket.on("close", onClose);
    socket.resume();
  });
}

/** Parses a request line and headers (without the final blank line). Throws HttpRequestError(400). */
export function parseRequestHead(text: string): RequestHead {
  const lines = text.split("\r\n");
  const m = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(lines[0] ?? "");
  if (!m) throw new HttpRequestError(400, "malformed request line");
  const headers = new Map<string, string[]>();
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    if (i <= 0 || /[\s]/.test(line.slice(0, i))) throw new HttpRequestError(400, "malformed header line");
    const name = line.slice(0, i).toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(i + 1).trim()]);
  }
  let target = m[2]!;
  // A proxy may send the absolute form (RFC 9112 section 3.2.2); only the path and query matter here.
  if (/^https?:\/\//i.test(target)) {
    const u = URL.parse(target);
    if (!u) throw new HttpRequestError(400, "malformed request target");
    target = `${u.pathname}${u.search}`;
  }
  const q = target.indexOf("?");
  let path = q < 0 ? target : target.slice(0, q);
  try {
    path = decodeURIComponent(path);
  } catch {
    throw new HttpRequestError(400, "malformed request path");
  }
  return { method: m[1]!, target, path, query: new URLSearchParams(q < 0 ? "" : target.slice(q + 1)), headers };
}

/** The first value of a header, or undefined. */
export function headerOf(head: RequestHead, name: string): string | undefined {
  return head.headers.get(name.toLowerCase())?.[0];
}

/** Every value of a header, each split at commas and trimmed, empties dropped. */
export function headerList(head: RequestHead, name: string): string[] {
  return (head.headers.get(name.toLowerCase()) ?? [])
    .flatMap((v) => v.split(","))
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** True when some Connection header value contains "upgrade" (httpstream.IsUpgradeRequest). */
export function isUpgradeRequest(head: RequestHead): boolean {
  return (head.headers.get("connection") ?? []).some((v) => v.toLowerCase().includes("upgrade"));
}

/** True for a WebSocket handshake (wsstream.IsWebSocketRequest). */
export function isWebSocketRequest(head: RequestHead): boolean {
  return (headerOf(head, "upgrade") ?? "").toLowerCase() === "websocket" && isUpgradeRequest(head);
}

/** Answers with a plain-text error (as Go's http.Error does) and closes the connection. */
export function writeError(socket: Duplex, status: number, message: string, headers: Array<[string, string]> = []): void {
  const body = Buffer.from(`${message}\n`, "utf8");
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Error"}`,
    "Content-Type: text/plain; charset=utf-8",
    "X-Content-Type-Options: nosniff",
    ...headers.map(([k, v]) => `${k}: ${v}`),
    `Content-Length: ${body.length}`,
    "Connection: close",
    "",
    "",
  ];
  if (socket.destroyed) return;
  socket.end(Buffer.concat([Buffer.from(lines.join("\r\n"), "latin1"), body]));
  setTimeout(() => socket.destroy(), 5000).unref?.();
}

/** Writes a `101 Switching Protocols` head with the given headers. */
export function writeSwitchingProtocols(socket: Duplex, headers: Array<[string, string]>): void {
  const lines = ["HTTP/1.1 101 Switching Protocols", ...headers.map(([k, v]) => `${k}: ${v}`), "", ""];
  socket.write(Buffer.from(lines.join("\r\n"), "latin1"));
}
