// A small OTLP/HTTP trace receiver for tests: an HTTP server on 127.0.0.1 that takes
// POST /v1/traces (application/x-protobuf), decodes ExportTraceServiceRequest with a hand-written
// protobuf reader (opentelemetry-proto trace/v1 field numbers) and keeps the spans.

/** One received span, flattened. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** 1 internal, 2 server, 3 client. */
  kind: number;
  attrs: Record<string, string | number | boolean>;
  /** 0 unset, 1 ok, 2 error. */
  statusCode: number;
  statusMessage: string;
  /** Attributes of the resource that sent it. */
  resource: Record<string, string | number | boolean>;
  scope: string;
}

/** A running receiver. */
export interface OtlpReceiver {
  /** host:port, for tracing_endpoint. */
  endpoint: string;
  spans: ReceivedSpan[];
  /** Requests that were not a valid OTLP/HTTP protobuf export (path, content type). */
  rejected: string[];
  stop(): Promise<void>;
}

/** Starts a receiver on 127.0.0.1 at a free port. */
export function startOtlpReceiver(): OtlpReceiver {
  const spans: ReceivedSpan[] = [];
  const rejected: string[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const type = req.headers.get("content-type") ?? "";
      if (req.method !== "POST" || url.pathname !== "/v1/traces" || type !== "application/x-protobuf") {
        rejected.push(`${req.method} ${url.pathname} ${type}`);
        return new Response("bad request", { status: 400 });
      }
      spans.push(...decodeExport(new Uint8Array(await req.arrayBuffer())));
      return new Response(new Uint8Array(0), { headers: { "content-type": "application/x-protobuf" } });
    },
  });
  return { endpoint: `127.0.0.1:${server.port}`, spans, rejected, stop: async () => void (await server.stop(true)) };
}

/** Decodes an ExportTraceServiceRequest into flat spans. */
export function decodeExport(buf: Uint8Array): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of fields(buf).get(1) ?? []) {
    const rsf = fields(rs as Uint8Array);
    const resourceMsg = rsf.get(1)?.[0] as Uint8Array | undefined;
    const resource = resourceMsg ? keyValues(fields(resourceMsg).get(1) ?? []) : {};
    for (const ss of rsf.get(2) ?? []) {
      const ssf = fields(ss as Uint8Array);
      const scopeMsg = ssf.get(1)?.[0] as Uint8Array | undefined;
      const scope = scopeMsg ? text(fields(scopeMsg).get(1)?.[0]) : "";
      for (const sp of ssf.get(2) ?? []) {
        const f = fields(sp as Uint8Array);
        const st = f.get(15)?.[0] as Uint8Array | undefined;
        const stf = st ? fields(st) : new Map();
        out.push({
          traceId: hex(f.get(1)?.[0]),
          spanId: hex(f.get(2)?.[0]),
          parentSpanId: hex(f.get(4)?.[0]),
          name: text(f.get(5)?.[0]),
          kind: Number(f.get(6)?.[0] ?? 0),
          attrs: keyValues(f.get(9) ?? []),
          statusCode: Number(stf.get(3)?.[0] ?? 0),
          statusMessage: text(stf.get(2)?.[0]),
          resource,
          scope,
        });
      }
    }
  }
  return out;
}

// --- internal ---

type Value = bigint | Uint8Array;

/** A protobuf message's fields: number → values (varints and fixed as bigint, length-delimited as bytes). */
function fields(buf: Uint8Array): Map<number, Value[]> {
  const out = new Map<number, Value[]>();
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[i++];
      if (b === undefined) throw new Error("truncated varint");
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    let v: Value;
    if (wire === 0) v = varint();
    else if (wire === 1) {
      v = new DataView(buf.buffer, buf.byteOffset + i, 8).getBigUint64(0, true);
      i += 8;
    } else if (wire === 2) {
      const n = Number(varint());
      v = buf.subarray(i, i + n);
      i += n;
    } else if (wire === 5) {
      v = BigInt(new DataView(buf.buffer, buf.byteOffset + i, 4).getUint32(0, true));
      i += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
    if (!out.has(field)) out.set(field, []);
    out.get(field)!.push(v);
  }
  return out;
}

function text(v: Value | undefined): string {
  return v instanceof Uint8Array ? new TextDecoder().decode(v) : "";
}

function hex(v: Value | undefined): string {
  return v instanceof Uint8Array ? Buffer.from(v).toString("hex") : "";
}

/** KeyValue list → object (AnyValue: 1 string, 2 bool, 3 int, 4 double). */
function keyValues(list: Value[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list) {
    const f = fields(kv as Uint8Array);
    const key = text(f.get(1)?.[0]);
    const any = f.get(2)?.[0] as Uint8Array | undefined;
    if (!any) continue;
    const a = fields(any);
    if (a.has(1)) out[key] = text(a.get(1)![0]);
    else if (a.has(2)) out[key] = a.get(2)![0] === 1n;
    else if (a.has(3)) out[key] = Number(BigInt.asIntN(64, a.get(3)![0] as bigint));
    else if (a.has(4)) {
      const dv = new DataView(new ArrayBuffer(8));
      dv.setBigUint64(0, a.get(4)![0] as bigint, true);
      out[key] = dv.getFloat64(0, true);
    }
  }
  return out;
}
