import { afterAll, beforeAll, expect, test } from "bun:test";
import { createServer, type Server } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ImageService, RuntimeService } from "../../../src/gen/runtime/v1/api_codec.ts";
import { bridge, type Gate } from "../../../src/cri/bridge.ts";
import { GrpcServer, Status as status, type Route } from "../../../src/cri/grpc-server.ts";
import { imageService } from "../../../src/cri/image-service.ts";
import { runtimeService, type Services } from "../../../src/cri/runtime-service.ts";
import { RuntimeError, invalid } from "../../../src/errors.ts";
import { ContainerEvents } from "../../../src/stats/index.ts";
import { criClient, type CriClient } from "../../support/cri-client.ts";

// Every server-streaming RPC ends with a status on every path: a failing dependency, a hostile
// filter, an error after some messages, the readiness gate, and a client that cancels.

const boom = () => {
  throw new Error("the dependency failed: EIO");
};
const rejecting = async () => boom();
const events = new ContainerEvents({ enabled: () => true });
let gateError: RuntimeError | undefined;

/** Services whose every dependency fails; image filters are checked as the real service does. */
const failing = {
  sandboxes: { list: boom, get: boom },
  containers: { list: boom, get: boom },
  images: {
    list: (ref?: string) => {
      if (ref && !/^[a-z0-9./:@_-]+$/.test(ref)) throw invalid(`invalid reference format: "${ref}"`);
      return boom();
    },
  },
  stats: { listContainers: rejecting, listPods: rejecting, podMetrics: rejecting },
  events,
} as unknown as Services;

/** A handler that sends 3 messages, then fails (an error mid-stream). */
const midStream = async (_req: unknown, _ctx: unknown, send: (m: unknown) => Promise<void>) => {
  for (let i = 0; i < 3; i++) await send({ containers: [{ id: `c${i}` }] });
  throw new RuntimeError("internal", "the store went away mid-stream");
};

let dir: string;
let server: Server;
let cri: CriClient;
let midCri: CriClient;
let midServer: Server;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "crio-streams-"));
  const gate: Gate = () => gateError;
  const rt = bridge(RuntimeService, runtimeService(failing) as unknown as Record<string, unknown>, gate);
  const img = bridge(ImageService, imageService(failing) as unknown as Record<string, unknown>, gate);
  server = await listen(new Map([...rt.routes, ...img.routes]), join(dir, "a.sock"));
  cri = criClient(join(dir, "a.sock"));
  const mid = bridge(RuntimeService, { streamContainers: midStream }, () => undefined);
  midServer = await listen(mid.routes, join(dir, "b.sock"));
  midCri = criClient(join(dir, "b.sock"));
});

afterAll(() => {
  cri.close();
  midCri.close();
  server.close();
  midServer.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Every server-streaming RPC, with a hostile filter for each. */
const hostile: Record<string, unknown> = {
  streamPodSandboxes: { filter: { id: "x".repeat(70_000), state: { state: 99 }, labelSelector: { "": "\u0000" } } },
  streamContainers: { filter: { id: "../../etc", state: { state: -1 }, podSandboxId: "\u0000", labelSelector: { a: "b".repeat(10_000) } } },
  streamContainerStats: { filter: { id: "*", podSandboxId: "?", labelSelector: { "k\n": "v" } } },
  streamPodSandboxStats: { filter: { id: "\u00ff".repeat(1000), labelSelector: { x: "" } } },
  streamPodSandboxMetrics: {},
  streamImages: { filter: { image: { image: "::not a reference::" } } },
};

test.each(Object.keys(hostile))("%s with a failing dependency ends with a status", async (rpc) => {
  const r = await drain(cri, rpc, {});
  expect(r.code).toBe(status.UNKNOWN);
  expect(r.details).toContain("the dependency failed");
});

test.each(Object.keys(hostile))("%s with a hostile filter ends with a status", async (rpc) => {
  const r = await drain(cri, rpc, hostile[rpc]);
  expect([status.UNKNOWN, status.INVALID_ARGUMENT] as number[]).toContain(r.code);
});

test("StreamImages with an invalid reference ends INVALID_ARGUMENT (it never ended before)", async () => {
  const r = await drain(cri, "streamImages", hostile.streamImages);
  expect(r).toMatchObject({ code: status.INVALID_ARGUMENT, messages: 0 });
  expect(r.details).toContain("invalid reference format");
});

test("an error after some messages ends the stream with that error, after the messages", async () => {
  const r = await drain(midCri, "streamContainers", {});
  expect(r).toMatchObject({ code: status.INTERNAL, messages: 3, details: "the store went away mid-stream" });
});

test("every stream is refused with UNAVAILABLE while the gate is closed", async () => {
  gateError = new RuntimeError("unavailable", "the runtime is starting");
  try {
    for (const rpc of [...Object.keys(hostile), "getContainerEvents"]) {
      expect({ rpc, ...(await drain(cri, rpc, {})) }).toMatchObject({ rpc, code: status.UNAVAILABLE, messages: 0 });
    }
  } finally {
    gateError = undefined;
  }
});

test("GetContainerEvents: a client that cancels is unsubscribed; close() ends the others with OK", async () => {
  const ac = new AbortController();
  const cancelled = drain(cri, "getContainerEvents", {}, ac.signal);
  const kept = drain(cri, "getContainerEvents", {});
  await until(() => events.subscribers() === 2);
  ac.abort();
  expect((await cancelled).code).toBe(status.CANCELLED);
  await until(() => events.subscribers() === 1);
  events.close();
  expect(await kept).toMatchObject({ code: status.OK, messages: 0 });
  expect(events.subscribers()).toBe(0);
});

// --- internal ---

async function drain(c: CriClient, rpc: string, req: unknown, signal?: AbortSignal): Promise<{ code: number; details: string; messages: number }> {
  let messages = 0;
  try {
    const it = (c as unknown as Record<string, (r: unknown, o: object) => AsyncIterable<unknown>>)[rpc]!(req, { timeoutMs: 5000, signal });
    for await (const _ of it) messages++;
    return { code: status.OK, details: "", messages };
  } catch (e) {
    const err = e as { code: number; details: string };
    // DEADLINE_EXCEEDED would mean the server never ended the stream.
    return { code: err.code, details: err.details, messages };
  }
}

async function until(f: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!f()) {
    if (Date.now() > end) throw new Error("timed out");
    await Bun.sleep(5);
  }
}

/** The gRPC server on a plain unix socket (the daemon listens through cri/h2-front.ts). */
function listen(routes: Map<string, Route>, path: string): Promise<Server> {
  const grpc = new GrpcServer(routes, { maxRecvBytes: 16 << 20, maxSendBytes: 16 << 20 });
  const s = createServer((conn) => grpc.inject(conn));
  return new Promise((resolve, reject) => {
    s.once("error", reject);
    s.listen(path, () => resolve(s));
  });
}
