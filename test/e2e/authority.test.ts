// The CRI socket accepts clients whatever `:authority` they send: "localhost" (kubelet, grpc-js,
// crictl ≥ 1.30) and the socket path (older grpc-go: crictl and critest v1.26), which Bun's
// node:http2 server reset with PROTOCOL_ERROR; our HTTP/2 server (src/cri/h2-connection.ts)
// takes any authority.
import { describe, expect, test } from "bun:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { existsSync } from "node:fs";
import { VersionRequestSchema, VersionResponseSchema } from "../../src/gen/runtime/v1/api_pb.ts";
import { startDaemon } from "../harness.ts";

const NODE = process.env.NODE_BINARY ?? "/usr/bin/node";
const BIN = process.env.CRIO_CONFORMANCE_BIN ?? "/var/tmp/crio-conformance/bin";
const CRICTL = `${BIN}/crictl`;
const CRITEST = `${BIN}/critest`;

describe("clients with any :authority reach the CRI socket", () => {
  test.concurrent("grpc-js with the default authority (localhost)", async () => {
    await using d = await startDaemon();
    for (let i = 0; i < 20; i++) expect((await d.cri.version({ version: "0.1.0" })).runtimeApiVersion).toBe("v1");
  });

  test.skipIf(!existsSync(NODE)).concurrent("node's http2 client sending the socket path, many requests on one connection", async () => {
    await using d = await startDaemon();
    const frame = grpcFrame(toBinary(VersionRequestSchema, create(VersionRequestSchema, { version: "0.1.0" })));
    const p = Bun.spawn([NODE, "-e", NODE_CLIENT, d.socket, "/var/run/x.sock", frame.toString("hex")], { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    expect({ code, err }).toEqual({ code: 0, err: "" });
    const results = out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { i: number; status: number; grpcStatus: string; body: string });
    expect(results.length).toBe(NODE_REQUESTS);
    for (const r of results) {
      expect([r.i, r.status, r.grpcStatus]).toEqual([r.i, 200, "0"]);
      const body = Buffer.from(r.body, "hex");
      expect(body.readUInt32BE(1)).toBe(body.length - 5);
      expect(fromBinary(VersionResponseSchema, body.subarray(5))).toMatchObject({ runtimeName: "cri-o", runtimeApiVersion: "v1" });
    }
  });

  test.skipIf(!existsSync(CRICTL)).concurrent("crictl v1.26 (grpc-go, sends the socket path)", async () => {
    await using d = await startDaemon();
    const r = await runTool([CRICTL, "--runtime-endpoint", `unix://${d.socket}`, "--timeout", "10s", "version"]);
    expect(r).toMatchObject({ code: 0 });
    expect(r.stdout).toContain("RuntimeName:  cri-o");
    expect(r.stdout).toContain("RuntimeApiVersion:  v1");
    const info = await runTool([CRICTL, "--runtime-endpoint", `unix://${d.socket}`, "--timeout", "10s", "info"]);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout).status.conditions[0]).toMatchObject({ type: "RuntimeReady", status: true });
  });

  // critest's client setup calls ImageFsInfo on the image endpoint before any spec runs.
  test.skipIf(!existsSync(CRITEST)).concurrent("critest v1.26 runs its version spec", async () => {
    await using d = await startDaemon();
    const ep = `unix://${d.socket}`;
    const r = await runTool(
      [CRITEST, "--runtime-endpoint", ep, "--image-endpoint", ep, "--ginkgo.focus", "runtime should return version info", "--ginkgo.no-color"],
      d.dir,
    );
    expect(r.stdout).toContain("1 Passed | 0 Failed");
    expect(r.code).toBe(0);
  });
});

// --- helpers ---

const NODE_REQUESTS = 24;

function grpcFrame(msg: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + msg.length);
  out.writeUInt32BE(msg.length, 1);
  out.set(msg, 5);
  return out;
}

async function runTool(argv: string[], cwd?: string) {
  const p = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe", cwd, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: cwd ?? "/tmp" } });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr, code };
}

// Sequential Version calls, then concurrent ones, on one HTTP/2 connection. Headers vary per
// request and grow (x-pad) so node's HPACK encoder indexes, refers back to and evicts dynamic
// table entries; one request carries a header block larger than a frame (CONTINUATION).
const NODE_CLIENT = `
const http2 = require("node:http2"), net = require("node:net");
const [sock, authority, frameHex] = process.argv.slice(1);
const body = Buffer.from(frameHex, "hex");
const session = http2.connect("http://localhost", { createConnection: () => net.connect(sock) });
session.on("error", (e) => { console.error("session error: " + e.message); process.exit(2); });
function call(i, extra) {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ":method": "POST", ":scheme": "http", ":path": "/runtime.v1.RuntimeService/Version", ":authority": authority,
      "content-type": "application/grpc", te: "trailers", "user-agent": "node-http2-test",
      "x-seq": "seq-" + (i % 5), "x-pad": "p".repeat((i * 397) % 3000), ...extra,
    });
    const chunks = [];
    let status = 0;
    req.on("response", (h) => { status = h[":status"]; });
    req.on("data", (c) => chunks.push(c));
    req.on("trailers", (t) => { req.grpcStatus = t["grpc-status"]; });
    req.on("end", () => resolve({ i, status, grpcStatus: req.grpcStatus, body: Buffer.concat(chunks).toString("hex") }));
    req.on("error", reject);
    req.end(body);
  });
}
(async () => {
  const out = [];
  for (let i = 0; i < 16; i++) out.push(await call(i, i === 7 ? { "x-big": "&".repeat(20000) } : {}));
  out.push(...(await Promise.all([16, 17, 18, 19, 20, 21, 22, 23].map((i) => call(i, {})))));
  for (const r of out) console.log(JSON.stringify(r));
  session.close();
})().catch((e) => { console.error(e.stack); process.exit(1); });
`;
