import { describe, expect, test } from "bun:test";
import zlib from "node:zlib";
import { SPDY3_DICTIONARY } from "../../../../src/streaming/spdy/dictionary.ts";
import { HeaderCompressor, HeaderDecompressor, decodeHeaderBlock, encodeHeaderBlock, spdyHeaders } from "../../../../src/streaming/spdy/header-block.ts";

function adler32(b: Buffer): number {
  let a = 1,
    s = 0;
  for (const x of b) {
    a = (a + x) % 65521;
    s = (s + a) % 65521;
  }
  return ((s << 16) | a) >>> 0;
}

describe("SPDY/3 header blocks", () => {
  test("the dictionary is the spec's (1423 bytes, Adler-32 e3c6a7c2)", () => {
    expect(SPDY3_DICTIONARY.length).toBe(1423);
    expect(adler32(SPDY3_DICTIONARY).toString(16)).toBe("e3c6a7c2");
    expect(SPDY3_DICTIONARY.subarray(0, 11).toString("latin1")).toBe("\0\0\0\x07options");
    expect(SPDY3_DICTIONARY.subarray(-9).toString("latin1")).toBe(",*,enq=0.");
  });

  test("name/value blocks: lower-case names, NUL-joined values", () => {
    const raw = encodeHeaderBlock(spdyHeaders({ StreamType: "stdout", multi: ["a", "b"] }));
    expect(raw.toString("latin1")).toBe("\0\0\0\x02\0\0\0\x0astreamtype\0\0\0\x06stdout\0\0\0\x05multi\0\0\0\x03a\0b");
    expect(decodeHeaderBlock(raw)).toEqual(
      new Map([
        ["streamtype", ["stdout"]],
        ["multi", ["a", "b"]],
      ]),
    );
    expect(() => decodeHeaderBlock(raw.subarray(0, raw.length - 1))).toThrow("truncated");
  });

  test("one zlib context per direction: blocks round-trip in order, each ends in a sync flush", async () => {
    const c = new HeaderCompressor();
    const d = new HeaderDecompressor();
    const blocks = [
      spdyHeaders({ streamtype: "error" }),
      spdyHeaders({ streamtype: "stdin" }),
      spdyHeaders({ streamtype: "data", port: "8080", requestid: "0" }),
      new Map(),
    ];
    const wire = await Promise.all(blocks.map((b) => c.compress(b)));
    // zlib header announces the dictionary (FDICT) with its Adler-32
    expect(wire[0]![0]).toBe(0x78);
    expect(wire[0]![1]! & 0x20).toBe(0x20);
    expect(wire[0]!.readUInt32BE(2).toString(16)).toBe("e3c6a7c2");
    for (const w of wire) expect(w.subarray(-4).toString("hex")).toBe("0000ffff");
    expect(await Promise.all(wire.map((w) => d.decompress(w)))).toEqual(blocks);
    // later blocks depend on the shared context: a fresh inflater cannot read them alone
    await expect(new HeaderDecompressor().decompress(wire[1]!)).rejects.toThrow();
    c.close();
    d.close();
  });

  test("interoperates with a plain zlib stream primed with the dictionary", async () => {
    const block = encodeHeaderBlock(spdyHeaders({ streamtype: "resize" }));
    const deflated = zlib.deflateSync(block, { dictionary: SPDY3_DICTIONARY });
    expect(await new HeaderDecompressor().decompress(deflated)).toEqual(spdyHeaders({ streamtype: "resize" }));
    const ours = await new HeaderCompressor().compress(spdyHeaders({ streamtype: "resize" }));
    expect(zlib.inflateSync(ours, { dictionary: SPDY3_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH })).toEqual(Buffer.from(block));
  });

  test("garbage and zlib bombs are rejected", async () => {
    await expect(new HeaderDecompressor().decompress(Buffer.from("not zlib at all"))).rejects.toThrow("does not inflate");
    const bomb = zlib.deflateSync(Buffer.alloc(1 << 20), { dictionary: SPDY3_DICTIONARY });
    await expect(new HeaderDecompressor().decompress(bomb)).rejects.toThrow("larger than");
  });
});
