/**
 * The streaming server behind CRI Exec, Attach and PortForward (what k8s.io/cri-streaming is to
 * CRI-O): the CRI call registers its request and gets back `http(s)://ADDR:PORT/exec/TOKEN`
 * (or attach/portforward); the client then upgrades a request to that URL to SPDY/3.1 or
 * WebSocket and the backend runs with the client's streams. Tokens are single-use and expire.
 */
import net from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { RuntimeError, invalid, messageOf } from "../errors.ts";
import { log as rootLog, type Logger } from "../log/index.ts";
import { HttpRequestError, isWebSocketRequest, readRequestHead, writeError, type RequestHead } from "./http.ts";
import type { CommandRequest } from "./remotecommand/session.ts";
import { TlsMaterial, type TlsFiles } from "./tls.ts";
import { TokenCache } from "./tokens.ts";
import type { AttachRequest, ExecRequest, PortForwardRequest, StreamingBackend } from "./types.ts";

/** Options of the streaming server (CRI-O's stream_* settings). */
export interface StreamingServerOptions {
  backend: StreamingBackend;
  /** Address to listen on (stream_address); default (and when empty) 127.0.0.1. */
  address?: string;
  /** Port to listen on (stream_port); 0 picks a free one. */
  port?: number;
  /** Serve HTTPS with these files (reloaded when they change); with `ca`, clients must present a certificate it signed. */
  tls?: TlsFiles;
  /** Oldest TLS version accepted (tls_min_version); default TLSv1.2. */
  minTlsVersion?: "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3";
  /** Close a session after this long without traffic (stream_idle_timeout); default 4 h. */
  idleTimeoutMs?: number;
  /** How long a SPDY client may take to open its streams; default 30 s. */
  streamCreationTimeoutMs?: number;
  /** How long a URL stays valid; default 60 s. */
  tokenTtlMs?: number;
  /** Unused URLs allowed at once; default 1000. */
  maxTokens?: number;
  log?: Logger;
}

/** The HTTP endpoint kinds. */
type Pending = CommandRequest | { kind: "portforward"; req: PortForwardRequest };

/** The streaming server. */
export class StreamingServer {
  readonly #o: Required<Omit<StreamingServerOptions, "tls" | "log" | "minTlsVersion">> & {
    tls?: TlsFiles;
    log: Logger;
    minTlsVersion?: StreamingServerOptions["minTlsVersion"];
  };
  readonly #tokens: TokenCache<Pending>;
  readonly #sockets = new Set<Duplex>();
  readonly #sessions = new Set<Promise<void>>();
  #server?: net.Server | tls.Server;
  #tlsMaterial?: TlsMaterial;
  #lastTlsCheck = 0;
  #url = "";

  constructor(o: StreamingServerOptions) {
    this.#o = {
      address: "127.0.0.1",
      port: 0,
      idleTimeoutMs: 4 * 3600_000,
      streamCreationTimeoutMs: 30_000,
      tokenTtlMs: 60_000,
      maxTokens: 1000,
      ...o,
      log: o.log ?? rootLog.withTag("streaming"),
    };
    if (!this.#o.address) this.#o.address = "127.0.0.1"; // CRI-O's default; an empty host would make unusable URLs
    this.#tokens = new TokenCache({ ttlMs: this.#o.tokenTtlMs, max: this.#o.maxTokens });
  }

  /** The base URL (`http(s)://ADDR:PORT`); empty before start(). */
  get url(): string {
    return this.#url;
  }

  /** Starts listening. Throws RuntimeError when the address is taken or the TLS files are unusable. */
  async start(): Promise<void> {
    if (this.#server) return;
    let server: net.Server | tls.Server;
    if (this.#o.tls) {
      this.#tlsMaterial = new TlsMaterial(this.#o.tls);
      let material;
      try {
        material = this.#tlsMaterial.load();
      } catch (e) {
        throw new RuntimeError("invalid-argument", `streaming server tls: ${messageOf(e)}`, { cause: e });
      }
      server = tls.createServer({ ...material, rejectUnauthorized: material.requestCert, minVersion: this.#o.minTlsVersion ?? "TLSv1.2" }, (s) =>
        this.#accept(s),
      );
      server.on("connection", () => this.#maybeReloadTls());
      server.on("tlsClientError", (e) => this.#o.log.debug("streaming tls handshake failed", { error: e.message }));
    } else server = net.createServer((s) => this.#accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e) =>
        reject(new RuntimeError("unavailable", `streaming server cannot listen on ${this.#o.address}:${this.#o.port}: ${e.message}`, { cause: e })),
      );
      server.listen(this.#o.port, this.#o.address, () => resolve());
    });
    server.on("error", (e) => this.#o.log.error("streaming server error", { error: e.message }));
    this.#server = server;
    const { port } = server.address() as net.AddressInfo;
    const host = net.isIPv6(this.#o.address) ? `[${this.#o.address}]` : this.#o.address;
    this.#url = `${this.#o.tls ? "https" : "http"}://${host}:${port}`;
    this.#o.log.info("streaming server listening", { url: this.#url });
  }

  /** Stops listening, forgets every token and ends every session (their signals abort). */
  async stop(timeoutMs = 5000): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    this.#tokens.clear();
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const s of this.#sockets) s.destroy();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.allSettled([...this.#sessions]), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    await closed;
    this.#url = "";
  }

  /** Registers an Exec request; returns its single-use URL. Throws RuntimeError (invalid-argument, resource-exhausted, unavailable). */
  getExecUrl(req: ExecRequest): string {
    validateStreams(req);
    const r: ExecRequest = { containerId: req.containerId, cmd: [...req.cmd], tty: req.tty, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr };
    if (r.cmd.length === 0) throw invalid("missing required cmd");
    return this.#register({ kind: "exec", req: r });
  }

  /** Registers an Attach request; returns its single-use URL. Throws RuntimeError. */
  getAttachUrl(req: AttachRequest): string {
    validateStreams(req);
    const r: AttachRequest = { containerId: req.containerId, tty: req.tty, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr };
    return this.#register({ kind: "attach", req: r });
  }

  /** Registers a PortForward request; returns its single-use URL. Throws RuntimeError. */
  getPortForwardUrl(req: PortForwardRequest): string {
    if (!req.podSandboxId) throw invalid("missing required pod_sandbox_id");
    for (const p of req.ports) if (!Number.isInteger(p) || p < 1 || p > 65535) throw invalid(`invalid port ${p}`);
    return this.#register({ kind: "portforward", req: { podSandboxId: req.podSandboxId, ports: [...req.ports] } });
  }

  // --- internal ---

  #register(p: Pending): string {
    if (!this.#server) throw new RuntimeError("unavailable", "streaming server is not running");
    return `${this.#url}/${p.kind}/${this.#tokens.insert(p)}`;
  }

  #accept(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.on("close", () => this.#sockets.delete(socket));
    socket.on("error", () => {}); // every user of the socket reports its own failures
    socket.setNoDelay(true);
    readRequestHead(socket, { maxBytes: 16 * 1024, timeoutMs: 30_000 }).then(
      ({ head, rest }) => this.#route(socket, head, rest),
      (e) => {
        if (e instanceof HttpRequestError) writeError(socket, e.status, e.message);
        else socket.destroy();
      },
    );
  }

  #route(socket: Duplex, head: RequestHead, rest: Buffer): void {
    const m = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]+)$/.exec(head.path);
    if (!m) return writeError(socket, 404, "404 page not found");
    if (head.method !== "GET" && head.method !== "POST") return writeError(socket, 405, "405: Method Not Allowed");
    const pending = this.#tokens.consume(m[2]!);
    if (!pending || pending.kind !== m[1]) return writeError(socket, 404, "404 page not found");
    const session = this.#serve(socket, head, rest, pending).catch((e) => {
      this.#o.log.error("streaming session failed", { kind: pending.kind, error: messageOf(e) });
      socket.destroy();
    });
    this.#sessions.add(session);
    void session.finally(() => this.#sessions.delete(session));
  }

  async #serve(socket: Duplex, head: RequestHead, rest: Buffer, p: Pending): Promise<void> {
    const { idleTimeoutMs, streamCreationTimeoutMs, log, backend } = this.#o;
    // the protocols load on the first session (sessions.ts)
    const { serveSpdyPortForward, serveWebSocketPortForward, runCommandSession, acceptSpdyCommand, acceptWebSocketCommand } = await import("./sessions.ts");
    if (socket.destroyed) return; // the client left while they loaded
    const ws = isWebSocketRequest(head);
    log.debug("streaming request", { kind: p.kind, protocol: ws ? "websocket" : "spdy" });
    if (p.kind === "portforward") {
      if (ws) return serveWebSocketPortForward(socket, head, rest, p.req.podSandboxId, p.req.ports, backend, { idleTimeoutMs, log });
      return serveSpdyPortForward(socket, head, rest, p.req.podSandboxId, backend, { idleTimeoutMs, streamCreationTimeoutMs, log });
    }
    const wants = { stdin: p.req.stdin, stdout: p.req.stdout, stderr: p.req.stderr && !p.req.tty, tty: p.req.tty };
    const streams = ws
      ? await acceptWebSocketCommand(socket, head, rest, wants, { idleTimeoutMs, log })
      : await acceptSpdyCommand(socket, head, rest, wants, { idleTimeoutMs, streamCreationTimeoutMs, log });
    if (streams) await runCommandSession(backend, p, streams, log);
  }

  #maybeReloadTls(): void {
    const now = Date.now();
    if (!this.#tlsMaterial || !(this.#server instanceof tls.Server) || now - this.#lastTlsCheck < 1000) return;
    this.#lastTlsCheck = now;
    try {
      const next = this.#tlsMaterial.reloadIfChanged();
      if (!next) return;
      this.#server.setSecureContext(next);
      this.#o.log.info("streaming server tls certificate reloaded", { cert: this.#o.tls?.cert });
    } catch (e) {
      this.#o.log.warn("streaming server tls files unreadable, keeping the previous ones", { error: messageOf(e) });
    }
  }
}

// --- internal ---

function validateStreams(req: { containerId: string; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }): void {
  if (!req.containerId) throw invalid("missing required container_id");
  if (req.tty && req.stderr) throw invalid("tty and stderr cannot both be true");
  if (!req.stdin && !req.stdout && !req.stderr) throw invalid("one of stdin, stdout, or stderr must be set");
}
