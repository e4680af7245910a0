/**
 * Port forwarding over SPDY (`portforward.k8s.io`, the kubelet's portforward/httpstream.go):
 * per forwarded connection the client opens an error stream and a data stream carrying the same
 * `port` and `requestID` headers. Once both are there the backend copies between the data
 * stream and the port; a failure is written to the error stream. One SPDY connection carries
 * any number of these, until the client hangs up.
 */
import type { Duplex } from "node:stream";
import { messageOf } from "../../errors.ts";
import type { Logger } from "../../log/index.ts";
import type { RequestHead } from "../http.ts";
import type { SpdyStream } from "../spdy/stream.ts";
import { upgradeToSpdy } from "../spdy/upgrade.ts";
import type { StreamingBackend } from "../types.ts";

/** The port-forward protocols served over SPDY. */
export const SPDY_PORTFORWARD_PROTOCOLS = ["portforward.k8s.io"] as const;

interface Pair {
  requestId: string;
  data?: SpdyStream;
  error?: SpdyStream;
  timer?: ReturnType<typeof setTimeout>;
}

/** Serves one port-forward connection until the client hangs up (or it idles out). */
export async function serveSpdyPortForward(
  socket: Duplex,
  head: RequestHead,
  rest: Buffer,
  podSandboxId: string,
  backend: StreamingBackend,
  o: { idleTimeoutMs: number; streamCreationTimeoutMs: number; log: Logger },
): Promise<void> {
  const pairs = new Map<string, Pair>();
  const running = new Set<Promise<void>>();
  const ac = new AbortController();

  const forward = async (p: Pair) => {
    const data = p.data!;
    const error = p.error!;
    const port = Number(data.header("port"));
    try {
      await backend.portForward(podSandboxId, port, data, ac.signal);
      data.end();
      error.end();
    } catch (e) {
      if (ac.signal.aborted) return;
      const msg = `error forwarding port ${port} to pod ${podSandboxId}, uid : ${messageOf(e)}`;
      o.log.warn("port forward failed", { podSandboxId, port, error: messageOf(e) });
      error.write(msg, () => {
        data.reset();
        error.reset();
      });
    }
  };

  const onStream = (s: SpdyStream): boolean => {
    const port = s.header("port") ?? "";
    const type = s.header("streamType") ?? "";
    if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
      o.log.warn("port forward stream rejected", { reason: port === "" ? '"port" header is required' : `unable to parse "${port}" as a port` });
      return false;
    }
    if (type !== "error" && type !== "data") {
      o.log.warn("port forward stream rejected", { reason: type === "" ? '"streamType" header is required' : `invalid stream type "${type}"` });
      return false;
    }
    // Old clients send no requestID: the error stream's id names the pair, the data stream follows 2 later.
    const requestId = s.header("requestID") ?? String(type === "error" ? s.id : s.id - 2);
    let p = pairs.get(requestId);
    if (!p) {
      const fresh: Pair = { requestId };
      fresh.timer = setTimeout(() => {
        pairs.delete(requestId);
        o.log.warn("timed out waiting for port forward streams", { requestId });
        fresh.error?.end(`(conn, request=${requestId}) timed out waiting for streams`);
        fresh.data?.reset();
      }, o.streamCreationTimeoutMs);
      pairs.set(requestId, fresh);
      p = fresh;
    }
    if (p[type]) {
      const msg = `error processing stream for request ${requestId}: ${type} stream already assigned`;
      o.log.warn("port forward stream rejected", { reason: msg });
      p.error?.write(msg);
      queueMicrotask(() => s.reset());
      return true;
    }
    p[type] = s;
    if (p.data && p.error) {
      clearTimeout(p.timer);
      pairs.delete(requestId);
      const pair = p;
      // After the reply is queued, so data this side writes follows it.
      queueMicrotask(() => {
        const job = forward(pair).finally(() => running.delete(job));
        running.add(job);
      });
    }
    return true;
  };

  const up = upgradeToSpdy(socket, head, rest, SPDY_PORTFORWARD_PROTOCOLS, { idleTimeoutMs: o.idleTimeoutMs, log: o.log, onStream });
  if (!up) return;
  await up.conn.closed;
  ac.abort(new Error("the port forward client disconnected"));
  for (const p of pairs.values()) clearTimeout(p.timer);
  await Promise.allSettled([...running]);
}
