// HPACK against the examples of RFC 7541 Appendix C, plus the error cases of §5 and §4.2.
import { describe, expect, test } from "bun:test";
import { HUFFMAN_CODES, HUFFMAN_LENGTHS, huffmanDecode } from "../../../src/cri/hpack-huffman.ts";
import { encodeHeaderBlock, HpackDecoder, type HeaderField } from "../../../src/cri/hpack.ts";

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");
const pairs = (fields: HeaderField[]) => fields.map((f) => [f.name, f.value]);
const field = (name: string, value: string, sensitive = false): HeaderField => ({ name, value, sensitive });

interface Step {
  block: string;
  headers: Array<[string, string]>;
  table: Array<[string, string]>;
  size: number;
}

function series(tableSize: number, steps: Step[]) {
  const d = new HpackDecoder(tableSize);
  for (const s of steps) {
    const out = d.decode(hex(s.block));
    expect(pairs(out.fields)).toEqual(s.headers);
    expect(d.entries()).toEqual(s.table);
    expect(d.size).toBe(s.size);
  }
}

const REQ1: Array<[string, string]> = [
  [":method", "GET"],
  [":scheme", "http"],
  [":path", "/"],
  [":authority", "www.example.com"],
];
const REQ2: Array<[string, string]> = [...REQ1, ["cache-control", "no-cache"]];
const REQ3: Array<[string, string]> = [
  [":method", "GET"],
  [":scheme", "https"],
  [":path", "/index.html"],
  [":authority", "www.example.com"],
  ["custom-key", "custom-value"],
];
const REQ_TABLES: Array<Array<[string, string]>> = [
  [[":authority", "www.example.com"]],
  [
    ["cache-control", "no-cache"],
    [":authority", "www.example.com"],
  ],
  [
    ["custom-key", "custom-value"],
    ["cache-control", "no-cache"],
    [":authority", "www.example.com"],
  ],
];
const DATE1 = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2 = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOC = "https://www.example.com";
const COOKIE = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const RESP1: Array<[string, string]> = [
  [":status", "302"],
  ["cache-control", "private"],
  ["date", DATE1],
  ["location", LOC],
];
const RESP2: Array<[string, string]> = [
  [":status", "307"],
  ["cache-control", "private"],
  ["date", DATE1],
  ["location", LOC],
];
const RESP3: Array<[string, string]> = [
  [":status", "200"],
  ["cache-control", "private"],
  ["date", DATE2],
  ["location", LOC],
  ["content-encoding", "gzip"],
  ["set-cookie", COOKIE],
];
const RESP_TABLES: Array<Array<[string, string]>> = [
  [
    ["location", LOC],
    ["date", DATE1],
    ["cache-control", "private"],
    [":status", "302"],
  ],
  [
    [":status", "307"],
    ["location", LOC],
    ["date", DATE1],
    ["cache-control", "private"],
  ],
  [
    ["set-cookie", COOKIE],
    ["content-encoding", "gzip"],
    ["date", DATE2],
  ],
];

describe("HpackDecoder (RFC 7541 Appendix C)", () => {
  test("C.3: requests without Huffman coding", () => {
    series(4096, [
      { block: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", headers: REQ1, table: REQ_TABLES[0]!, size: 57 },
      { block: "8286 84be 5808 6e6f 2d63 6163 6865", headers: REQ2, table: REQ_TABLES[1]!, size: 110 },
      { block: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65", headers: REQ3, table: REQ_TABLES[2]!, size: 164 },
    ]);
  });

  test("C.4: requests with Huffman coding", () => {
    series(4096, [
      { block: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", headers: REQ1, table: REQ_TABLES[0]!, size: 57 },
      { block: "8286 84be 5886 a8eb 1064 9cbf", headers: REQ2, table: REQ_TABLES[1]!, size: 110 },
      { block: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf", headers: REQ3, table: REQ_TABLES[2]!, size: 164 },
    ]);
  });

  test("C.5: responses without Huffman coding, with evictions (table size 256)", () => {
    series(256, [
      {
        block: `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
                2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
        headers: RESP1,
        table: RESP_TABLES[0]!,
        size: 222,
      },
      { block: "4803 3330 37c1 c0bf", headers: RESP2, table: RESP_TABLES[1]!, size: 222 },
      {
        block: `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
                54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
                5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
        headers: RESP3,
        table: RESP_TABLES[2]!,
        size: 215,
      },
    ]);
  });

  test("C.6: responses with Huffman coding, with evictions (table size 256)", () => {
    series(256, [
      {
        block: `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
                2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
        headers: RESP1,
        table: RESP_TABLES[0]!,
        size: 222,
      },
      { block: "4883 640e ffc1 c0bf", headers: RESP2, table: RESP_TABLES[1]!, size: 222 },
      {
        block: `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
                77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
                9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
        headers: RESP3,
        table: RESP_TABLES[2]!,
        size: 215,
      },
    ]);
  });

  test("C.2: literal without indexing and never-indexed leave the table alone", () => {
    const d = new HpackDecoder();
    expect(d.decode(hex("040c 2f73 616d 706c 652f 7061 7468")).fields).toEqual([field(":path", "/sample/path")]);
    expect(d.decode(hex("1008 7061 7373 776f 7264 0673 6563 7265 74")).fields).toEqual([field("password", "secret", true)]);
    expect(d.decode(hex("82")).fields).toEqual([field(":method", "GET")]);
    expect(d.size).toBe(0);
  });

  test("a block can be decoded from a slice of a larger buffer", () => {
    const buf = Buffer.concat([hex("ffff"), hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"), hex("ff")]);
    expect(pairs(new HpackDecoder().decode(buf, 2, buf.length - 1).fields)).toEqual(REQ1);
  });
});

describe("dynamic table size updates (RFC 7541 §4.2, §6.3)", () => {
  test("an update shrinks the table, evicting the oldest entries, and is reported", () => {
    const d = new HpackDecoder();
    d.decode(hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"));
    d.decode(hex("8286 84be 5808 6e6f 2d63 6163 6865"));
    expect(d.size).toBe(110);
    const out = d.decode(hex("3f22 be")); // size update to 31 + 34 = 65, then index 62
    expect(out.sizeUpdates).toEqual([65]);
    expect(d.entries()).toEqual([["cache-control", "no-cache"]]);
    expect(pairs(out.fields)).toEqual([["cache-control", "no-cache"]]);
    expect(d.decode(hex("20 3fe1 1f")).sizeUpdates).toEqual([0, 4096]);
    expect([d.size, d.maxSize, d.entries().length]).toEqual([0, 4096, 0]);
  });

  test("an entry larger than the table empties it and is not added", () => {
    const d = new HpackDecoder(40);
    d.decode(hex("4003 6162 6303 7879 7a")); // abc: xyz (38 octets)
    expect(d.entries()).toEqual([["abc", "xyz"]]);
    d.decode(hex("4004 6162 6364 0578 797a 7a7a")); // abcd: xyzzz (41 octets)
    expect([d.size, d.entries().length]).toEqual([0, 0]);
  });

  test("an update after a field, or above the limit, is a compression error", () => {
    expect(() => new HpackDecoder().decode(hex("82 20"))).toThrow("size update after a header field");
    expect(() => new HpackDecoder(4096, 4096).decode(hex("3fe2 1f"))).toThrow("exceeds 4096");
  });
});

describe("malformed blocks", () => {
  test.each([
    ["index 0", "80", "index 0"],
    ["an index past the table", "be", "not in the table"],
    ["a truncated integer", "ff", "truncated integer"],
    ["an integer too large", "ffff ffff ffff 7f", "integer too large"],
    ["a string past the end", "400a 6375 7374", "past the end"],
    ["a missing value", "4003 6162 63", "truncated string"],
    ["huffman padding longer than 7 bits", "0081 1f82 1fff", "padding"],
    ["huffman padding that is not all ones", "0081 1f81 18", "padding"],
    ["EOS in a huffman string", "0081 1f84 ffff ffff", "EOS"],
  ])("%s", (_what, block, message) => {
    expect(() => new HpackDecoder().decode(hex(block))).toThrow(message);
  });
});

describe("Huffman code (RFC 7541 Appendix B)", () => {
  test("codes derived from the lengths match rows of the RFC table", () => {
    const rows: Array<[number, number, number]> = [
      [0, 0x1ff8, 13],
      [1, 0x7fffd8, 23],
      [10, 0x3ffffffc, 30],
      [32, 0x14, 6],
      [33, 0x3f8, 10],
      [48, 0x0, 5],
      [97, 0x3, 5],
      [122, 0x7b, 7],
      [127, 0xffffffc, 28],
      [128, 0xfffe6, 20],
      [199, 0x1ffffec, 25],
      [255, 0x3ffffee, 26],
      [256, 0x3fffffff, 30],
    ];
    expect(rows.map(([s]) => [s, HUFFMAN_CODES[s], HUFFMAN_LENGTHS[s]])).toEqual(rows);
  });

  test("decodes the strings of C.4 and C.6", () => {
    const cases: Array<[string, string]> = [
      ["f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com"],
      ["25a8 49e9 5bb8 e8b4 bf", "custom-value"],
      ["d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff", DATE1],
      ["9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3", LOC],
    ];
    const dst = Buffer.alloc(128);
    for (const [h, want] of cases) {
      const src = hex(h);
      expect(dst.toString("latin1", 0, huffmanDecode(src, 0, src.length, dst))).toBe(want);
    }
  });

  test("every byte value survives a round trip through an encoder built from the table", () => {
    const bytes = Array.from({ length: 256 }, (_, i) => i);
    const src = huffmanEncode(bytes);
    const dst = Buffer.alloc(512);
    expect([...dst.subarray(0, huffmanDecode(src, 0, src.length, dst))]).toEqual(bytes);
  });
});

describe("encodeHeaderBlock", () => {
  test("writes the RFC 7541 C.2 representations byte for byte", () => {
    expect(encodeHeaderBlock([field(":path", "/sample/path")]).toString("hex")).toBe("040c2f73616d706c652f70617468");
    expect(encodeHeaderBlock([field("password", "secret", true)]).toString("hex")).toBe("100870617373776f726406736563726574");
    expect(encodeHeaderBlock([field(":method", "GET")]).toString("hex")).toBe("82");
  });

  test("multi-byte integers, static names past index 15, and size updates", () => {
    const long = "x".repeat(200);
    const out = encodeHeaderBlock([field("user-agent", long)], [0, 4096]);
    expect(out.subarray(0, 7).toString("hex")).toBe("203fe11f0f2b7f");
    expect(out.subarray(7, 8)[0]).toBe(200 - 127);
    expect(out.length).toBe(8 + 200);
  });

  test("round-trips through a decoder without adding dynamic table entries", () => {
    const fields = [
      field(":method", "POST"),
      field(":scheme", "http"),
      field(":path", "/runtime.v1.RuntimeService/Version"),
      field(":authority", "localhost"),
      field("content-type", "application/grpc"),
      field("te", "trailers"),
      field("grpc-timeout", "1999m"),
      field("authorization", "Bearer x", true),
      field("bin-bin", "\u0000\u00ff\u0080"),
    ];
    const d = new HpackDecoder();
    const out = d.decode(encodeHeaderBlock(fields, [4096]));
    expect(out).toEqual({ fields, sizeUpdates: [4096] });
    expect(d.size).toBe(0);
  });
});

// --- helpers ---

function huffmanEncode(bytes: number[]): Buffer {
  let bits = "";
  for (const b of bytes) bits += HUFFMAN_CODES[b]!.toString(2).padStart(HUFFMAN_LENGTHS[b]!, "0");
  bits += "1".repeat((8 - (bits.length % 8)) % 8);
  return Buffer.from(bits.match(/.{8}/g)!.map((s) => parseInt(s, 2)));
}
