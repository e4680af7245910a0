// Port forwarding through the streaming server over SPDY and WebSocket to local TCP servers.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { StreamingServer } from "../../src/streaming/index.ts";
import { waitFor } from "../harness.ts";
import { SpdyClient, WsClient, channelData, channelMessage } from "../support/streaming-client.ts";
import { localBackend } from "./streaming-support.ts";

const backend = localBackend();
const server = new StreamingServer({ backend, streamCreationTimeoutMs: 500 });
let echoPort = 0;
let greetPort = 0;
const targets: net.Server[] = [];

beforeAll(async () => {
  await server.start();
  // echo: answers every chunk with "echo:" + chunk and ends when the client ends
  echoPort = await listen((s) => {
    s.on("data", (d: Buffer) => s.write(Buffer.concat([Buffer.from("echo:"), d])));
    s.on("end", () => s.end());
  });
  // greet: says hello, then closes
  greetPort = await listen((s) => s.end("hello from the pod\n"));
});
afterAll(async () => {
  await server.stop();
  for (const t of targets) t.close();
});

describe("SPDY port-forward", () => {
  test.concurrent("several connections at once over one session", async () => {
    const { client, protocol } = await SpdyClient.connect(server.getPortForwardUrl({ podSandboxId: "pod1", ports: [] }), ["portforward.k8s.io"]);
    expect(protocol).toBe("portforward.k8s.io");
    const one = async (i: number) => {
      const h = { port: String(echoPort), requestID: String(i) };
      const error = await client.createStream({ ...h, streamType: "error" });
      error.end(); // client-go never writes on the error stream
      const data = await client.createStream({ ...h, streamType: "data" });
      data.write(`message ${i}`);
      await waitFor(() => data.text() === `echo:message ${i}`, 5000, `echo ${i}`);
      data.end();
      expect((await data.ended).toString()).toBe(`echo:message ${i}`);
      expect((await error.ended).toString()).toBe("");
    };
    await Promise.all([0, 1, 2, 3, 4, 5].map(one));
    expect(backend.log.forwards.filter((f) => f.podSandboxId === "pod1").length).toBe(6);
    await client.close();
  });

  test.concurrent("1 MB each way on one forwarded connection", async () => {
    const { client } = await SpdyClient.connect(server.getPortForwardUrl({ podSandboxId: "pod2", ports: [] }), ["portforward.k8s.io"]);
    const h = { port: String(echoPort), requestID: "0" };
    const error = await client.createStream({ ...h, streamType: "error" });
    const data = await client.createStream({ ...h, streamType: "data" });
    const payload = randomBytes(1 << 20);
    data.write(payload);
    await waitFor(() => Buffer.concat(data.chunks).length >= payload.length + 5, 10_000, "echo");
    data.end();
    const got = await data.ended;
    // the echo server prefixes each chunk it read, so strip those markers
    expect(Buffer.from(got.toString("latin1").replaceAll("echo:", ""), "latin1").equals(payload)).toBe(true);
    await error.ended;
    await client.close();
  });

  test.concurrent("the pod closing the connection ends the data stream", async () => {
    const { client } = await SpdyClient.connect(server.getPortForwardUrl({ podSandboxId: "pod3", ports: [] }), ["portforward.k8s.io"]);
    const h = { port: String(greetPort), requestID: "1" };
    const error = await client.createStream({ ...h, streamType: "error" });
    const data = await client.createStream({ ...h, streamType: "data" });
    data.end();
    expect((await data.ended).toString()).toBe("hello from the pod\n");
    expect((await error.ended).toString()).toBe("");
    await client.close();
  });

  test.concurrent("a refused port is reported on the error stream", async () => {
    const closedPort = await freePort();
    const { client } = await SpdyClient.connect(server.getPortForwardUrl({ podSandboxId: "pod4", ports: [] }), ["portforward.k8s.io"]);
    const h = { port: String(closedPort), requestID: "7" };
    const error = await client.createStream({ ...h, streamType: "error" });
    await client.createStream({ ...h, streamType: "data" });
    expect((await error.ended).toString()).toStartWith(`error forwarding port ${closedPort} to pod pod4, uid : `);
    await client.close();
  });

  test.concurrent("streams without a valid port or type are reset; a lone stream times out", async () => {
    const { client } = await SpdyClient.connect(server.getPortForwardUrl({ podSandboxId: "pod5", ports: [] }), ["portforward.k8s.io"]);
    await expect(client.createStream({ streamType: "data", port: "x" })).rejects.toThrow("reset");
    await expect(client.createStream({ streamType: "data", port: "0" })).rejects.toThrow("reset");
    await expect(client.createStream({ streamType: "bogus", port: "80" })).rejects.toThrow("reset");
    const lone = await client.createStream({ streamType: "error", port: "80", requestID: "9" });
    expect((await lone.ended).toString()).toContain("timed out waiting for streams");
    await client.close();
  });

  test.concurrent("the client hanging up aborts running forwards", async () => {
    const hold = await listen(() => {}); // accepts and never answers
    const { client } = await SpdyClient.connect(server.getPortForwardUrl({ podSandboxId: "pod6", ports: [] }), ["portforward.k8s.io"]);
    const h = { port: String(hold), requestID: "1" };
    await client.createStream({ ...h, streamType: "error" });
    await client.createStream({ ...h, streamType: "data" });
    await waitFor(() => backend.log.forwards.some((f) => f.podSandboxId === "pod6"), 5000, "forward started");
    client.socket.destroy();
    await waitFor(() => backend.log.aborted.includes(`forward:pod6:${hold}`), 5000, "forward aborted");
  });
});

describe("WebSocket port-forward", () => {
  test.concurrent("two ports: port prefixes, then data both ways on each data channel", async () => {
    const url = `${server.getPortForwardUrl({ podSandboxId: "pod7", ports: [] })}?port=${echoPort},${greetPort}`;
    const { ws, protocol } = await WsClient.connect(url, ["v4.channel.k8s.io"]);
    expect(protocol).toBe("v4.channel.k8s.io");
    const prefix = (p: number) => Buffer.from([p & 0xff, p >> 8]);
    // the first message of every channel is its port, little-endian
    await ws.waitFor(() => ws.messages.length >= 4);
    expect(ws.messages.slice(0, 4).map((m) => m.data)).toEqual([
      Buffer.concat([Buffer.from([0]), prefix(echoPort)]),
      Buffer.concat([Buffer.from([1]), prefix(echoPort)]),
      Buffer.concat([Buffer.from([2]), prefix(greetPort)]),
      Buffer.concat([Buffer.from([3]), prefix(greetPort)]),
    ]);
    ws.send(channelMessage(0, "ping"));
    await ws.waitFor(() => channelData(ws.messages).get(0)?.includes("echo:ping"));
    await ws.waitFor(() => channelData(ws.messages).get(2)?.includes("hello from the pod"));
    ws.close();
    await ws.closed;
  });

  test.concurrent("base64 framing, ports from the CRI request", async () => {
    const url = server.getPortForwardUrl({ podSandboxId: "pod8", ports: [greetPort] });
    const { ws } = await WsClient.connect(url, ["v4.base64.channel.k8s.io"]);
    await ws.closed; // the only forward ends when the pod closes, and so does the connection
    const ch = channelData(ws.messages, true);
    expect(ch.get(0)!.subarray(2).toString()).toBe("hello from the pod\n");
    expect(ch.get(1)).toEqual(Buffer.from([greetPort & 0xff, greetPort >> 8]));
  });

  test.concurrent("a URL without ports is refused", async () => {
    const e = await WsClient.connect(server.getPortForwardUrl({ podSandboxId: "pod9", ports: [] }), ["v4.channel.k8s.io"]).catch((e) => e);
    expect({ status: e.result.status, body: e.result.body }).toEqual({ status: 400, body: 'query parameter "port" is required\n' });
  });
});

function listen(onConn: (s: net.Socket) => void): Promise<number> {
  const srv = net.createServer((s) => {
    s.on("error", () => {});
    onConn(s);
  });
  targets.push(srv);
  return new Promise((r) => srv.listen(0, "127.0.0.1", () => r((srv.address() as net.AddressInfo).port)));
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}
