/**
 * Test support for the streaming server: an in-process backend that runs local processes and
 * dials local TCP ports, and a fake kube-apiserver that lets the real kubectl reach the server
 * (it answers the pod GET and splices exec/attach/portforward upgrades onto a fresh token URL).
 */
import { spawn } from "node:child_process";
import net from "node:net";
import type { Duplex } from "node:stream";
import type { AttachRequest, ExecRequest, StreamIO, StreamingBackend, StreamingServer, TerminalSize } from "../../src/streaming/index.ts";

/** What the fake backend saw. */
export interface BackendLog {
  execs: ExecRequest[];
  resizes: TerminalSize[];
  aborted: string[];
  forwards: Array<{ podSandboxId: string; port: number }>;
}

/**
 * A backend running `req.cmd` as a local process with pipes (no pty), attach = `cat` of stdin
 * to stdout, and port-forward to 127.0.0.1:port. Resizes and aborts are recorded.
 */
export function localBackend(): StreamingBackend & { log: BackendLog } {
  const log: BackendLog = { execs: [], resizes: [], aborted: [], forwards: [] };
  const run = (argv: string[], io: StreamIO, label: string) =>
    new Promise<number>((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
      child.on("error", reject);
      void (async () => {
        for await (const s of io.resize) log.resizes.push(s);
      })();
      if (io.stdin) io.stdin.pipe(child.stdin);
      else child.stdin.end();
      child.stdin.on("error", () => {});
      if (io.stdout) child.stdout.pipe(io.stdout, { end: false });
      else child.stdout.resume();
      if (io.stderr) child.stderr.pipe(io.stderr, { end: false });
      else child.stderr.resume();
      const onAbort = () => {
        log.aborted.push(label);
        child.kill("SIGKILL");
        child.once("spawn", () => child.kill("SIGKILL")); // an abort can beat the process start
      };
      io.signal.addEventListener("abort", onAbort, { once: true });
      child.on("close", (code, sig) => {
        io.signal.removeEventListener("abort", onAbort);
        resolve(code ?? 128 + (sig === "SIGKILL" ? 9 : 15));
      });
    });
  return {
    log,
    async exec(req: ExecRequest, io: StreamIO) {
      log.execs.push(req);
      return { exitCode: await run(req.cmd, io, `exec:${req.cmd.join(" ")}`) };
    },
    async attach(req: AttachRequest, io: StreamIO) {
      await run(["cat"], io, `attach:${req.containerId}`);
    },
    portForward(podSandboxId: string, port: number, conn: Duplex, signal: AbortSignal) {
      log.forwards.push({ podSandboxId, port });
      return new Promise<void>((resolve, reject) => {
        const sock = net.connect(port, "127.0.0.1");
        sock.on("error", (e) => {
          conn.end();
          reject(e);
        });
        signal.addEventListener(
          "abort",
          () => {
            log.aborted.push(`forward:${podSandboxId}:${port}`);
            sock.destroy();
            resolve();
          },
          { once: true },
        );
        sock.on("connect", () => {
          conn.pipe(sock); // the client stopped sending: half-close the pod connection
          sock.pipe(conn); // the pod closed: end what the client reads
          sock.on("close", () => resolve());
          conn.on("close", () => sock.destroy());
        });
      });
    },
  };
}

/**
 * A fake kube-apiserver on 127.0.0.1 for kubectl: GET of any pod answers a running pod with one
 * container "c"; exec/attach/portforward requests are proxied to a fresh streaming URL.
 */
export async function fakeApiServer(server: StreamingServer): Promise<{ url: string; close(): Promise<void> }> {
  const srv = net.createServer((client) => {
    client.on("error", () => {});
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      client.off("data", onData);
      client.pause();
      const headText = buf.subarray(0, end).toString("latin1");
      const rest = buf.subarray(end + 4);
      const [method, target] = headText.split(" ");
      const u = new URL(target!, "http://x");
      const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)(?:\/(exec|attach|portforward))?$/.exec(u.pathname);
      const json = (body: unknown) => {
        const text = JSON.stringify(body);
        client.end(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
      };
      const DISCOVERY: Record<string, unknown> = {
        "/api": { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: "127.0.0.1" }] },
        "/apis": { kind: "APIGroupList", apiVersion: "v1", groups: [] },
        "/api/v1": {
          kind: "APIResourceList",
          groupVersion: "v1",
          resources: [
            { name: "pods", singularName: "pod", namespaced: true, kind: "Pod", verbs: ["get", "list"], shortNames: ["po"] },
            ...["exec", "attach", "portforward"].map((sub) => ({
              name: `pods/${sub}`,
              singularName: "",
              namespaced: true,
              kind: "PodExecOptions",
              verbs: ["create", "get"],
            })),
          ],
        },
      };
      if (DISCOVERY[u.pathname]) return json(DISCOVERY[u.pathname]);
      if (!m) return client.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      if (!m[3]) {
        return json({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: m[2], namespace: m[1], uid: "u1" },
          spec: { containers: [{ name: "c", image: "busybox" }] },
          status: { phase: "Running" },
        });
      }
      const q = u.searchParams;
      const flag = (k: string) => q.get(k) === "true" || q.get(k) === "1";
      let streamUrl: string;
      if (m[3] === "exec") {
        const tty = flag("tty");
        streamUrl = server.getExecUrl({
          containerId: m[2]!,
          cmd: q.getAll("command"),
          tty,
          stdin: flag("stdin"),
          stdout: flag("stdout"),
          stderr: flag("stderr") && !tty,
        });
      } else if (m[3] === "attach") {
        const tty = flag("tty");
        streamUrl = server.getAttachUrl({ containerId: m[2]!, tty, stdin: flag("stdin"), stdout: flag("stdout"), stderr: flag("stderr") && !tty });
      } else streamUrl = server.getPortForwardUrl({ podSandboxId: m[2]!, ports: q.getAll("ports").map(Number) });
      const su = new URL(streamUrl);
      const upstream = net.connect(Number(su.port), su.hostname, () => {
        const lines = headText.split("\r\n");
        lines[0] = `${method} ${su.pathname}${u.search} HTTP/1.1`;
        upstream.write(lines.join("\r\n") + "\r\n\r\n");
        if (rest.length) upstream.write(rest);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    };
    client.on("data", onData);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => srv.close(() => r())) };
}
