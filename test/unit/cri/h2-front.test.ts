// The client→server rewriter of the CRI socket front, on hand-built HTTP/2 byte streams. The
// "server" here is a fresh HpackDecoder reading the rewriter's output, as Bun's server would.
import { describe, expect, test } from "bun:test";
import { AuthorityRewriter } from "../../../src/cri/h2-front.ts";
import { HpackDecoder } from "../../../src/cri/hpack.ts";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const SETTINGS = frame(0x4, 0, 0, Buffer.from("000300000064", "hex"));
const grpcData = (stream: number, end = true) => frame(0x0, end ? 0x1 : 0, stream, Buffer.from("00000000070a05302e312e30", "hex"));

// A client-side header block: every field as a literal with incremental indexing (new name),
// or `{ index }` for an indexed field — as grpc-go and nghttp2 encoders do.
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

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

const headers = (stream: number, b: Buffer, flags = 0x4) => frame(0x1, flags, stream, b);
const request = (authority: string) =>
  block([":method", "POST"], [":path", "/runtime.v1.RuntimeService/Version"], [":authority", authority], ["content-type", "application/grpc"]);

/** Runs `input` through a rewriter in chunks of `chunk` bytes (all at once when 0). */
function rewrite(input: Buffer, chunk = 0): { out: Buffer; rw: AuthorityRewriter } {
  const parts: Buffer[] = [];
  const rw = new AuthorityRewriter((b) => parts.push(Buffer.from(b)));
  const step = chunk || input.length;
  for (let i = 0; i < input.length; i += step) rw.write(input.subarray(i, i + step));
  return { out: Buffer.concat(parts), rw };
}

interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** What the server sees: frames, and each header block decoded with one decoder per connection. */
function serverView(out: Buffer) {
  expect(out.subarray(0, 24)).toEqual(PREFACE);
  const frames: Frame[] = [];
  const blocks: Array<Array<[string, string]>> = [];
  const dec = new HpackDecoder();
  let pending: Buffer[] = [];
  for (let p = 24; p < out.length; ) {
    const len = out.readUIntBE(p, 3);
    const f = { type: out[p + 3]!, flags: out[p + 4]!, stream: out.readUInt32BE(p + 5), payload: out.subarray(p + 9, p + 9 + len) };
    expect(len).toBeLessThanOrEqual(16384);
    frames.push(f);
    p += 9 + len;
    if (f.type === 0x1 || f.type === 0x9) {
      let s = 0;
      let e = len;
      if (f.type === 0x1 && f.flags & 0x8) {
        e -= f.payload[0]!;
        s = 1;
      }
      if (f.type === 0x1 && f.flags & 0x20) s += 5;
      pending.push(f.payload.subarray(s, e));
      if (f.flags & 0x4) {
        blocks.push(dec.decode(Buffer.concat(pending)).fields.map((x) => [x.name, x.value]));
        pending = [];
      }
    }
  }
  return { frames, blocks, tableSize: dec.size };
}

describe("AuthorityRewriter", () => {
  test("a connection that never needs a rewrite passes through byte for byte", () => {
    const input = Buffer.concat([
      PREFACE,
      SETTINGS,
      headers(1, request("localhost")),
      grpcData(1),
      headers(3, block({ index: 62 + 3 }, { index: 62 + 2 }, { index: 62 + 1 }, { index: 62 })),
      grpcData(3),
    ]);
    for (const chunk of [0, 1, 7]) {
      const { out, rw } = rewrite(input, chunk);
      expect(out).toEqual(input);
      expect([rw.rewritten, rw.reencoding]).toEqual([0, false]);
    }
  });

  test("a socket-path authority becomes localhost, also when later requests refer to it by index", () => {
    const first = headers(1, request("/var/run/x.sock"));
    // the second request refers to the four entries the first one added (newest = 62)
    const second = headers(3, block({ index: 65 }, { index: 64 }, { index: 63 }, { index: 62 }, ["grpc-timeout", "1S"]));
    const input = Buffer.concat([PREFACE, SETTINGS, first, grpcData(1), second, grpcData(3)]);
    const want: Array<[string, string]> = [
      [":method", "POST"],
      [":path", "/runtime.v1.RuntimeService/Version"],
      [":authority", "localhost"],
      ["content-type", "application/grpc"],
    ];
    for (const chunk of [0, 1, 5, 9, 10]) {
      const { out, rw } = rewrite(input, chunk);
      const v = serverView(out);
      expect(v.blocks).toEqual([want, [...want, ["grpc-timeout", "1S"]]]);
      expect(v.tableSize).toBe(0); // the re-encoding never adds to the server's table
      expect(v.frames.map((f) => [f.type, f.flags, f.stream])).toEqual([
        [4, 0, 0],
        [1, 4, 1],
        [0, 1, 1],
        [1, 4, 3],
        [0, 1, 3],
      ]);
      expect(v.frames[2]!.payload).toEqual(grpcData(1).subarray(9));
      expect(rw.rewritten).toBe(2);
    }
  });

  test("after the first rewrite, blocks that need none are re-encoded too (the tables diverged)", () => {
    const input = Buffer.concat([PREFACE, headers(1, request("localhost")), headers(3, request("/x.sock")), headers(5, block({ index: 62 + 6 }))]);
    const { out, rw } = rewrite(input);
    // the third block refers to the first request's :path, now behind the second request's four entries
    const v = serverView(out);
    expect(v.blocks.map((b) => b.find(([n]) => n === ":authority"))).toEqual([[":authority", "localhost"], [":authority", "localhost"], undefined]);
    expect(v.blocks[2]).toEqual([[":path", "/runtime.v1.RuntimeService/Version"]]);
    expect(v.frames[0]!.payload).toEqual(request("localhost")); // verbatim until the first rewrite
    expect([rw.rewritten, rw.reencoding]).toEqual([1, true]);
  });

  test("padding, priority, CONTINUATION frames, END_STREAM and size updates are honoured", () => {
    const b = block({ sizeUpdate: 0 }, { sizeUpdate: 30 }, [":authority", "/s.sock"], ["x-big", "v".repeat(20_000)]);
    const payload = Buffer.concat([Buffer.from([3]), Buffer.from("8000000710", "hex"), b.subarray(0, 100), Buffer.alloc(3)]);
    const input = Buffer.concat([
      PREFACE,
      frame(0x1, 0x8 | 0x20 | 0x1, 1, payload), // PADDED | PRIORITY | END_STREAM, no END_HEADERS
      frame(0x9, 0, 1, b.subarray(100, 10_000)),
      frame(0x9, 0x4, 1, b.subarray(10_000)),
    ]);
    for (const chunk of [0, 4096]) {
      const v = serverView(rewrite(input, chunk).out);
      expect(v.blocks).toEqual([
        [
          [":authority", "localhost"],
          ["x-big", "v".repeat(20_000)],
        ],
      ]);
      const [h, ...conts] = v.frames;
      expect([h!.type, h!.flags, h!.payload.subarray(0, 5).toString("hex")]).toEqual([1, 0x20 | 0x1, "8000000710"]);
      expect(conts.map((f) => [f.type, f.flags, f.stream])).toEqual([[9, 0x4, 1]]);
      expect(h!.payload.subarray(5, 7).toString("hex")).toBe("203e"); // both size updates forwarded
    }
  });

  test("input that is not HTTP/2 with prior knowledge passes through", () => {
    const input = Buffer.from("GET / HTTP/1.1\r\nHost: /x.sock\r\n\r\n");
    expect(rewrite(input, 3).out).toEqual(input);
  });

  test.each([
    ["CONTINUATION without HEADERS", Buffer.concat([PREFACE, frame(0x9, 0x4, 1, block(["a", "b"]))]), "CONTINUATION without HEADERS"],
    ["an interrupted header block", Buffer.concat([PREFACE, headers(1, block(["a", "b"]), 0), grpcData(1)]), "interrupted"],
    ["a malformed header block", Buffer.concat([PREFACE, headers(1, Buffer.from("80", "hex"))]), "hpack: index 0"],
    ["padding longer than the frame", Buffer.concat([PREFACE, frame(0x1, 0x8 | 0x4, 1, Buffer.from([9, 0x82]))]), "padding"],
  ])("%s is refused", (_what, input, message) => {
    expect(() => rewrite(input)).toThrow(message);
  });
});
