import { chmod, mkdir, readFile, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { renderConfig } from "../config/render.ts";
import type { Config } from "../config/schema.ts";
import type { ContainerService } from "../container/index.ts";
import { RuntimeError, messageOf } from "../errors.ts";
import { removeUnusedSocket } from "../metrics/index.ts";
import type { SandboxService } from "../sandbox/index.ts";
import { rootfsPaths } from "../storage/index.ts";
import { shortSocketPath } from "../sys/short-path.ts";

/**
 * CRI-O's HTTP info API (what `crio status` reads): GET /info, /config and /containers/<id>.
 * CRI-O serves it on its gRPC socket; grpc-js cannot share a socket with HTTP/1, so this one
 * listens on a second unix socket beside it: infoSocketPath(listen), e.g.
 * /var/run/crio/crio.sock → /var/run/crio/crio-info.sock, mode 0660 like the CRI socket.
 */

/** The info socket that belongs to the CRI socket `listen`. */
export function infoSocketPath(listen: string): string {
  return join(dirname(listen), `${basename(listen).replace(/\.sock$/, "")}-info.sock`);
}

/** GET /info: CRI-O's CrioInfo. */
export interface CrioInfo {
  storage_driver: string;
  storage_image: string;
  storage_root: string;
  cgroup_driver: string;
  default_id_mappings: { uids: IdMap[]; gids: IdMap[] };
}

/** One ID mapping range (containers/storage idtools.IDMap as JSON). */
export interface IdMap {
  container_id: number;
  host_id: number;
  size: number;
}

/** GET /containers/<id>: CRI-O's ContainerInfo (created_time in nanoseconds since the epoch). */
export interface ContainerInfo {
  name: string;
  pid: number;
  image: string;
  image_ref: string;
  created_time: bigint;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  crio_annotations: Record<string, string>;
  log_path: string;
  root: string;
  sandbox: string;
  ip_addresses: string[];
}

/** What the API reads, from the running daemon. */
export interface InfoSource {
  config(): Config;
  cgroupDriver(): string;
  containers: Pick<ContainerService, "get">;
  sandboxes: Pick<SandboxService, "find">;
  /** <root>/storage: where writable layers live. */
  storageDir: string;
}

/** The info endpoint while it runs. */
export interface InfoServer {
  readonly socket: string;
  /** Stops listening and removes the socket. */
  stop(): Promise<void>;
}

/** Serves the info API on `socket`; refuses a socket another process answers on. */
export async function serveInfo(socket: string, src: InfoSource): Promise<InfoServer> {
  await mkdir(dirname(socket), { recursive: true, mode: 0o755 });
  await removeUnusedSocket(socket);
  // bound through a short alias of its directory (any path length), held while it serves:
  // stopping the server unlinks the socket through it
  const alias = shortSocketPath(socket);
  let server;
  try {
    server = Bun.serve({ unix: alias.path, fetch: (req) => route(req, src) });
    await chmod(socket, 0o660);
  } catch (e) {
    server?.stop(true);
    alias.release();
    throw e;
  }
  return {
    socket,
    async stop() {
      await server.stop(true);
      alias.release();
      await unlink(socket).catch(() => {});
    },
  };
}

/** CrioInfo from the configuration in effect. */
export function crioInfo(config: Config, cgroupDriver: string): CrioInfo {
  return {
    storage_driver: config.crio.storageDriver || "overlay",
    storage_image: "",
    storage_root: config.crio.root,
    cgroup_driver: cgroupDriver,
    default_id_mappings: { uids: [], gids: [] },
  };
}

/** ContainerInfo of one container (id or unique prefix); not-found otherwise. */
export async function containerInfo(src: InfoSource, id: string): Promise<ContainerInfo> {
  const c = src.containers.get(id);
  const sb = src.sandboxes.find(c.meta.sandboxId);
  const specAnnotations = await readSpecAnnotations(join(c.meta.bundle, "config.json"));
  return {
    name: c.meta.name,
    pid: c.status.pid ?? 0,
    image: c.meta.image.name || c.meta.image.userRequested,
    image_ref: c.meta.image.id,
    created_time: BigInt(Math.trunc(c.meta.createdAt)) * 1_000_000n,
    labels: c.meta.labels,
    annotations: c.meta.annotations,
    crio_annotations: Object.fromEntries(Object.entries(specAnnotations).filter(([k]) => k.startsWith("io.kubernetes.cri-o."))),
    log_path: c.meta.logPath,
    root: rootfsPaths(src.storageDir, c.meta.id).merged,
    sandbox: c.meta.sandboxId,
    ip_addresses: sb?.status.ips ?? [],
  };
}

/** JSON with bigint fields written as plain numbers (nanosecond timestamps do not fit a double). */
export function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `\u0000${x}\u0000` : x)).replace(/"\\u0000(-?\d+)\\u0000"/g, "$1");
}

// --- internal ---

async function route(req: Request, src: InfoSource): Promise<Response> {
  const path = new URL(req.url).pathname;
  if (req.method !== "GET") return text(405, "method not allowed");
  try {
    if (path === "/info") return json(crioInfo(src.config(), src.cgroupDriver()));
    if (path === "/config") return new Response(renderConfig(src.config()), { headers: { "content-type": "application/toml" } });
    const m = /^\/containers\/([^/]+)$/.exec(path);
    if (m) return json(await containerInfo(src, decodeURIComponent(m[1]!)));
    return text(404, `no such endpoint: ${path}`);
  } catch (e) {
    const r = RuntimeError.from(e);
    return text(r.kind === "not-found" ? 404 : r.kind === "invalid-argument" ? 400 : 500, messageOf(e));
  }
}

function json(v: unknown): Response {
  return new Response(toJson(v), { headers: { "content-type": "application/json" } });
}

function text(status: number, body: string): Response {
  return new Response(body + "\n", { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

async function readSpecAnnotations(path: string): Promise<Record<string, string>> {
  try {
    return (JSON.parse(await readFile(path, "utf8")) as { annotations?: Record<string, string> }).annotations ?? {};
  } catch {
    return {}; // a container whose bundle is gone (being removed) still answers with what its record holds
  }
}
