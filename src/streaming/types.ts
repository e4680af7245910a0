/**
 * The contract between the streaming server and the runtime behind it. The CRI handlers
 * register requests (getExecUrl, …) and the server, once a client connects to the returned URL
 * and the streams are up, calls the backend with the client's streams.
 */
import type { Duplex, Readable, Writable } from "node:stream";

/** A terminal size as the client reports it. */
export interface TerminalSize {
  width: number;
  height: number;
}

/** An Exec request as CRI gives it (runtime.v1.ExecRequest, plain). */
export interface ExecRequest {
  containerId: string;
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

/** An Attach request as CRI gives it (runtime.v1.AttachRequest, plain). */
export interface AttachRequest {
  containerId: string;
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

/** A PortForward request as CRI gives it (runtime.v1.PortForwardRequest, plain). */
export interface PortForwardRequest {
  podSandboxId: string;
  /** Ports the WebSocket flavour forwards when the URL names none (SPDY clients name theirs per stream). */
  ports: number[];
}

/**
 * The client's side of an exec or attach session. Streams exist only when the request asked
 * for them (and stderr never with a tty). Ending stdout/stderr is optional: the server ends
 * them after the backend returns. None of them emits 'error' events that need handling.
 */
export interface StreamIO {
  /** What the client types; ends when the client closes its stdin. */
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  tty: boolean;
  /** Terminal sizes, in order (the first arrives right after the streams are up); ends with the session. */
  resize: AsyncIterable<TerminalSize>;
  /** Aborted when the client vanishes, the connection idles out or the server stops: kill and clean up. */
  signal: AbortSignal;
}

/** What the streaming server needs from the runtime. */
export interface StreamingBackend {
  /** Runs `req.cmd` in the container with the client's streams; resolves with its exit code. */
  exec(req: ExecRequest, io: StreamIO): Promise<{ exitCode: number }>;
  /** Attaches the client's streams to the container's main process until either side ends. */
  attach(req: AttachRequest, io: StreamIO): Promise<void>;
  /**
   * Copies bytes between `conn` and `port` inside the pod's network namespace. When conn's
   * readable side ends (the client stopped sending; SPDY only), half-close the pod connection
   * and keep passing on what the pod sends; when the pod closes, end conn and resolve. A
   * rejection (e.g. connection refused) is reported to the client on the error stream.
   * `signal` aborts when the client connection goes away: close the pod connection and return.
   */
  portForward(podSandboxId: string, port: number, conn: Duplex, signal: AbortSignal): Promise<void>;
}
