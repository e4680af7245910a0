import { describe, expect, test } from "bun:test";
import {
  FLAG_FIN,
  FrameParser,
  SpdyProtocolError,
  dataFrame,
  goAwayFrame,
  parseFrame,
  pingFrame,
  rstStreamFrame,
  settingsFrame,
  synReplyFrame,
  synStreamFrame,
  windowUpdateFrame,
  headersFrame,
} from "../../../../src/streaming/spdy/frames.ts";

describe("SPDY/3.1 frames", () => {
  test("every frame kind survives encode → parse", () => {
    const block = Buffer.from("compressed-bytes");
    const frames = [
      dataFrame(5, Buffer.from("hello"), true),
      synStreamFrame(7, block, { flags: FLAG_FIN, associatedId: 3, priority: 5 }),
      synReplyFrame(7, block, FLAG_FIN),
      headersFrame(9, block),
      rstStreamFrame(7, 5),
      settingsFrame([
        { id: 7, value: 65536, flags: 1 },
        { id: 4, value: 100 },
      ]),
      pingFrame(3),
      goAwayFrame(11, 1),
      windowUpdateFrame(0, 1 << 20),
    ];
    expect(frames.map((f) => parseFrame(f))).toEqual([
      { kind: "data", streamId: 5, flags: FLAG_FIN, data: Buffer.from("hello") },
      { kind: "syn_stream", streamId: 7, associatedId: 3, priority: 5, flags: FLAG_FIN, headerBlock: block },
      { kind: "syn_reply", streamId: 7, flags: FLAG_FIN, headerBlock: block },
      { kind: "headers", streamId: 9, flags: 0, headerBlock: block },
      { kind: "rst_stream", streamId: 7, status: 5 },
      {
        kind: "settings",
        flags: 0,
        entries: [
          { flags: 1, id: 7, value: 65536 },
          { flags: 0, id: 4, value: 100 },
        ],
      },
      { kind: "ping", id: 3 },
      { kind: "goaway", lastGoodStreamId: 11, status: 1 },
      { kind: "window_update", streamId: 0, delta: 1 << 20 },
    ]);
  });

  test("wire layout matches the spec: control bit, version 3, type, flags, 24-bit length", () => {
    expect(pingFrame(1).toString("hex")).toBe("80030006" + "00000004" + "00000001");
    expect(dataFrame(1, Buffer.from("ab"), true).toString("hex")).toBe("00000001" + "01000002" + "6162");
    expect(rstStreamFrame(3, 5).toString("hex")).toBe("80030003" + "00000008" + "00000003" + "00000005");
  });

  test("the parser reassembles frames split at any byte", () => {
    const wire = Buffer.concat([dataFrame(1, Buffer.alloc(70_000, 7)), pingFrame(9), dataFrame(3, Buffer.alloc(0), true)]);
    const p = new FrameParser();
    const got = [];
    for (let i = 0; i < wire.length; i += 997) got.push(...p.push(wire.subarray(i, i + 997)));
    expect(got.map((f) => f.kind)).toEqual(["data", "ping", "data"]);
    expect(got[0]!.kind === "data" && got[0]!.data.equals(Buffer.alloc(70_000, 7))).toBe(true);
    expect(p.pending).toBe(0);
  });

  test("oversized and truncated frames are protocol errors; other versions pass as unknown", () => {
    expect(() => new FrameParser(1024).push(dataFrame(1, Buffer.alloc(2048)))).toThrow(SpdyProtocolError);
    const shortRst = Buffer.from("8003000300000004" + "00000001", "hex");
    expect(() => parseFrame(shortRst)).toThrow(SpdyProtocolError);
    const v2 = Buffer.from("80020006" + "00000004" + "00000001", "hex");
    expect(parseFrame(v2).kind).toBe("unknown");
  });
});
