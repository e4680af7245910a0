import { chmod, mkdir, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { claimUnixSocket } from "../sys/unix-socket.ts";
import { log } from "../log/index.ts";
import { ImageService, RuntimeService } from "../gen/runtime/v1/api_codec.ts";
import { bridge, type CallObserver, type Gate } from "./bridge.ts";
import { GrpcServer } from "./grpc-server.ts";
import { listenH2Front } from "./h2-front.ts";
import { imageService } from "./image-service.ts";
import { runtimeService, type Services } from "./runtime-service.ts";

export interface ServeOptions {
  socket: string;
  maxSendBytes: number;
  maxRecvBytes: number;
  services: Services;
  gate: Gate;
  /** Told of every finished call (the metrics' operation counters). */
  observe?: CallObserver;
}

/**
 * How long a stopping daemon lets calls in flight finish (a CreateContainer completes rather than
 * being left half-made) before it cancels them; streams and ExecSync calls are ended at once.
 */
export const SHUTDOWN_GRACE_MS = 5_000;

/** The CRI gRPC server on a unix socket (cri/grpc-server.ts on cri/h2-connection.ts, listening through cri/h2-front.ts). */
export interface CriServer {
  /**
   * Stops accepting, ends every stream (OK; GetContainerEvents included) and answers ExecSync
   * calls UNAVAILABLE at once, lets other calls in flight finish for up to `graceMs`, then
   * cancels them; removes the socket.
   */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Listens on the unix socket: creates its directory, refuses a socket another live daemon
 * answers on, replaces a stale one, and sets mode 0660.
 */
export async function serve(o: ServeOptions): Promise<CriServer> {
  await mkdir(dirname(o.socket), { recursive: true, mode: 0o755 });
  await claimUnixSocket(o.socket, "another daemon");
  const rt = bridge(RuntimeService, runtimeService(o.services) as unknown as Record<string, unknown>, o.gate, o.observe);
  const img = bridge(ImageService, imageService(o.services) as unknown as Record<string, unknown>, o.gate, o.observe);
  const server = new GrpcServer(new Map([...rt.routes, ...img.routes]), {
    maxSendBytes: o.maxSendBytes,
    maxRecvBytes: o.maxRecvBytes,
    onError: (what, e) => log.debug(`CRI connection: ${what} error`, { error: e instanceof Error ? e.message : String(e) }),
  });
  // Each connection accepted on the socket is served by our HTTP/2 server (any :authority: older
  // grpc-go clients, critest v1.26 among them, send the socket path).
  const front = await listenH2Front(o.socket, (t) => server.accept(t));
  await chmod(o.socket, 0o660);
  return {
    async stop(graceMs = SHUTDOWN_GRACE_MS) {
      // The front's close resolves once every connection has ended, which each does when,
      // told to go away (GOAWAY), it has finished its calls.
      const closed = front.close();
      server.close();
      rt.shutdown();
      img.shutdown();
      const t = setTimeout(() => {
        log.warn("calls still in flight at shutdown; closing them", { graceMs });
        server.destroy();
        front.destroyConnections();
      }, graceMs);
      await closed;
      clearTimeout(t);
      await unlink(o.socket).catch(() => {});
    },
  };
}
