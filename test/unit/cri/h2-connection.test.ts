// cri/h2-connection.ts (under cri/grpc-server.ts) on hand-built HTTP/2 byte streams over a real
// unix socket: HPACK with the client's dynamic table (socket-path authorities as old grpc-go
// clients send them), padding, priority, CONTINUATION, flow control both ways with small client
// windows, PING, RST_STREAM mid-call, server-stream backpressure, a client that stops reading,
// and protocol errors (GOAWAY / RST_STREAM with the right code, the server still serving others).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { credentials, makeGenericClientConstructor, Metadata, type ServiceError } from "@grpc/grpc-js";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GrpcServer, Status, type Route } from "../../../src/cri/grpc-server.ts";
import { MAX_BLOCK } from "../../../src/cri/h2-connection.ts";
import { type H2Front, listenH2Front } from "../../../src/cri/h2-front.ts";
import { HpackDecoder } from "../../../src/cri/hpack.ts";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const [DATA, HEADERS, PRIORITY, RST, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION] = [0, 1, 2, 3, 4, 6, 7, 8, 9];

let dir: string;
let net: Server;
let front: H2Front;
/** The socket the tests of the moment talk to: node:net's (GrpcServer.inject) or the daemon's listener (h2-front.ts, Bun sockets). */
let sock: string;
const socks = { "node:net socket (inject)": "", "Bun socket (h2-front.ts, the daemon's)": "" };
const handled: Record<string, number> = {};
let resetReason: unknown;
let sentCount = 0;

let unstick: () => void = () => {};
let stuck = Promise.resolve();
let stuckRunning = 0;

const routes = new Map<string, Route>([
  [
    "/t.T/Stuck",
    {
      kind: "unary",
      handle: async () => {
        stuckRunning++;
        await stuck; // ignores its signal: work that goes on after a reset
        stuckRunning--;
        return new Uint8Array(0);
      },
    },
  ],
  ["/t.T/Echo", { kind: "unary", handle: async (req) => Buffer.concat([Buffer.from("echo:"), req]) }],
  ["/t.T/Size", { kind: "unary", handle: async (req) => new Uint8Array(Number(new TextDecoder().decode(req))) }],
  [
    "/t.T/Mega",
    {
      kind: "unary",
      handle: async () => {
        handled.mega = (handled.mega ?? 0) + 1;
        return new Uint8Array(1 << 20);
      },
    },
  ],
  [
    "/t.T/Hang",
    {
      kind: "unary",
      handle: (_req, call) =>
        new Promise((_resolve, reject) =>
          call.signal.addEventListener("abort", () => {
            resetReason = call.signal.reason;
            reject(call.signal.reason);
          }),
        ),
    },
  ],
  [
    "/t.T/Stream",
    {
      kind: "server_streaming",
      handle: async (req, _call, send) => {
        sentCount = 0;
        for (let i = 0; i < Number(new TextDecoder().decode(req)); i++) {
          await send(new Uint8Array(1000).fill(i));
          sentCount++;
        }
      },
    },
  ],
]);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "h2-conn-"));
  const grpc = new GrpcServer(routes, { maxRecvBytes: 4 << 20, maxSendBytes: 8 << 20 });
  socks["node:net socket (inject)"] = join(dir, "net.sock");
  net = createServer((c) => grpc.inject(c));
  await new Promise<void>((resolve) => net.listen(socks["node:net socket (inject)"], () => resolve()));
  socks["Bun socket (h2-front.ts, the daemon's)"] = join(dir, "front.sock");
  front = await listenH2Front(join(dir, "front.sock"), (t) => grpc.accept(t));
});

afterAll(async () => {
  net.close();
  front.destroyConnections();
  await front.close();
  rmSync(dir, { recursive: true, force: true });
});

function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

// A client-side header block: literals with incremental indexing (new name), `{ index }` fields,
// size updates — as grpc-go and nghttp2 encoders write them.
function block(...fields: Array<[string, string] | { index: number } | { sizeUpdate: number }>): Buffer {
  const out: number[] = [];
  const str = (s: string) => {
    if (s.length >= 127) out.push(0x7f, ...int7(s.length - 127));
    else out.push(s.length);
    out.push(...Buffer.from(s, "latin1"));
  };
  for (const f of fields) {
    if ("index" in f) out.push(0x80 | f.index);
    else if ("sizeUpdate" in f) out.push(0x20 | f.sizeUpdate);
    else {
      out.push(0x40);
      str(f[0]);
      str(f[1]);
    }
  }
  return Buffer.from(out);
}

function int7(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>= 7;
  }
  return [...out, v];
}

const request = (method: string, authority = "localhost", extra: Array<[string, string]> = []) =>
  block([":method", "POST"], [":scheme", "http"], [":path", `/t.T/${method}`], [":authority", authority], ["content-type", "application/grpc"], ...extra);
const message = (body: string | Buffer) => {
  const b = typeof body === "string" ? Buffer.from(body) : body;
  const p = Buffer.alloc(5);
  p.writeUInt32BE(b.length, 1);
  return Buffer.concat([p, b]);
};
const setting = (id: number, v: number) => {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(id, 0);
  b.writeUInt32BE(v, 2);
  return b;
};
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v, 0);
  return b;
};

interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
  fields?: Record<string, string>;
}

/** A raw client: sends bytes, parses what the server sends (frames, header blocks decoded). */
class Raw {
  frames: Frame[] = [];
  closed = false;
  #buf = Buffer.alloc(0);
  #dec = new HpackDecoder();
  #block: Buffer[] = [];
  #waiters: Array<() => void> = [];
  constructor(readonly s: Socket) {
    s.on("data", (c: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, c]);
      while (this.#buf.length >= 9) {
        const len = this.#buf.readUIntBE(0, 3);
        if (this.#buf.length < 9 + len) break;
        const f: Frame = { type: this.#buf[3]!, flags: this.#buf[4]!, stream: this.#buf.readUInt32BE(5), payload: this.#buf.subarray(9, 9 + len) };
        this.#buf = this.#buf.subarray(9 + len);
        if (f.type === HEADERS || f.type === CONTINUATION) {
          this.#block.push(f.payload);
          if (f.flags & 0x4) {
            f.fields = Object.fromEntries(this.#dec.decode(Buffer.concat(this.#block)).fields.map((x) => [x.name, x.value]));
            this.#block = [];
          }
        }
        this.frames.push(f);
      }
      this.#wake();
    });
    s.on("close", () => {
      this.closed = true;
      this.#wake();
    });
    s.on("error", () => {});
  }
  #wake() {
    for (const w of this.#waiters.splice(0)) w();
  }
  static async open(settings: Buffer[] = []): Promise<Raw> {
    const s = connect(sock);
    await new Promise<void>((resolve) => s.once("connect", () => resolve()));
    const r = new Raw(s);
    r.send(PREFACE, frame(SETTINGS, 0, 0, Buffer.concat(settings)));
    return r;
  }
  send(...b: Buffer[]): void {
    this.s.write(Buffer.concat(b));
  }
  async sendChunked(b: Buffer, chunk: number): Promise<void> {
    for (let i = 0; i < b.length; i += chunk) {
      this.s.write(b.subarray(i, i + chunk));
      if (i % (chunk * 64) === 0) await Bun.sleep(0);
    }
  }
  /** Waits (≤ 3 s) until `pred` holds of the frames received. */
  async until(pred: (fs: Frame[]) => boolean, what = "a condition"): Promise<void> {
    const end = Date.now() + 3000;
    while (!pred(this.frames)) {
      if (Date.now() > end)
        throw new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(this.frames.map((f) => [f.type, f.flags, f.stream, f.payload.length]))}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }
  on(stream: number): Frame[] {
    return this.frames.filter((f) => f.stream === stream);
  }
  /** The status of stream `id` once it ended (its last HEADERS' grpc-status). */
  async status(id: number): Promise<{ code: number; message: string; body: Buffer }> {
    await this.until((fs) => fs.some((f) => f.stream === id && ((f.type === HEADERS && f.flags & 1) || f.type === RST)), `stream ${id} to end`);
    const fs = this.on(id);
    const h = fs.filter((f) => f.fields).at(-1)!;
    return {
      code: Number(h.fields!["grpc-status"]),
      message: h.fields!["grpc-message"] ?? "",
      body: Buffer.concat(fs.filter((f) => f.type === DATA).map((f) => f.payload)),
    };
  }
  close() {
    this.s.destroy();
  }
}

const body = (b: Buffer) => b.subarray(5).toString();

for (const via of Object.keys(socks) as Array<keyof typeof socks>) {
  describe(via, () => {
    beforeAll(() => {
      sock = socks[via];
    });
    describe("h2 connection", () => {
      test("the server's preface: SETTINGS, a connection WINDOW_UPDATE, and an ACK of ours", async () => {
        const r = await Raw.open();
        await r.until((fs) => fs.some((f) => f.type === SETTINGS && f.flags & 1), "SETTINGS ACK");
        expect(r.frames[0]!.type).toBe(SETTINGS);
        expect(r.frames[0]!.flags).toBe(0);
        expect(r.frames.some((f) => f.type === WINDOW_UPDATE && f.stream === 0)).toBe(true);
        r.close();
      });

      test("a socket-path :authority is served, also when later requests refer to it by index (dynamic table)", async () => {
        const r = await Raw.open();
        r.send(frame(HEADERS, 0x4, 1, request("Echo", "/var/run/x.sock")), frame(DATA, 1, 1, message("a")));
        expect(await r.status(1)).toMatchObject({ code: 0 });
        expect(body((await r.status(1)).body)).toBe("echo:a");
        // the first request added its five fields (newest = 62): :method … content-type
        r.send(frame(HEADERS, 0x4, 3, block({ index: 66 }, { index: 65 }, { index: 64 }, { index: 63 }, { index: 62 }, ["grpc-timeout", "1S"])));
        r.send(frame(DATA, 1, 3, message("b")));
        const s = await r.status(3);
        expect([s.code, body(s.body)]).toEqual([0, "echo:b"]);
        r.close();
      });

      test("padding, priority, CONTINUATION frames, size updates, a request split across DATA frames, input in small chunks", async () => {
        for (const chunk of [1, 7, 4096]) {
          const r = await Raw.open();
          const b = block(
            { sizeUpdate: 0 },
            { sizeUpdate: 30 },
            [":method", "POST"],
            [":path", "/t.T/Echo"],
            [":authority", "/s.sock"],
            ["content-type", "application/grpc"],
            ["x-big", "v".repeat(20_000)],
          );
          const payload = Buffer.concat([Buffer.from([3]), Buffer.from("8000000710", "hex"), b.subarray(0, 100), Buffer.alloc(3)]);
          const msg = message("split across frames");
          await r.sendChunked(
            Buffer.concat([
              frame(HEADERS, 0x8 | 0x20, 1, payload), // PADDED | PRIORITY, no END_HEADERS
              frame(CONTINUATION, 0, 1, b.subarray(100, 10_000)),
              frame(CONTINUATION, 0x4, 1, b.subarray(10_000)),
              frame(PRIORITY, 0, 1, Buffer.from("0000000010", "hex")),
              frame(DATA, 0, 1, msg.subarray(0, 3)), // the message prefix split
              frame(DATA, 0x8, 1, Buffer.concat([Buffer.from([2]), msg.subarray(3, 10), Buffer.alloc(2)])),
              frame(DATA, 1, 1, msg.subarray(10)),
            ]),
            chunk,
          );
          const s = await r.status(1);
          expect([s.code, body(s.body)]).toEqual([0, "echo:split across frames"]);
          r.close();
        }
      });

      test("PING is answered with an ACK carrying the same 8 bytes", async () => {
        const r = await Raw.open();
        r.send(frame(PING, 0, 0, Buffer.from("0102030405060708", "hex")));
        await r.until((fs) => fs.some((f) => f.type === PING), "PING ACK");
        const p = r.frames.find((f) => f.type === PING)!;
        expect([p.flags, p.payload.toString("hex")]).toEqual([1, "0102030405060708"]);
        r.close();
      });

      test("flow control: the answer never exceeds the client's stream and connection windows, and continues on WINDOW_UPDATE", async () => {
        // stream window 1000 bytes, frames up to 20,000 bytes
        const r = await Raw.open([setting(0x4, 1000), setting(0x5, 20_000)]);
        r.send(frame(HEADERS, 0x4, 1, request("Size")), frame(DATA, 1, 1, message("200000")));
        await r.until((fs) => fs.some((f) => f.type === DATA), "the first DATA");
        await Bun.sleep(100);
        const sent = () =>
          r
            .on(1)
            .filter((f) => f.type === DATA)
            .reduce((n, f) => n + f.payload.length, 0);
        expect(sent()).toBe(1000);
        // the stream's window opens wide: now the connection's (65,535 bytes) holds it
        r.send(frame(WINDOW_UPDATE, 0, 1, u32(1 << 30)));
        await r.until(() => sent() === 65_535, "the connection window to be used");
        await Bun.sleep(100);
        expect(sent()).toBe(65_535);
        expect(Math.max(...r.on(1).map((f) => f.payload.length))).toBeLessThanOrEqual(20_000);
        r.send(frame(WINDOW_UPDATE, 0, 0, u32(1 << 30)));
        const s = await r.status(1);
        expect([s.code, s.body.length]).toEqual([0, 200_005]);
        expect(Math.max(...r.on(1).map((f) => f.payload.length))).toBe(20_000); // the client's MAX_FRAME_SIZE
        r.close();
      });

      test("flow control: a client's lower INITIAL_WINDOW_SIZE mid-stream holds the answer; a raise releases it", async () => {
        const r = await Raw.open([setting(0x4, 0)]);
        r.send(frame(HEADERS, 0x4, 1, request("Size")), frame(DATA, 1, 1, message("3000")));
        await r.until((fs) => fs.some((f) => f.stream === 1 && f.type === HEADERS), "the response headers");
        await Bun.sleep(100);
        expect(r.on(1).filter((f) => f.type === DATA)).toEqual([]);
        r.send(frame(SETTINGS, 0, 0, setting(0x4, 65_535)));
        const s = await r.status(1);
        expect([s.code, s.body.length]).toEqual([0, 3005]);
        r.close();
      });

      test("the server grants WINDOW_UPDATE as it consumes a large request", async () => {
        const r = await Raw.open();
        const msg = message(Buffer.alloc(3 << 20, 0x61));
        r.send(frame(HEADERS, 0x4, 1, request("Size")));
        // 3 MB in 16 KB frames: more than the first windows (1 MB each), so it needs the server's updates
        const granted = (id: number, initial: number) =>
          initial +
          r
            .on(id)
            .filter((f) => f.type === WINDOW_UPDATE)
            .reduce((n, f) => n + f.payload.readUInt32BE(0), 0);
        const window = () => Math.min(granted(0, 65_535), granted(1, 1 << 20));
        let sentBytes = 0;
        for (let p = 0; p < msg.length; p += 16384) {
          const part = msg.subarray(p, p + 16384);
          if (sentBytes + part.length > window()) await r.until(() => sentBytes + part.length <= window(), "a WINDOW_UPDATE");
          r.send(frame(DATA, p + 16384 >= msg.length ? 1 : 0, 1, part));
          sentBytes += part.length;
        }
        // "Size" answers as many bytes as its request says: not a number here, so 0 bytes
        const s = await r.status(1);
        expect(s.code).toBe(0);
        expect(r.on(1).some((f) => f.type === WINDOW_UPDATE)).toBe(true);
        r.close();
      });

      test("RST_STREAM mid-call aborts the handler's signal (AbortError); the connection serves on", async () => {
        const r = await Raw.open();
        resetReason = undefined;
        r.send(frame(HEADERS, 0x4, 1, request("Hang")), frame(DATA, 1, 1, message("")));
        await Bun.sleep(50);
        r.send(frame(RST, 0, 1, u32(0x8)));
        const end = Date.now() + 2000;
        while (resetReason === undefined && Date.now() < end) await Bun.sleep(10);
        expect((resetReason as DOMException).name).toBe("AbortError");
        r.send(frame(HEADERS, 0x4, 3, request("Echo")), frame(DATA, 1, 3, message("x")));
        expect(body((await r.status(3)).body)).toBe("echo:x");
        expect(r.on(1).filter((f) => f.type !== WINDOW_UPDATE)).toEqual([]); // nothing sent on the cancelled stream
        r.close();
      });

      test("a server stream waits for the client's window (send() holds the handler), then finishes", async () => {
        const r = await Raw.open([setting(0x4, 2500)]);
        r.send(frame(HEADERS, 0x4, 1, request("Stream")), frame(DATA, 1, 1, message("50")));
        await r.until((fs) => fs.some((f) => f.type === DATA), "the first DATA");
        await Bun.sleep(150);
        expect(sentCount).toBeLessThanOrEqual(3); // 2,500 bytes of window: 2 messages and a part
        r.send(frame(WINDOW_UPDATE, 0, 1, u32(1 << 20)));
        const s = await r.status(1);
        expect([s.code, s.body.length, sentCount]).toEqual([0, 50 * 1005, 50]);
        r.close();
      });

      test("a client that stops reading stops being read: its pending answers are bounded, and all arrive once it reads", async () => {
        const r = await Raw.open([setting(0x4, 0x7fffffff)]);
        r.send(frame(WINDOW_UPDATE, 0, 0, u32(0x7fffffff - 65_535)));
        await r.until((fs) => fs.some((f) => f.type === SETTINGS && f.flags & 1), "SETTINGS ACK");
        r.s.pause();
        handled.mega = 0;
        // one request at a time, each its own write, as a client would: 40 answers of 1 MB each
        for (let i = 0; i < 40; i++) {
          r.send(frame(HEADERS, 0x4, 1 + 2 * i, request("Mega")), frame(DATA, 1, 1 + 2 * i, message("")));
          await Bun.sleep(5);
        }
        await Bun.sleep(300);
        expect(handled.mega).toBeGreaterThan(0);
        expect(handled.mega).toBeLessThan(10); // the server stopped reading requests it cannot answer
        r.s.resume();
        for (let i = 0; i < 40; i++) expect((await r.status(1 + 2 * i)).body.length).toBe((1 << 20) + 5);
        expect(handled.mega).toBe(40);
        r.close();
      });

      test("a client resetting streams as fast as it opens them cannot start more handlers than MAX_CONCURRENT_STREAMS (1000)", async () => {
        stuck = new Promise<void>((resolve) => {
          unstick = resolve;
        });
        const r = await Raw.open();
        const frames: Buffer[] = [];
        for (let i = 0; i < 1100; i++) {
          const id = 1 + 2 * i;
          frames.push(frame(HEADERS, 0x4, id, i === 0 ? request("Stuck") : block({ index: 66 }, { index: 65 }, { index: 64 }, { index: 63 }, { index: 62 })));
          frames.push(frame(DATA, 1, id, message("")), frame(RST, 0, id, u32(0x8)));
        }
        r.send(...frames);
        await r.until((fs) => fs.filter((f) => f.type === RST).length >= 100, "the refused streams");
        expect(stuckRunning).toBe(1000);
        const refused = r.frames.filter((f) => f.type === RST);
        expect(refused.every((f) => f.payload.readUInt32BE(0) === 0x7 && f.stream > 1999)).toBe(true);
        unstick();
        await Bun.sleep(20);
        expect(stuckRunning).toBe(0);
        r.send(frame(HEADERS, 0x4, 2201, request("Echo")), frame(DATA, 1, 2201, message("after")));
        expect(body((await r.status(2201)).body)).toBe("echo:after");
        r.close();
      });

      test("compressed requests (gzip, deflate), an unknown encoding, a malformed grpc-timeout, two messages: trailers-only statuses", async () => {
        const r = await Raw.open();
        const zipped = (z: Buffer) => {
          const p = Buffer.alloc(5);
          p[0] = 1;
          p.writeUInt32BE(z.length, 1);
          return Buffer.concat([p, z]);
        };
        const cases: Array<[Array<[string, string]>, Buffer, number, string]> = [
          [[["grpc-encoding", "gzip"]], zipped(Bun.gzipSync(Buffer.from("zz")) as Buffer), 0, "echo:zz"],
          [[["grpc-encoding", "deflate"]], zipped(require("node:zlib").deflateSync(Buffer.from("dd"))), 0, "echo:dd"],
          [[["grpc-encoding", "snappy"]], zipped(Buffer.from("xx")), Status.UNIMPLEMENTED, 'compression "snappy" is not supported'],
          [[["grpc-timeout", "soon"]], message("t"), Status.INTERNAL, 'invalid grpc-timeout header "soon"'],
          [[], Buffer.concat([message("a"), message("b")]), Status.UNIMPLEMENTED, "one request message"],
        ];
        for (const [i, [extra, msg, code, text]] of cases.entries()) {
          const id = 1 + 2 * i;
          r.send(frame(HEADERS, 0x4, id, request("Echo", "localhost", extra)), frame(DATA, 1, id, msg));
          const st = await r.status(id);
          expect(st.code).toBe(code);
          if (code === 0) expect(body(st.body)).toBe(text);
          else {
            expect(st.message).toContain(text);
            // trailers-only: one HEADERS with :status, content-type and the status, END_STREAM
            const hs = r.on(id).filter((f) => f.fields);
            expect(hs.length).toBe(1);
            expect(hs[0]!.fields![":status"]).toBe("200");
          }
        }
        r.close();
      });

      test("grpc-js: a 4 MB answer and 40 concurrent 300 KB ones cross the client's default windows (64 KB) as it grants more", async () => {
        const id = (b: Buffer | Uint8Array) => Buffer.from(b);
        const Ctor = makeGenericClientConstructor(
          {
            Size: {
              path: "/t.T/Size",
              requestStream: false,
              responseStream: false,
              requestSerialize: id,
              requestDeserialize: id,
              responseSerialize: id,
              responseDeserialize: id,
            },
          } as never,
          "T",
        );
        const c = new Ctor(`unix:${sock}`, credentials.createInsecure(), {
          "grpc.max_receive_message_length": 16 << 20,
          "grpc.default_authority": sock,
        }) as never as {
          Size: (req: Buffer, md: Metadata, o: object, cb: (e: ServiceError | null, r?: Buffer) => void) => void;
          close(): void;
        };
        const size = (n: number) =>
          new Promise<number>((resolve, reject) =>
            c.Size(Buffer.from(String(n)), new Metadata(), { deadline: Date.now() + 20_000 }, (e, r) => (e ? reject(e) : resolve(r!.length))),
          );
        expect(await size(4 << 20)).toBe(4 << 20);
        expect(await Promise.all(Array.from({ length: 40 }, () => size(300_000)))).toEqual(Array(40).fill(300_000));
        c.close();
      });

      test("many connections at once, each its own calls", async () => {
        const rs = await Promise.all(Array.from({ length: 30 }, () => Raw.open()));
        rs.forEach((r, i) => {
          r.send(frame(HEADERS, 0x4, 1, request("Echo")), frame(DATA, 1, 1, message(String(i))));
        });
        const bodies = await Promise.all(rs.map(async (r) => body((await r.status(1)).body)));
        expect(bodies).toEqual(rs.map((_, i) => `echo:${i}`));
        for (const r of rs) r.close();
      });

      test("a call that is not gRPC gets 415; a request beyond the limit is RESOURCE_EXHAUSTED and its stream reset", async () => {
        const r = await Raw.open();
        r.send(frame(HEADERS, 0x5, 1, block([":method", "POST"], [":path", "/t.T/Echo"], ["content-type", "text/plain"])));
        await r.until((fs) => fs.some((f) => f.stream === 1 && f.fields), "the answer");
        expect(r.on(1)[0]!.fields![":status"]).toBe("415");
        const big = Buffer.alloc(5);
        big.writeUInt32BE(5 << 20, 1);
        r.send(frame(HEADERS, 0x4, 3, request("Echo")), frame(DATA, 0, 3, big));
        const s = await r.status(3);
        expect(s.code).toBe(Status.RESOURCE_EXHAUSTED);
        await r.until((fs) => fs.some((f) => f.stream === 3 && f.type === RST), "RST_STREAM");
        expect(
          r
            .on(3)
            .find((f) => f.type === RST)!
            .payload.readUInt32BE(0),
        ).toBe(0); // NO_ERROR: the rest is not wanted
        r.close();
      });
    });

    describe("h2 protocol errors: GOAWAY with the code, the connection closed, the server serving others", () => {
      const cases: Array<[string, Buffer, number]> = [
        ["a bad preface (HTTP/1.1)", Buffer.from("GET / HTTP/1.1\r\nHost: /x.sock\r\n\r\n"), 0x1],
        ["CONTINUATION without HEADERS", frame(CONTINUATION, 0x4, 1, block(["a", "b"])), 0x1],
        ["an interrupted header block", Buffer.concat([frame(HEADERS, 0, 1, block(["a", "b"])), frame(DATA, 1, 1, message(""))]), 0x1],
        ["a malformed header block (HPACK index 0)", frame(HEADERS, 0x4, 1, Buffer.from("80", "hex")), 0x9],
        ["an HPACK index beyond the table", frame(HEADERS, 0x4, 1, Buffer.from("ff00", "hex")), 0x9],
        ["a table size update beyond SETTINGS_HEADER_TABLE_SIZE", frame(HEADERS, 0x4, 1, Buffer.from("3fe926", "hex")), 0x9],
        ["padding longer than the frame", frame(HEADERS, 0x8 | 0x4, 1, Buffer.from([9, 0x82])), 0x1],
        ["a frame larger than our MAX_FRAME_SIZE", frame(DATA, 0, 1, Buffer.alloc(16385)), 0x6],
        [
          "a header block larger than the limit",
          Buffer.concat([
            frame(HEADERS, 0, 1, Buffer.alloc(16384)),
            ...Array.from({ length: Math.ceil(MAX_BLOCK / 16384) }, () => frame(CONTINUATION, 0, 1, Buffer.alloc(16384))),
          ]),
          0xb,
        ],
        ["DATA on an idle stream", frame(DATA, 1, 5, message("")), 0x1],
        ["HEADERS on an even stream", frame(HEADERS, 0x4, 2, request("Echo")), 0x1],
        ["a PING of 7 bytes", frame(PING, 0, 0, Buffer.alloc(7)), 0x6],
        ["a WINDOW_UPDATE of 0 on the connection", frame(WINDOW_UPDATE, 0, 0, u32(0)), 0x1],
        ["a connection window beyond 2^31-1", frame(WINDOW_UPDATE, 0, 0, u32(0x7fffffff)), 0x3],
        ["SETTINGS of a wrong size", frame(SETTINGS, 0, 0, Buffer.alloc(5)), 0x6],
        ["a MAX_FRAME_SIZE below 16384", frame(SETTINGS, 0, 0, setting(0x5, 100)), 0x1],
        ["an INITIAL_WINDOW_SIZE beyond 2^31-1", frame(SETTINGS, 0, 0, setting(0x4, 0x80000000)), 0x3],
        ["a PUSH_PROMISE", frame(0x5, 0x4, 1, Buffer.alloc(4)), 0x1],
      ];
      test.each(cases)("%s", async (_what, input, code) => {
        const s = connect(sock);
        await new Promise<void>((resolve) => s.once("connect", () => resolve()));
        const r = new Raw(s);
        if (input.subarray(0, 3).toString() === "GET") r.send(input);
        else r.send(PREFACE, frame(SETTINGS, 0, 0), input);
        await r.until((fs) => fs.some((f) => f.type === GOAWAY), "GOAWAY");
        const g = r.frames.find((f) => f.type === GOAWAY)!;
        expect(g.payload.readUInt32BE(4)).toBe(code);
        await r.until(() => r.closed, "the connection to close");
        // the server serves on
        const ok = await Raw.open();
        ok.send(frame(HEADERS, 0x4, 1, request("Echo")), frame(DATA, 1, 1, message("still")));
        expect(body((await ok.status(1)).body)).toBe("echo:still");
        ok.close();
      });

      test("stream errors reset only the stream: WINDOW_UPDATE of 0 on a stream, HEADERS without END_STREAM on an open one", async () => {
        const r = await Raw.open();
        r.send(frame(HEADERS, 0x4, 1, request("Hang")), frame(WINDOW_UPDATE, 0, 1, u32(0)));
        await r.until((fs) => fs.some((f) => f.type === RST && f.stream === 1), "RST_STREAM 1");
        expect(
          r
            .on(1)
            .find((f) => f.type === RST)!
            .payload.readUInt32BE(0),
        ).toBe(0x1);
        r.send(frame(HEADERS, 0x4, 3, request("Hang")), frame(HEADERS, 0x4, 3, block(["x-trailer", "1"])));
        await r.until((fs) => fs.some((f) => f.type === RST && f.stream === 3), "RST_STREAM 3");
        r.send(frame(HEADERS, 0x4, 5, request("Echo")), frame(DATA, 1, 5, message("on")));
        expect(body((await r.status(5)).body)).toBe("echo:on");
        expect(r.frames.some((f) => f.type === GOAWAY)).toBe(false);
        r.close();
      });
    });
  });
}

describe("stop", () => {
  test("close(): GOAWAY (NO_ERROR, the last stream seen), the call in flight finishes, a newer stream is ignored, then the connection closes", async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const g = new GrpcServer(
      new Map<string, Route>([
        [
          "/t.T/Held",
          {
            kind: "unary",
            handle: async () => {
              await held;
              return Buffer.from("done");
            },
          },
        ],
      ]),
      { maxRecvBytes: 1000, maxSendBytes: 1000 },
    );
    const path = join(dir, "stop.sock");
    const srv = createServer((c) => g.inject(c));
    await new Promise<void>((resolve) => srv.listen(path, () => resolve()));
    const s = connect(path);
    await new Promise<void>((resolve) => s.once("connect", () => resolve()));
    const r = new Raw(s);
    r.send(PREFACE, frame(SETTINGS, 0, 0), frame(HEADERS, 0x4, 1, request("Held")), frame(DATA, 1, 1, message("")));
    await Bun.sleep(50);
    g.close();
    await r.until((fs) => fs.some((f) => f.type === GOAWAY), "GOAWAY");
    const goaway = r.frames.find((f) => f.type === GOAWAY)!;
    expect([goaway.payload.readUInt32BE(0), goaway.payload.readUInt32BE(4)]).toEqual([1, 0]);
    r.send(frame(HEADERS, 0x4, 3, request("Held")), frame(DATA, 1, 3, message("")));
    release();
    const st = await r.status(1);
    expect([st.code, body(st.body)]).toEqual([0, "done"]);
    // the client, told to go away, is given time to close the connection itself (ending it at once
    // raced the last frames in Bun's http2 client); one that does not is closed after ~1 s
    const answered = performance.now();
    await Bun.sleep(200);
    expect(r.closed).toBe(false);
    await r.until(() => r.closed, "the connection to close");
    expect(performance.now() - answered).toBeGreaterThan(800);
    expect(r.on(3)).toEqual([]);
    srv.close();
  });

  test("no module of the daemon imports node:http2", async () => {
    const bad: string[] = [];
    for await (const f of new Bun.Glob("src/**/*.ts").scan("."))
      if (/from "(node:)?http2"|require\("(node:)?http2"\)/.test(await Bun.file(f).text())) bad.push(f);
    expect(bad).toEqual([]);
  });
});
