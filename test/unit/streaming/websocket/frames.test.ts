import { describe, expect, test } from "bun:test";
import {
  CloseCode,
  Opcode,
  WsFrameParser,
  WsProtocolError,
  acceptKey,
  closePayload,
  encodeFrame,
  parseClosePayload,
} from "../../../../src/streaming/websocket/frames.ts";

const mask = Buffer.from([1, 2, 3, 4]);
const server = () => new WsFrameParser({ requireMask: true, maxPayload: 1 << 20 });

describe("RFC 6455 frames", () => {
  test("the accept key of RFC 6455 section 1.3", () => {
    expect(acceptKey("dGhlIHNhbXBsZSBub25jZQ==")).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });

  test("masked client frames unmask; 7-bit, 16-bit and 64-bit lengths", () => {
    for (const len of [0, 5, 125, 126, 65535, 65536, 200_000]) {
      const payload = Buffer.alloc(len, 0x5a);
      const wire = encodeFrame(Opcode.BINARY, payload, { mask });
      expect(wire[1]! & 0x80).toBe(0x80);
      if (len >= 8) expect(wire.includes(payload.subarray(0, 8))).toBe(false); // masked on the wire
      const [f] = server().push(wire);
      expect({ len: f!.payload.length, same: f!.payload.equals(payload), op: f!.opcode, fin: f!.fin }).toEqual({ len, same: true, op: 2, fin: true });
    }
  });

  test("server frames are unmasked and parse byte by byte", () => {
    const wire = Buffer.concat([encodeFrame(Opcode.TEXT, Buffer.from("hi"), { fin: false }), encodeFrame(Opcode.CONTINUATION, Buffer.from("!"))]);
    expect(wire.subarray(0, 4).toString("hex")).toBe("01026869");
    const p = new WsFrameParser({ requireMask: false, maxPayload: 100 });
    const got = [];
    for (const b of wire) got.push(...p.push(Buffer.from([b])));
    expect(got.map((f) => [f.opcode, f.fin, f.payload.toString()])).toEqual([
      [1, false, "hi"],
      [0, true, "!"],
    ]);
  });

  test("protocol violations fail with the right close code", () => {
    const code = (wire: Buffer, max = 1 << 20) => {
      try {
        new WsFrameParser({ requireMask: true, maxPayload: max }).push(wire);
        return 0;
      } catch (e) {
        return e instanceof WsProtocolError ? e.code : -1;
      }
    };
    expect(code(encodeFrame(Opcode.BINARY, Buffer.from("x")))).toBe(CloseCode.PROTOCOL_ERROR); // unmasked
    expect(code(encodeFrame(Opcode.PING, Buffer.alloc(126), { mask }))).toBe(CloseCode.PROTOCOL_ERROR); // long control
    expect(code(encodeFrame(Opcode.PING, Buffer.alloc(1), { mask, fin: false }))).toBe(CloseCode.PROTOCOL_ERROR); // fragmented control
    const rsv = encodeFrame(Opcode.BINARY, Buffer.from("x"), { mask });
    rsv[0] = rsv[0]! | 0x40;
    expect(code(rsv)).toBe(CloseCode.PROTOCOL_ERROR);
    expect(code(encodeFrame(3, Buffer.alloc(0), { mask }))).toBe(CloseCode.PROTOCOL_ERROR); // reserved opcode
    expect(code(encodeFrame(Opcode.BINARY, Buffer.alloc(2000), { mask }), 1000)).toBe(CloseCode.TOO_BIG);
  });

  test("close payloads", () => {
    expect(parseClosePayload(closePayload(1000, "bye"))).toEqual({ code: 1000, reason: "bye" });
    expect(parseClosePayload(Buffer.alloc(0))).toEqual({ code: 1005, reason: "" });
    expect(() => parseClosePayload(Buffer.from([3]))).toThrow(WsProtocolError);
    expect(() => parseClosePayload(closePayload(1005))).toThrow("invalid close code");
  });
});
