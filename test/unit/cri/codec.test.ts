// The generated codec (src/gen/runtime/v1/api_codec.ts) against protobuf-es, on random messages of
// every CRI message type: encode byte for byte equal to toBinary, decode equal to fromBinary, JSON
// equal to toJson/fromJson; plus unknown fields, packed/unpacked, merging, truncated and garbage.
import { describe, expect, test } from "bun:test";
import { ScalarType, create, fromBinary, fromJson, toBinary, toJson, type DescField, type DescMessage, type JsonValue, type Message } from "@bufbuild/protobuf";
import * as pb from "../../../src/gen/runtime/v1/api_pb.ts";
import * as codecs from "../../../src/gen/runtime/v1/api_codec.ts";
import * as fx from "../../fixtures/codec/gen/fixture/v1/fixture_pb.ts";
import * as fxCodecs from "../../fixtures/codec/gen/fixture/v1/fixture_codec.ts";
import { type Codec, DecodeError } from "../../../src/util/protowire.ts";
import { bridge } from "../../../src/cri/bridge.ts";
import { GrpcStatus, Status } from "../../../src/cri/grpc-server.ts";

type AnyCodec = Codec<Message, unknown>;

const messagesOf = (file: { messages: DescMessage[] }) => {
  const all: DescMessage[] = [];
  const walk = (m: DescMessage) => {
    all.push(m);
    for (const n of m.nestedMessages) walk(n);
  };
  for (const m of file.messages) walk(m);
  return all;
};
const messages = messagesOf(pb.file_runtime_v1_api);
// the generator's fixture: oneofs, proto3 optional, every scalar type, maps with non-string keys
const fixtureMessages = messagesOf(fx.file_fixture_v1_fixture);

const codecOf = (m: DescMessage): AnyCodec => {
  const [mod, pkg] = m.typeName.startsWith("fixture.") ? [fxCodecs, "fixture.v1."] : [codecs, "runtime.v1."];
  const c = (mod as unknown as Record<string, AnyCodec>)[`${m.typeName.slice(pkg.length).replaceAll(".", "_")}Codec`];
  if (!c) throw new Error(`no codec for ${m.typeName}`);
  return c;
};

// a seeded PRNG, so that a failure is reproducible
let seed = 0x2f6b3a1d;
const rnd = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const int = (n: number) => Math.floor(rnd() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

const STRINGS = [
  "",
  "a",
  "io.kubernetes.pod.name",
  "ünïcödé ☃",
  "emoji 🚀🚀",
  "x".repeat(130),
  "é".repeat(70),
  "long ".repeat(400),
  "__proto__",
  "constructor",
];
function randString(): string {
  if (rnd() < 0.5) return pick(STRINGS);
  let s = "";
  const n = int(40);
  for (let i = 0; i < n; i++) s += String.fromCharCode(rnd() < 0.9 ? 32 + int(95) : 0xa0 + int(0x700));
  return s;
}
function randInt64(unsigned: boolean): bigint {
  const r = rnd();
  if (r < 0.15) return 0n;
  if (r < 0.3) return BigInt(int(300));
  if (r < 0.4) return unsigned ? 2n ** 64n - 1n : pick([2n ** 63n - 1n, -(2n ** 63n), -1n]);
  if (r < 0.5) return unsigned ? 2n ** 32n + BigInt(int(1000)) : -BigInt(int(1e9)) - 1n;
  const v = BigInt.asUintN(64, (BigInt(int(2 ** 32)) << 32n) | BigInt(int(2 ** 32)));
  return unsigned ? v : BigInt.asIntN(64, v);
}
function randScalar(t: ScalarType): unknown {
  switch (t) {
    case ScalarType.STRING:
      return randString();
    case ScalarType.BOOL:
      return rnd() < 0.5;
    case ScalarType.BYTES:
      return rnd() < 0.3 ? new Uint8Array(0) : new Uint8Array(Array.from({ length: int(200) }, () => int(256)));
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return pick([0, 1, -1, 127, 128, 2147483647, -2147483648, int(1e6) - 5e5]);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return pick([0, 1, 127, 128, 16384, 4294967295, int(1e9)]);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return randInt64(false);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return randInt64(true);
    default:
      return rnd() * 1e6 - 5e5;
  }
}
function randEnum(f: { enum: { values: readonly { number: number }[] } }): number {
  return rnd() < 0.1 ? 77 : pick(f.enum.values).number;
}

/** A random message of type `m`: every kind of field, sometimes unset, nested to `depth`. */
function randMessage(m: DescMessage, depth: number): Message {
  const msg = create(m) as unknown as Record<string, unknown>;
  for (const f of m.fields) fill(msg, f, depth);
  return msg as unknown as Message;
}
function fill(msg: Record<string, unknown>, f: DescField, depth: number) {
  if (rnd() < 0.25) return; // left at its default
  const many = () => Array.from({ length: rnd() < 0.2 ? 0 : 1 + int(4) }, (_, i) => i);
  if (f.oneof) {
    // the last field of the oneof filled wins, as setting it would
    const value =
      f.fieldKind === "message"
        ? randMessage(f.message, Math.max(0, depth - 1))
        : f.fieldKind === "enum"
          ? randEnum(f)
          : f.fieldKind === "scalar"
            ? randScalar(f.scalar)
            : undefined;
    msg[f.oneof.localName] = { case: f.localName, value };
    return;
  }
  switch (f.fieldKind) {
    case "scalar":
      msg[f.localName] = randScalar(f.scalar);
      break;
    case "enum":
      msg[f.localName] = randEnum(f);
      break;
    case "message":
      if (depth > 0) msg[f.localName] = randMessage(f.message, depth - 1);
      break;
    case "list":
      if (f.listKind === "message") {
        if (depth > 0) msg[f.localName] = many().map(() => randMessage(f.message, depth - 1));
      } else if (f.listKind === "enum") msg[f.localName] = many().map(() => randEnum(f));
      else msg[f.localName] = many().map(() => randScalar(f.scalar));
      break;
    case "map": {
      const rec: Record<string, unknown> = {};
      for (const _ of many()) {
        const k = String(randScalar(f.mapKey));
        const v =
          f.mapKind === "message"
            ? depth > 0
              ? randMessage(f.message, depth - 1)
              : create(f.message)
            : f.mapKind === "enum"
              ? randEnum(f)
              : randScalar(f.scalar);
        Object.defineProperty(rec, k, { value: v, enumerable: true, configurable: true, writable: true });
      }
      msg[f.localName] = rec;
      break;
    }
  }
}

/** The message as a handler would return it: no $typeName, unset and zero fields left out. */
function toInit(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(toInit);
  if (v instanceof Uint8Array || v === null || typeof v !== "object") return v;
  const out: Record<string, unknown> = {};
  const isMessage = "$typeName" in v; // else a map: its zero values are entries
  for (const [k, x] of Object.entries(v)) {
    if (k === "$typeName" || x === undefined) continue;
    if (isMessage && (x === "" || x === 0 || x === 0n || x === false || (Array.isArray(x) && x.length === 0))) {
      if (rnd() < 0.5) continue;
    }
    Object.defineProperty(out, k, { value: toInit(x), enumerable: true, configurable: true, writable: true });
  }
  return out;
}

/** protobuf-es's decoded message without the unknown fields it keeps (we skip them). */
function noUnknown(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(noUnknown);
  if (v instanceof Uint8Array || v === null || typeof v !== "object") return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v))
    if (k !== "$unknown") Object.defineProperty(out, k, { value: noUnknown(x), enumerable: true, configurable: true, writable: true });
  return out;
}

// CODEC_TEST_ROUNDS=300 for a longer search
const ROUNDS = Number(process.env.CODEC_TEST_ROUNDS ?? 12);

describe("every CRI message type against protobuf-es", () => {
  test("the generated codec covers every message type", () => {
    expect(messages.length).toBeGreaterThan(160);
    for (const m of messages) expect(codecOf(m).typeName).toBe(m.typeName);
  });

  test.each([...messages, ...fixtureMessages].map((m) => [m.typeName, m] as const))("%s", (_name, m) => {
    const c = codecOf(m);
    for (let i = 0; i < ROUNDS; i++) {
      const msg = randMessage(m, 3);
      const want = toBinary(m, msg);
      // encode: a full message and an init shape, byte for byte
      expect(c.encode(msg)).toEqual(want);
      const init = toInit(msg);
      expect(c.encode(init)).toEqual(toBinary(m, create(m, init as never)));
      // decode
      expect(c.decode(want)).toEqual(fromBinary(m, want));
      // the same message twice: last one wins, messages merge, lists append
      const other = toBinary(m, randMessage(m, 3));
      const both = new Uint8Array([...want, ...other]);
      expect(c.decode(both)).toEqual(fromBinary(m, both));
      // JSON, both ways
      const json = toJson(m, msg);
      expect(JSON.stringify(c.toJson(msg))).toBe(JSON.stringify(json));
      // (the init shape may lack a zero a proto3 `optional` field had: compare with its own message)
      expect(JSON.stringify(c.toJson(init))).toBe(JSON.stringify(toJson(m, create(m, init as never))));
      expect(c.fromJson(json)).toEqual(fromJson(m, json));
    }
    // the empty message
    expect(c.encode({})).toEqual(new Uint8Array(0));
    expect(c.decode(new Uint8Array(0))).toEqual(create(m));
  });
});

describe("hand-written cases", () => {
  const C = codecs.ContainerCodec;
  const sample = () =>
    create(pb.ContainerSchema, {
      id: "c1",
      podSandboxId: "p1",
      metadata: { name: "app", attempt: 2 },
      image: { image: "busybox", annotations: { a: "b" } },
      state: pb.ContainerState.CONTAINER_RUNNING,
      createdAt: 1_700_000_000_000_000_000n,
      labels: { x: "1", y: "" },
      annotations: { "io.kubernetes.container.hash": "abc" },
    });

  test("unknown fields of every wire type are skipped, also inside nested messages", () => {
    const bytes = toBinary(pb.ContainerSchema, sample());
    // field 99 varint, 100 fixed64, 101 length-delimited, 102 fixed32, 103 a group holding a varint and a nested group
    const unknown = [0x98, 0x06, 0x96, 0x01, 0xa1, 0x06, 1, 2, 3, 4, 5, 6, 7, 8, 0xaa, 0x06, 3, 0x61, 0x62, 0x63, 0xb5, 0x06, 9, 9, 9, 9];
    const group = [0xbb, 0x06, 0x08, 0x05, 0xc3, 0x06, 0xc4, 0x06, 0xbc, 0x06];
    const withUnknown = new Uint8Array([...unknown, ...bytes, ...group]);
    expect(C.decode(withUnknown)).toEqual(noUnknown(fromBinary(pb.ContainerSchema, withUnknown)) as never);
    expect(C.decode(withUnknown)).toEqual(C.decode(bytes));
    // an unknown field inside the nested metadata (field 3)
    const meta = [0x1a, 9, 0x0a, 3, 0x61, 0x70, 0x70, 0x98, 0x06, 0x96, 0x01];
    expect(C.decode(new Uint8Array(meta)).metadata).toEqual(create(pb.ContainerMetadataSchema, { name: "app" }));
  });

  test("packed and unpacked repeated scalars both decode, and mix", () => {
    const M = pb.LinuxContainerUserSchema; // repeated int64 supplemental_groups = 3
    const packed = toBinary(M, create(M, { supplementalGroups: [1n, 300n, -1n] }));
    expect(packed.slice(0, 2)).toEqual(new Uint8Array([0x1a, 13])); // one packed record (1 + 2 + 10 bytes)
    const unpacked = new Uint8Array([0x18, 1, 0x18, 0xac, 0x02, 0x18, ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]]);
    expect(codecs.LinuxContainerUserCodec.decode(unpacked).supplementalGroups).toEqual([1n, 300n, -1n]);
    expect(codecs.LinuxContainerUserCodec.decode(unpacked)).toEqual(fromBinary(M, unpacked));
    const mixed = new Uint8Array([...unpacked, ...packed]);
    expect(codecs.LinuxContainerUserCodec.decode(mixed).supplementalGroups).toEqual([1n, 300n, -1n, 1n, 300n, -1n]);
    expect(codecs.LinuxContainerUserCodec.encode({ supplementalGroups: [1n, 300n, -1n] })).toEqual(packed);
  });

  test("a field repeated: the last scalar wins, a message merges, a map keeps the last value per key", () => {
    const a = toBinary(pb.ContainerSchema, create(pb.ContainerSchema, { id: "first", metadata: { name: "n" }, labels: { k: "1", j: "x" } }));
    const b = toBinary(pb.ContainerSchema, create(pb.ContainerSchema, { id: "second", metadata: { attempt: 3 }, labels: { k: "2" } }));
    const got = C.decode(new Uint8Array([...a, ...b]));
    expect(got.id).toBe("second");
    expect(got.metadata).toEqual(create(pb.ContainerMetadataSchema, { name: "n", attempt: 3 }));
    expect(got.labels).toEqual({ k: "2", j: "x" });
  });

  test("a map entry missing its key or value gets the zero value; __proto__ is a plain key", () => {
    // labels (field 8): an entry with only a value, one with only a key, one keyed __proto__
    const bytes = new Uint8Array([0x42, 3, 0x12, 1, 0x76, 0x42, 3, 0x0a, 1, 0x6b, 0x42, 13, 0x0a, 9, ...Buffer.from("__proto__"), 0x12, 0]);
    const got = C.decode(bytes);
    expect(got).toEqual(noUnknown(fromBinary(pb.ContainerSchema, bytes)) as never);
    expect(Object.getPrototypeOf(got.labels)).toBe(Object.prototype);
    expect(Object.keys(got.labels)).toEqual(["", "k", "__proto__"]);
  });

  test("a message whose field comes with the wrong wire type skips it, as Go's decoder does", () => {
    // id (field 1) as a varint instead of a string
    expect(C.decode(new Uint8Array([0x08, 5, 0x12, 0])).id).toBe("");
  });

  test("every truncation of a valid message either decodes as protobuf-es does or fails with a DecodeError", () => {
    const bytes = toBinary(pb.ContainerSchema, sample());
    let failures = 0;
    for (let n = 0; n < bytes.length; n++) {
      const cut = bytes.subarray(0, n);
      let want: unknown;
      try {
        want = fromBinary(pb.ContainerSchema, cut);
      } catch {
        want = undefined;
      }
      if (want === undefined) {
        expect(() => C.decode(cut)).toThrow(DecodeError);
        failures++;
      } else expect(C.decode(cut)).toEqual(want as never);
    }
    expect(failures).toBeGreaterThan(bytes.length / 2);
  });

  test("garbage fails with a DecodeError (never another error, never a hang)", () => {
    for (const bytes of [
      [0xff],
      [0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // an over-long varint length
      [0x0a, 5, 0x61],
      [0x00, 0x01], // field number 0
      [0x0f], // wire type 7
      [0x0c], // a stray end-group
      [0x0b, 0x08], // a group never closed
      [0x0a, 2, 0xc3, 0x28], // invalid UTF-8
      [0x1a, 2, 0x0a, 5], // a nested record longer than its parent
    ]) {
      expect(() => C.decode(new Uint8Array(bytes))).toThrow(DecodeError);
    }
    for (let i = 0; i < 2000; i++) {
      const b = new Uint8Array(Array.from({ length: 1 + int(60) }, () => int(256)));
      for (const m of [codecs.ContainerCodec, codecs.PodSandboxConfigCodec, codecs.ListContainersResponseCodec] as AnyCodec[]) {
        try {
          m.decode(b);
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
        }
      }
    }
  });

  test("a handler's out-of-range value fails the encode, as protobuf-es's", () => {
    expect(() => codecs.ContainerMetadataCodec.encode({ attempt: -1 })).toThrow();
    expect(() => codecs.ContainerMetadataCodec.encode({ attempt: 1.5 })).toThrow();
    expect(() => codecs.Int64ValueCodec.encode({ value: 2n ** 63n })).toThrow();
    expect(() => codecs.UInt64ValueCodec.encode({ value: -1n })).toThrow();
  });

  test("enums are api_pb.ts's values", () => {
    for (const [name, e] of [
      ["ContainerState", pb.ContainerState],
      ["PodSandboxState", pb.PodSandboxState],
      ["CgroupDriver", pb.CgroupDriver],
      ["ContainerEventType", pb.ContainerEventType],
      ["MetricType", pb.MetricType],
    ] as const) {
      const ours = (codecs as unknown as Record<string, Record<string, number>>)[name]!;
      for (const [k, v] of Object.entries(e)) if (typeof v === "number") expect(ours[k]).toBe(v);
    }
  });

  test("fromJson: unknown keys fail unless ignored; proto field names, numbers for 64-bit, enum numbers are accepted", () => {
    const R = codecs.LinuxContainerResourcesCodec;
    expect(() => R.fromJson({ cpuShares: "2", bogus: 1 })).toThrow();
    expect(R.fromJson({ cpuShares: "2", bogus: 1 }, { ignoreUnknownFields: true })).toEqual(create(pb.LinuxContainerResourcesSchema, { cpuShares: 2n }));
    expect(R.fromJson({ cpu_shares: 2, memory_limit_in_bytes: "-1", unified: { "memory.high": "max" } })).toEqual(
      create(pb.LinuxContainerResourcesSchema, { cpuShares: 2n, memoryLimitInBytes: -1n, unified: { "memory.high": "max" } }),
    );
    expect(codecs.ContainerFilterCodec.fromJson({ state: { state: 1 } }).state?.state).toBe(pb.ContainerState.CONTAINER_RUNNING);
    expect(() => codecs.ContainerFilterCodec.fromJson({ state: { state: "NOPE" } })).toThrow();
    expect(() => R.fromJson({ cpuShares: "x" })).toThrow();
    expect(() => R.fromJson([] as unknown as JsonValue)).toThrow();
  });
});

describe("the bridge on the generated codec", () => {
  const call = (path: string) => ({ path, header: () => undefined, deadline: Number.POSITIVE_INFINITY, signal: new AbortController().signal });
  const rt = bridge(
    codecs.RuntimeService,
    {
      version: async (req: pb.VersionRequest) => ({ version: req.version, runtimeName: "cri-o", runtimeVersion: "1" }),
      listContainers: async (req: pb.ListContainersRequest) => ({
        containers: [{ id: req.filter?.id ?? "none", state: pb.ContainerState.CONTAINER_EXITED, createdAt: -5n, labels: { a: "" } }],
      }),
    },
    () => undefined,
  );
  const route = (name: string) => rt.routes.get(`/runtime.v1.RuntimeService/${name}`)!;

  test("routes every RPC of both services", () => {
    expect(rt.routes.size).toBe(codecs.RuntimeService.methods.length);
    expect(codecs.RuntimeService.methods.length + codecs.ImageService.methods.length).toBe(pb.RuntimeService.methods.length + pb.ImageService.methods.length);
  });

  test("decodes the request and encodes the handler's init shape as protobuf-es would", async () => {
    const r = route("ListContainers");
    if (r.kind !== "unary") throw new Error("unary expected");
    const req = toBinary(pb.ListContainersRequestSchema, create(pb.ListContainersRequestSchema, { filter: { id: "abc" } }));
    const out = await r.handle(req, call("/runtime.v1.RuntimeService/ListContainers"));
    expect(fromBinary(pb.ListContainersResponseSchema, out)).toEqual(
      create(pb.ListContainersResponseSchema, {
        containers: [{ id: "abc", state: pb.ContainerState.CONTAINER_EXITED, createdAt: -5n, labels: { a: "" } }],
      }),
    );
  });

  test("a truncated or garbage request fails INTERNAL 'Error deserializing request' (as before, and as grpc-go)", async () => {
    const r = route("Version");
    if (r.kind !== "unary") throw new Error("unary expected");
    for (const bad of [[0x0a, 5, 0x61], [0xff], [0x0a, 2, 0xc3, 0x28]]) {
      const e = await r.handle(new Uint8Array(bad), call("/runtime.v1.RuntimeService/Version")).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(GrpcStatus);
      expect(e).toMatchObject({ code: Status.INTERNAL });
      expect((e as Error).message).toContain("Error deserializing request");
    }
  });
});

test("nothing the binary loads imports @bufbuild/protobuf or api_pb.ts as a value (types only)", async () => {
  const seen = new Set<string>();
  const bad: string[] = [];
  const walk = async (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = await Bun.file(file).text();
    const specs = [
      ...[...text.matchAll(/^(?:import|export) (?!type )[^;]*?from "([^"]+)";/gms)].map((m) => m[1]!),
      ...[...text.matchAll(/\bimport\("([^"]+)"\)/g)].map((m) => m[1]!),
    ];
    for (const spec of specs) {
      if (spec.startsWith("@bufbuild/") || spec.endsWith("_pb.ts")) bad.push(`${file}: ${spec}`);
      else if (spec.startsWith(".")) await walk(new URL(spec, `file://${process.cwd()}/${file}`).pathname.slice(process.cwd().length + 1));
    }
  };
  await walk("src/main.ts");
  await walk("src/sys/exec-worker.ts");
  expect(seen.has("src/cri/bridge.ts")).toBe(true);
  expect(seen.has("src/gen/runtime/v1/api_codec.ts")).toBe(true);
  expect(bad).toEqual([]);
});
