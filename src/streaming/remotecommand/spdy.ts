/**
 * Exec/attach over SPDY (k8s remotecommand httpstream.go): after the upgrade the client opens
 * one stream per channel, told apart by the `streamType` header (error, stdin, stdout, stderr,
 * and resize from v3 on); the session starts once every expected stream got its reply.
 */
import type { Duplex } from "node:stream";
import type { Logger } from "../../log/index.ts";
import type { RequestHead } from "../http.ts";
import type { SpdyStream } from "../spdy/stream.ts";
import { upgradeToSpdy } from "../spdy/upgrade.ts";
import type { CommandStreams } from "./session.ts";
import { encodeStatus } from "./status.ts";

/** The remotecommand protocols served over SPDY, in the kubelet's order. */
export const SPDY_COMMAND_PROTOCOLS = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"] as const;

/** Which streams the request asked for. */
export interface StreamWants {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** Upgrades to SPDY and waits for the client's streams; undefined when that failed (already answered or dropped). */
export async function acceptSpdyCommand(
  socket: Duplex,
  head: RequestHead,
  rest: Buffer,
  wants: StreamWants,
  o: { idleTimeoutMs: number; streamCreationTimeoutMs: number; log: Logger },
): Promise<CommandStreams | undefined> {
  const got: Partial<Record<"error" | "stdin" | "stdout" | "stderr" | "resize", SpdyStream>> = {};
  let counted = 0;
  let version = 0;
  let expected = Infinity;
  let ready!: () => void;
  const allThere = new Promise<void>((r) => (ready = r));
  const onStream = (s: SpdyStream): boolean => {
    const type = s.header("streamType") ?? "";
    if (type === "error" || type === "stdin" || type === "stdout" || type === "stderr" || (type === "resize" && version >= 3)) {
      got[type] = s;
      if (++counted >= expected) ready();
    } else o.log.warn("unexpected spdy stream type", { streamType: type });
    return true; // the kubelet replies to every stream, even one it will not use
  };
  const up = upgradeToSpdy(socket, head, rest, SPDY_COMMAND_PROTOCOLS, { idleTimeoutMs: o.idleTimeoutMs, log: o.log, onStream });
  if (!up) return undefined;
  const { conn, protocol } = up;
  version = protocol === "channel.k8s.io" ? 1 : Number(protocol[1]);
  expected = 1 + Number(wants.stdin) + Number(wants.stdout) + Number(wants.stderr) + Number(wants.tty && version >= 3);
  if (counted >= expected) ready();

  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    allThere.then(() => "ready" as const),
    conn.closed.then(() => "closed" as const),
    new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), o.streamCreationTimeoutMs))),
  ]);
  clearTimeout(timer);
  if (outcome !== "ready") {
    if (outcome === "timeout") o.log.warn("timed out waiting for client to create streams", { protocol });
    conn.destroy();
    return undefined;
  }
  const errorStream = got.error;
  if (version === 1) {
    // What 1.0 kubelets did, kept by every kubelet since: close this side of stdin, reset the error stream.
    got.stdin?.end();
    errorStream?.reset();
  }
  return {
    stdin: got.stdin,
    stdout: got.stdout,
    stderr: got.stderr,
    resize: got.resize,
    writeStatus: async (s) => {
      const data = encodeStatus(s, version >= 4);
      if (!data || !errorStream || errorStream.localFinished) return;
      await new Promise<void>((resolve) => errorStream.write(data, () => resolve()));
      await new Promise<void>((resolve) => errorStream.end(resolve));
    },
    close: () => conn.close(),
    destroy: () => conn.destroy(),
    closed: conn.closed,
  };
}
