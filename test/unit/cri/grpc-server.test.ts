import { afterAll, beforeAll, expect, test } from "bun:test";
import { credentials, makeGenericClientConstructor, Metadata, type Client, type ServiceError } from "@grpc/grpc-js";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeMessage, GrpcServer, GrpcStatus, Status, type Route } from "../../../src/cri/grpc-server.ts";

// The gRPC wire of cri/grpc-server.ts against grpc-js's client: bytes in and out, status codes
// and messages, deadlines, size limits, unknown methods, server streams.

let dir: string;
let net: Server;
// biome-ignore lint/complexity/noBannedTypes: the generic client's methods are made at run time from the definition
let client: Client & Record<string, Function>;
let slowAborted: unknown;

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const routes = new Map<string, Route>([
  ["/t.T/Echo", { kind: "unary", handle: async (req) => bytes(`echo:${text(req)}`) }],
  [
    "/t.T/Fail",
    {
      kind: "unary",
      handle: async () => {
        throw new GrpcStatus(Status.NOT_FOUND, "no such thing: «ünïcode» 100%\nsecond line");
      },
    },
  ],
  [
    "/t.T/Boom",
    {
      kind: "unary",
      handle: async () => {
        throw new Error("plain error");
      },
    },
  ],
  ["/t.T/Big", { kind: "unary", handle: async () => new Uint8Array(300) }],
  [
    "/t.T/Slow",
    {
      kind: "unary",
      handle: async (_req, call) => {
        await new Promise<void>((resolve) => call.signal.addEventListener("abort", () => resolve(), { once: true }));
        slowAborted = call.signal.reason;
        return bytes("late");
      },
    },
  ],
  [
    "/t.T/Count",
    {
      kind: "server_streaming",
      handle: async (req, _call, send) => {
        for (let i = 0; i < Number(text(req)); i++) await send(bytes(String(i)));
      },
    },
  ],
  ["/t.T/Header", { kind: "unary", handle: async (_req, call) => bytes(call.header("x-probe") ?? "none") }],
]);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "grpc-server-"));
  const grpc = new GrpcServer(routes, { maxRecvBytes: 100, maxSendBytes: 200 });
  net = createServer((c) => grpc.inject(c));
  await new Promise<void>((resolve) => net.listen(join(dir, "s.sock"), () => resolve()));
  const id = (b: Buffer | Uint8Array) => Buffer.from(b);
  const def = Object.fromEntries(
    ["Echo", "Fail", "Boom", "Big", "Slow", "Header", "Missing"].map((m) => [
      m,
      {
        path: `/t.T/${m}`,
        requestStream: false,
        responseStream: false,
        requestSerialize: id,
        requestDeserialize: id,
        responseSerialize: id,
        responseDeserialize: id,
      },
    ]),
  );
  def.Count = {
    path: "/t.T/Count",
    requestStream: false,
    responseStream: true,
    requestSerialize: id,
    requestDeserialize: id,
    responseSerialize: id,
    responseDeserialize: id,
  };
  const Ctor = makeGenericClientConstructor(def as never, "T");
  client = new Ctor(`unix:${join(dir, "s.sock")}`, credentials.createInsecure(), { "grpc.default_authority": "localhost" }) as never;
});

afterAll(() => {
  client.close();
  net.close();
  rmSync(dir, { recursive: true, force: true });
});

function unary(
  method: string,
  req: Uint8Array,
  o: { deadlineMs?: number; md?: Record<string, string> } = {},
): Promise<{ code: number; details: string; body?: string }> {
  const md = new Metadata();
  for (const [k, v] of Object.entries(o.md ?? {})) md.set(k, v);
  return new Promise((resolve) =>
    client[method]!(Buffer.from(req), md, { deadline: Date.now() + (o.deadlineMs ?? 5000) }, (err: ServiceError | null, res?: Buffer) =>
      resolve(err ? { code: err.code, details: err.details } : { code: 0, details: "", body: text(res!) }),
    ),
  );
}

test("a unary call: the request's bytes in, the response's out, status OK", async () => {
  expect(await unary("Echo", bytes("hi"))).toEqual({ code: 0, details: "", body: "echo:hi" });
  expect(await unary("Echo", new Uint8Array(0))).toEqual({ code: 0, details: "", body: "echo:" });
});

test("a handler's GrpcStatus reaches the client with its code and message (percent-encoded on the wire); anything else is UNKNOWN", async () => {
  expect(await unary("Fail", bytes(""))).toEqual({ code: Status.NOT_FOUND, details: "no such thing: «ünïcode» 100%\nsecond line" });
  expect(await unary("Boom", bytes(""))).toEqual({ code: Status.UNKNOWN, details: "plain error" });
  expect(encodeMessage("a%b\n")).toBe("a%25b%0A");
  expect(encodeMessage("plain text")).toBe("plain text");
});

test("an unknown method is UNIMPLEMENTED naming it", async () => {
  const r = await unary("Missing", bytes(""));
  expect(r.code).toBe(Status.UNIMPLEMENTED);
  expect(r.details).toContain("/t.T/Missing");
});

test("requests and responses over the size limits are RESOURCE_EXHAUSTED", async () => {
  const big = await unary("Echo", new Uint8Array(101));
  expect(big.code).toBe(Status.RESOURCE_EXHAUSTED);
  expect(big.details).toContain("Received message larger than max (101 vs. 100)");
  expect((await unary("Echo", new Uint8Array(100))).code).toBe(0);
  const out = await unary("Big", bytes(""));
  expect(out.code).toBe(Status.RESOURCE_EXHAUSTED);
  expect(out.details).toContain("Sent message larger than max (300 vs. 200)");
});

test("the client's deadline (grpc-timeout) aborts the handler's signal and answers DEADLINE_EXCEEDED", async () => {
  const r = await unary("Slow", bytes(""), { deadlineMs: 200 });
  expect(r.code).toBe(Status.DEADLINE_EXCEEDED);
  await Bun.sleep(50);
  expect((slowAborted as DOMException).name).toMatch(/TimeoutError|AbortError/);
});

test("request metadata is readable by the handler", async () => {
  expect((await unary("Header", bytes(""), { md: { "x-probe": "42" } })).body).toBe("42");
  expect((await unary("Header", bytes(""))).body).toBe("none");
});

test("a server stream sends every message in order, then OK; zero messages is OK too", async () => {
  for (const n of [0, 1, 25]) {
    const got: string[] = [];
    const call = client.Count!(Buffer.from(String(n)), new Metadata(), { deadline: Date.now() + 5000 });
    await new Promise<void>((resolve, reject) => {
      call.on("data", (b: Buffer) => got.push(text(b)));
      call.on("end", () => resolve());
      call.on("error", reject);
    });
    expect(got).toEqual(Array.from({ length: n }, (_, i) => String(i)));
  }
});
