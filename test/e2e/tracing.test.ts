// OpenTelemetry tracing on the compiled daemon: with enable_tracing, every CRI call is a server
// span (named and attributed like OpenTelemetry's gRPC instrumentation) with child spans for its
// main steps (image pull, CNI ADD/DEL, rootfs, runtime create/start, the infra container), sent
// over OTLP/HTTP protobuf to tracing_endpoint — here a receiver in the test that decodes them.
// The sampling rate per million is honoured (0: nothing, except traces the caller sampled), an
// unreachable collector does not disturb the CRI, and wrong values stop the daemon naming the key.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { credentials, makeGenericClientConstructor, Metadata, type Client, type ServiceError } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { startDaemon, waitFor, type TestDaemon } from "../harness.ts";
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "../support/otlp.ts";
import { ctrConfig, podConfig, startEnv, type Env } from "../support/pods.ts";

const LOOPBACK_NET = JSON.stringify({ cniVersion: "1.0.0", name: "trace-lo", plugins: [{ type: "loopback" }] });
const RT = "runtime.v1.RuntimeService";
const IMG = "runtime.v1.ImageService";

/** Calls Version with a W3C traceparent in the metadata (the typed client sends none). */
async function versionWithTraceparent(d: TestDaemon, traceparent: string): Promise<void> {
  const Ctor = makeGenericClientConstructor(
    {
      version: {
        path: `/${RT}/Version`,
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    } as never,
    "Rt",
  );
  const c = new Ctor(`unix:${d.socket}`, credentials.createInsecure(), { "grpc.default_authority": "localhost" }) as unknown as Client & {
    version: (...args: unknown[]) => unknown;
  };
  const md = new Metadata();
  md.set("traceparent", traceparent);
  try {
    await new Promise((resolve, reject) => c.version(Buffer.alloc(0), md, (e: ServiceError | null, r: unknown) => (e ? reject(e) : resolve(r))));
  } finally {
    c.close();
  }
}

describe("enable_tracing with every trace sampled", () => {
  let recv: OtlpReceiver;
  let env: Env;
  beforeAll(async () => {
    recv = startOtlpReceiver();
    env = await startEnv({
      cniConf: LOOPBACK_NET,
      config: `[crio.tracing]\nenable_tracing = true\ntracing_endpoint = "${recv.endpoint}"\ntracing_sampling_rate_per_million = 1000000\n`,
    });
  }, 120_000);
  afterAll(async () => {
    await env?.[Symbol.asyncDispose]();
    await recv?.stop();
  });

  const one = (name: string, pred: (s: ReceivedSpan) => boolean = () => true) => recv.spans.find((s) => s.name === name && pred(s));
  const childOf = (parent: ReceivedSpan, name: string) =>
    recv.spans.find((s) => s.name === name && s.parentSpanId === parent.spanId && s.traceId === parent.traceId);

  test("CRI calls are server spans, their steps child spans, exported over OTLP/HTTP", async () => {
    const d = env.d;
    await d.cri.pullImage({ image: { image: env.busybox } });
    const pod = podConfig("traced", d.dir, { hostNetwork: false, sharedPid: true }); // shared PID: an infra container
    const { podSandboxId } = await d.cri.runPodSandbox({ config: pod });
    const { containerId } = await d.cri.createContainer({
      podSandboxId,
      config: ctrConfig("traced", env.busybox, ["sleep", "3600"], {}, pod),
      sandboxConfig: pod,
    });
    await d.cri.startContainer({ containerId });
    await d.cri.stopPodSandbox({ podSandboxId });
    const missing = await d.cri.containerStatus({ containerId: "f".repeat(64) }).catch((e) => e);
    expect(missing.code).toBe(status.NOT_FOUND);

    const names = [
      `${IMG}/PullImage`,
      "image.pull",
      `${RT}/RunPodSandbox`,
      "cni.add",
      "sandbox.start_infra",
      `${RT}/CreateContainer`,
      "storage.create_rootfs",
      "runtime.create",
      `${RT}/StartContainer`,
      "runtime.start",
      `${RT}/StopPodSandbox`,
      "cni.del",
      `${RT}/ContainerStatus`,
    ];
    await waitFor(() => names.every((n) => one(n)), 30_000, `spans ${names.join(", ")}`).catch((e) => {
      throw new Error(`${e.message}; received: ${[...new Set(recv.spans.map((s) => s.name))].join(", ")}`);
    });
    expect(recv.rejected).toEqual([]);

    const run = one(`${RT}/RunPodSandbox`)!;
    expect(run).toMatchObject({
      kind: 2,
      scope: "crio",
      statusCode: 0,
      parentSpanId: "",
      attrs: { "rpc.system": "grpc", "rpc.service": RT, "rpc.method": "RunPodSandbox", "rpc.grpc.status_code": 0 },
      resource: { "service.name": "crio" },
    });
    expect(childOf(run, "cni.add")).toMatchObject({ kind: 3, attrs: { "cni.network": "trace-lo", "pod.id": podSandboxId } });
    expect(childOf(run, "sandbox.start_infra")).toBeDefined();
    expect(childOf(one(`${IMG}/PullImage`)!, "image.pull")).toMatchObject({ attrs: { "image.ref": env.busybox } });
    const create = one(`${RT}/CreateContainer`)!;
    expect(create.attrs["container.id"]).toBe(containerId);
    expect(childOf(create, "storage.create_rootfs")).toBeDefined();
    expect(childOf(create, "runtime.create")).toMatchObject({ kind: 3, attrs: { "container.id": containerId, runtime: "runc" } });
    expect(childOf(one(`${RT}/StartContainer`)!, "runtime.start")).toMatchObject({ attrs: { "container.id": containerId } });
    expect(childOf(one(`${RT}/StopPodSandbox`)!, "cni.del")).toBeDefined();
    // a failed call: span status ERROR and the gRPC code
    expect(one(`${RT}/ContainerStatus`)).toMatchObject({ statusCode: 2, attrs: { "rpc.grpc.status_code": status.NOT_FOUND } });
    // distinct calls are distinct traces
    expect(new Set([run, create].map((s) => s.traceId)).size).toBe(2);
  });

  test("a caller's W3C traceparent is continued", async () => {
    const traceId = randomBytes(16).toString("hex");
    const parent = randomBytes(8).toString("hex");
    await versionWithTraceparent(env.d, `00-${traceId}-${parent}-01`);
    const s = await waitFor(() => one(`${RT}/Version`, (x) => x.traceId === traceId), 20_000, "the Version span");
    expect(s.parentSpanId).toBe(parent);
  });
});

describe("tracing_sampling_rate_per_million = 0", () => {
  test("nothing is exported except traces the caller sampled; flushed at a clean stop", async () => {
    const recv = startOtlpReceiver();
    try {
      await using d = await startDaemon({
        config: `[crio.tracing]\nenable_tracing = true\ntracing_endpoint = "http://${recv.endpoint}"\ntracing_sampling_rate_per_million = 0\n`,
      });
      await d.cri.version({});
      await d.cri.listPodSandbox({});
      const traceId = randomBytes(16).toString("hex");
      await versionWithTraceparent(d, `00-${traceId}-${randomBytes(8).toString("hex")}-01`);
      expect(await d.stop("SIGTERM")).toBe(0); // the clean stop flushes the batch
      expect(recv.spans.map((s) => [s.name, s.traceId])).toEqual([[`${RT}/Version`, traceId]]);
    } finally {
      await recv.stop();
    }
  });
});

describe("collector problems and wrong values", () => {
  test("an unreachable collector is logged and the CRI keeps working", async () => {
    await using d = await startDaemon({
      config: `[crio.tracing]\nenable_tracing = true\ntracing_endpoint = "127.0.0.1:1"\ntracing_sampling_rate_per_million = 1000000\n`,
    });
    for (let i = 0; i < 3; i++) expect((await d.cri.version({})).runtimeName).toBe("cri-o");
    await d.waitForLog(/OpenTelemetry export to http:\/\/127\.0\.0\.1:1\/v1\/traces failed/, 30_000);
    // spans still buffered do not hold a clean stop for long
    for (let i = 0; i < 3; i++) await d.cri.version({});
    const t0 = Date.now();
    expect(await d.stop("SIGTERM")).toBe(0);
    expect(Date.now() - t0).toBeLessThan(8000);
  });

  test("a bad endpoint or a rate out of range stops the daemon naming the key", async () => {
    for (const [toml, key, expected] of [
      ['tracing_endpoint = "not an endpoint"', "crio.tracing.tracing_endpoint", "host:port"],
      ['tracing_endpoint = "127.0.0.1:99999"', "crio.tracing.tracing_endpoint", "host:port"],
      ['tracing_endpoint = "ftp://collector:4318"', "crio.tracing.tracing_endpoint", "host:port"],
      ["tracing_sampling_rate_per_million = 1000001", "crio.tracing.tracing_sampling_rate_per_million", "from 0 to 1000000"],
      ["tracing_sampling_rate_per_million = -1", "crio.tracing.tracing_sampling_rate_per_million", "at least 0"],
    ] as const) {
      await using d = await startDaemon({ config: `[crio.tracing]\nenable_tracing = true\n${toml}\n`, noWait: true });
      expect(await d.proc.exited).toBe(1);
      const line = d
        .logs()
        .split("\n")
        .find((l) => l.includes("invalid configuration"));
      expect(line).toContain(`key \\"${key}\\"`);
      expect(line).toContain(expected);
    }
  });
});
