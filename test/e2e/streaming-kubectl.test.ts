// The real kubectl (client-go: gorilla WebSocket and moby/spdystream) against the streaming
// server, through a fake kube-apiserver that splices its upgrade requests onto fresh tokens.
// Skipped where no kubectl is installed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { StreamingServer } from "../../src/streaming/index.ts";
import { tempDir, waitFor } from "../harness.ts";
import { fakeApiServer, localBackend } from "./streaming-support.ts";

const kubectl = Bun.which("kubectl");
/** kubectl's minor version (1.N), 0 when unknown: WebSocket remote command came in 1.29. */
const kubectlMinor = (() => {
  if (!kubectl) return 0;
  const out = Bun.spawnSync([kubectl, "version", "--client"]).stdout.toString();
  return Number(/v1\.(\d+)/.exec(out)?.[1] ?? 0);
})();
const backend = localBackend();
const server = new StreamingServer({ backend });
const dir = tempDir("crio-kubectl-");
let api: Awaited<ReturnType<typeof fakeApiServer>>;

beforeAll(async () => {
  if (!kubectl) return;
  await server.start();
  api = await fakeApiServer(server);
  writeFileSync(
    join(dir.path, "kubeconfig"),
    `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "${api.url}"}}]\nusers: [{name: u, user: {}}]\n` +
      `contexts: [{name: x, context: {cluster: c, user: u, namespace: default}}]\ncurrent-context: x\n`,
  );
});
afterAll(async () => {
  await api?.close();
  await server.stop();
  dir[Symbol.dispose]();
});

/** Runs kubectl with `env` (e.g. the WebSocket switches) and returns its output and exit code. */
async function run(args: string[], o: { stdin?: string; env?: Record<string, string> } = {}) {
  const p = Bun.spawn([kubectl!, ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir.path, KUBECONFIG: join(dir.path, "kubeconfig"), ...o.env },
    stdin: o.stdin === undefined ? "ignore" : new TextEncoder().encode(o.stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr, code };
}

// Debian's kubernetes-client (1.20) only speaks SPDY: the WebSocket variants need kubectl ≥ 1.29
const transports = [
  ...(kubectlMinor >= 29 ? ([["websocket", { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: "true" }]] as const) : []),
  ["spdy", { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: "false" }],
] as const;
if (kubectl && kubectlMinor < 29) console.warn(`streaming-kubectl: kubectl 1.${kubectlMinor} has no WebSocket remote command; SPDY only`);

describe.skipIf(!kubectl)("kubectl", () => {
  for (const [name, env] of transports) {
    test(`exec over ${name}: output, stderr, exit code`, async () => {
      const r = await run(["exec", "pod", "--", "sh", "-c", "echo out; echo err >&2; exit 3"], { env });
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 3, stdout: "out\n" });
      expect(r.stderr).toContain("err\n");
    }, 30_000);

    test(`exec -i over ${name}: stdin`, async () => {
      const r = await run(["exec", "-i", "pod", "--", "cat"], { env, stdin: "typed in\n" });
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: "typed in\n" });
    }, 30_000);
  }

  test("port-forward (SPDY) carries several connections", async () => {
    const target = net.createServer((s) => s.on("data", (d) => s.end(`pong:${d}`)));
    await new Promise<void>((r) => target.listen(0, "127.0.0.1", r));
    const targetPort = (target.address() as net.AddressInfo).port;
    const p = Bun.spawn([kubectl!, "port-forward", "pod", `:${targetPort}`], {
      env: { PATH: process.env.PATH ?? "", HOME: dir.path, KUBECONFIG: join(dir.path, "kubeconfig"), KUBECTL_PORT_FORWARD_WEBSOCKETS: "false" },
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      let out = "";
      const reader = p.stdout.getReader();
      const local = await waitFor(
        async () => {
          const { value } = await reader.read();
          out += new TextDecoder().decode(value ?? new Uint8Array());
          return /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out)?.[1];
        },
        20_000,
        "kubectl port-forward to listen",
      );
      const ask = (msg: string) =>
        new Promise<string>((resolve, reject) => {
          const c = net.connect(Number(local), "127.0.0.1", () => c.write(msg));
          let got = "";
          c.on("data", (d) => (got += d));
          c.on("end", () => resolve(got));
          c.on("error", reject);
        });
      expect(await Promise.all(["a", "b", "c"].map(ask))).toEqual(["pong:a", "pong:b", "pong:c"]);
    } finally {
      p.kill();
      await p.exited;
      target.close();
    }
  }, 30_000);
});
