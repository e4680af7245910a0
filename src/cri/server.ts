import { Server, ServerCredentials } from "@grpc/grpc-js";
import { chmod, mkdir, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { claimUnixSocket } from "../sys/unix-socket.ts";
import { log } from "../log/index.ts";
import { ImageService, RuntimeService } from "../gen/runtime/v1/api_pb.ts";
import { bridge, type CallObserver, type Gate } from "./bridge.ts";
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

/** The CRI gRPC server on a unix socket. */
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
  const server = new Server({
    "grpc.max_send_message_length": o.maxSendBytes,
    "grpc.max_receive_message_length": o.maxRecvBytes,
  });
  const rt = bridge(RuntimeService, runtimeService(o.services) as unknown as Record<string, unknown>, o.gate, o.observe);
  const img = bridge(ImageService, imageService(o.services) as unknown as Record<string, unknown>, o.gate, o.observe);
  server.addService(rt.definition, rt.implementation);
  server.addService(img.definition, img.implementation);
  // The socket is served by h2-front.ts, which hands each connection to grpc-js in-process after
  // fixing the :authority older grpc-go clients send (critest v1.26 sends the socket path).
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  const front = await listenH2Front(o.socket, (conn) => injector.injectConnection(conn));
  await chmod(o.socket, 0o660);
  return {
    async stop(graceMs = SHUTDOWN_GRACE_MS) {
      // Connections come from the front, so grpc-js's tryShutdown callback does not wait for
      // them; the front's close does: it resolves once every connection has ended, which each
      // does when its session, told to go away, has finished its calls.
      const closed = front.close();
      server.tryShutdown(() => {});
      rt.shutdown();
      img.shutdown();
      const t = setTimeout(() => {
        log.warn("calls still in flight at shutdown; closing them", { graceMs });
        server.forceShutdown();
        front.destroyConnections();
      }, graceMs);
      await closed;
      clearTimeout(t);
      await unlink(o.socket).catch(() => {});
    },
  };
}
