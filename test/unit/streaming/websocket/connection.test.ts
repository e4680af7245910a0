// The server side of a WebSocket over a real loopback socket pair.
import { afterEach, expect, test } from "bun:test";
import net from "node:net";
import { log } from "../../../../src/log/index.ts";
import { WebSocketConnection } from "../../../../src/streaming/websocket/connection.ts";
import { Opcode, WsFrameParser, closePayload, encodeFrame, parseClosePayload, type WsFrame } from "../../../../src/streaming/websocket/frames.ts";

const mask = Buffer.from([9, 8, 7, 6]);
const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

/** A server-side WebSocketConnection and the raw client socket talking to it. */
async function pair(o: { maxMessageBytes?: number } = {}) {
  let ws!: WebSocketConnection;
  const accepted = new Promise<void>((r) => {
    const srv = net.createServer((s) => {
      ws = new WebSocketConnection(s, Buffer.alloc(0), { idleTimeoutMs: 0, log, lingerMs: 200, ...o });
      r();
    });
    srv.listen(0, "127.0.0.1", () => {
      client = net.connect((srv.address() as net.AddressInfo).port, "127.0.0.1");
      client.on("data", (c: Buffer) => frames.push(...parser.push(c)));
      client.on("error", () => {});
    });
    cleanup.push(() => srv.close());
  });
  let client!: net.Socket;
  const frames: WsFrame[] = [];
  const parser = new WsFrameParser({ requireMask: false, maxPayload: 1 << 20 });
  await accepted;
  cleanup.push(() => client.destroy());
  const messages: Array<[string, boolean]> = [];
  ws.on("message", (d: Buffer, binary: boolean) => messages.push([d.toString(), binary]));
  return { ws, client, frames, messages };
}

async function until(f: () => boolean) {
  for (let i = 0; i < 2000 && !f(); i++) await Bun.sleep(5); // up to 10 s: a loaded machine
  expect(f()).toBe(true);
}

test("fragmented messages are reassembled, with pings answered in between", async () => {
  const { client, frames, messages } = await pair();
  client.write(encodeFrame(Opcode.TEXT, Buffer.from("hel"), { fin: false, mask }));
  client.write(encodeFrame(Opcode.PING, Buffer.from("p1"), { mask }));
  client.write(encodeFrame(Opcode.CONTINUATION, Buffer.from("lo"), { fin: false, mask }));
  client.write(encodeFrame(Opcode.CONTINUATION, Buffer.from("!"), { mask }));
  client.write(encodeFrame(Opcode.BINARY, Buffer.from("bin"), { mask }));
  await until(() => messages.length === 2 && frames.length === 1);
  expect(messages).toEqual([
    ["hello!", false],
    ["bin", true],
  ]);
  expect(frames.map((f) => [f.opcode, f.payload.toString()])).toEqual([[Opcode.PONG, "p1"]]);
});

test("the client's close is echoed and the connection ends cleanly", async () => {
  const { ws, client, frames } = await pair();
  client.write(encodeFrame(Opcode.CLOSE, closePayload(1001, "going"), { mask }));
  expect(await ws.closed).toEqual({ code: 1001, reason: "going", clean: true });
  await until(() => frames.length === 1);
  expect(parseClosePayload(frames[0]!.payload).code).toBe(1001);
});

test("close() sends 1000 and waits for the answer", async () => {
  const { ws, client, frames } = await pair();
  const done = ws.close(1000);
  await until(() => frames.length === 1);
  expect(parseClosePayload(frames[0]!.payload)).toEqual({ code: 1000, reason: "" });
  client.write(encodeFrame(Opcode.CLOSE, frames[0]!.payload, { mask }));
  expect((await done).clean).toBe(true);
  await expect(ws.send("late")).rejects.toThrow();
});

test("violations close with a code: unmasked frames 1002, oversized messages 1009", async () => {
  const a = await pair();
  a.client.write(encodeFrame(Opcode.BINARY, Buffer.from("x")));
  await a.ws.closed;
  await until(() => a.frames.length === 1);
  expect(parseClosePayload(a.frames[0]!.payload).code).toBe(1002);

  const b = await pair({ maxMessageBytes: 10 });
  b.client.write(encodeFrame(Opcode.BINARY, Buffer.alloc(6), { fin: false, mask }));
  b.client.write(encodeFrame(Opcode.CONTINUATION, Buffer.alloc(6), { mask }));
  await b.ws.closed;
  await until(() => b.frames.length === 1);
  expect(parseClosePayload(b.frames[0]!.payload).code).toBe(1009);
  expect(b.messages).toEqual([]);
});

test("a client that vanishes ends the connection as abnormal", async () => {
  const { ws, client } = await pair();
  client.destroy();
  expect(await ws.closed).toEqual({ code: 1006, reason: "", clean: false });
});
