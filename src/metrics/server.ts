import { chmod, mkdir, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { RuntimeError, messageOf } from "../errors.ts";
import { shortSocketPath, type ShortSocketPath } from "../sys/short-path.ts";
import { claimUnixSocket } from "../sys/unix-socket.ts";
import { EXPOSITION_CONTENT_TYPE } from "./registry.ts";

/** Where and how to serve /metrics ([crio.metrics]). */
export interface MetricsServerOptions {
  /** metrics_host; "" means every address, as CRI-O's ":port". */
  host: string;
  /** metrics_port; 0 picks a free port (the chosen one is returned). */
  port: number;
  /** metrics_socket: also serve on this unix socket when set. */
  socket?: string;
  /** metrics_cert and metrics_key: HTTPS on the TCP listener when both are set. */
  cert?: string;
  key?: string;
  /** The exposition text, built per scrape. */
  render(): string;
}

/** The running endpoint. */
export interface MetricsServer {
  /** The TCP port in use. */
  readonly port: number;
  /** "http(s)://host:port/metrics" */
  readonly url: string;
  /** Stops both listeners and removes the unix socket. */
  stop(): Promise<void>;
}

/**
 * Serves GET /metrics on host:port (and on the unix socket when configured). Fails with a
 * RuntimeError naming the address when a listener cannot be created; nothing is left listening then.
 */
export async function serveMetrics(o: MetricsServerOptions): Promise<MetricsServer> {
  const fetch = (req: Request): Response => {
    const path = new URL(req.url).pathname;
    if (path !== "/metrics") return new Response("404 page not found\n", { status: 404 });
    if (req.method !== "GET" && req.method !== "HEAD") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    return new Response(o.render(), { headers: { "content-type": EXPOSITION_CONTENT_TYPE } });
  };
  const tls = o.cert && o.key ? { cert: Bun.file(o.cert), key: Bun.file(o.key) } : undefined;
  const hostname = o.host === "" ? "0.0.0.0" : o.host;
  let tcp: ReturnType<typeof Bun.serve>;
  try {
    tcp = Bun.serve({ hostname, port: o.port, fetch, tls });
  } catch (e) {
    throw new RuntimeError("failed-precondition", `metrics endpoint on ${hostname}:${o.port}: ${messageOf(e)}`, { cause: e });
  }
  let unix: ReturnType<typeof Bun.serve> | undefined;
  // the socket is bound through a short alias of its directory (any path length), held while it
  // serves: stopping the server unlinks the socket through it
  let alias: ShortSocketPath | undefined;
  if (o.socket) {
    try {
      await mkdir(dirname(o.socket), { recursive: true, mode: 0o755 });
      await removeUnusedSocket(o.socket);
      alias = shortSocketPath(o.socket);
      unix = Bun.serve({ unix: alias.path, fetch });
      await chmod(o.socket, 0o660);
    } catch (e) {
      unix?.stop(true);
      alias?.release();
      tcp.stop(true);
      throw new RuntimeError("failed-precondition", `metrics socket "${o.socket}": ${messageOf(e)}`, { cause: e });
    }
  }
  const port = tcp.port ?? o.port;
  const shownHost = hostname.includes(":") ? `[${hostname}]` : hostname;
  return {
    port,
    url: `${tls ? "https" : "http"}://${shownHost}:${port}/metrics`,
    async stop() {
      await Promise.all([tcp.stop(true), unix?.stop(true)]);
      alias?.release();
      if (o.socket) await unlink(o.socket).catch(() => {});
    },
  };
}

/**
 * Removes a socket file no process answers on (a crash left it); refuses a live one or a
 * file that is not a socket. Shared by the metrics and the info endpoints.
 */
export const removeUnusedSocket = (path: string): Promise<void> => claimUnixSocket(path);
