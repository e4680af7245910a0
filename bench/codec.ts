// The CRI codec's per-call CPU (issue #20, branch "codec"): our generated codec
// (src/gen/runtime/v1/api_codec.ts) beside protobuf-es's reflection (create + toBinary,
// fromBinary, toJsonString) on the messages the kubelet's polling makes the daemon build most:
// a ListContainers answer of 110 containers with the kubelet's labels and annotations, a
// ListPodSandbox answer of 110 pods, an ImageStatus answer and its request. In-process; the two
// take turns round by round, so the machine's load falls on both alike; medians per call.
// Usage: bun bench/codec.ts [--rounds 15] [--iters 200]
import { parseArgs } from "node:util";
import { create, fromBinary, toBinary, toJsonString, type DescMessage } from "@bufbuild/protobuf";
import * as pb from "../src/gen/runtime/v1/api_pb.ts";
import * as codecs from "../src/gen/runtime/v1/api_codec.ts";
import type { Codec } from "../src/util/protowire.ts";
import { median } from "./lib.ts";

const { values: args } = parseArgs({ options: { rounds: { type: "string", default: "15" }, iters: { type: "string", default: "200" } } });
const ROUNDS = Number(args.rounds);
const ITERS = Number(args.iters);

const hex = (n: number, i: number) => (BigInt(i) * 0x9e3779b97f4a7c15n).toString(16).padStart(16, "0").repeat(4).slice(0, n);
const meta = (i: number) => ({ name: `app-${i}`, uid: `0f8a${hex(28, i)}`, namespace: "default", attempt: 0 });
const labels = (i: number) => ({
  "io.kubernetes.container.name": `app-${i}`,
  "io.kubernetes.pod.name": `pod-${i}-7d9f8b6c5-x2x9q`,
  "io.kubernetes.pod.namespace": "default",
  "io.kubernetes.pod.uid": `0f8a${hex(28, i)}`,
});
const annotations = (i: number) => ({
  "io.kubernetes.container.hash": hex(8, i),
  "io.kubernetes.container.restartCount": "0",
  "io.kubernetes.container.terminationMessagePath": "/dev/termination-log",
  "io.kubernetes.container.terminationMessagePolicy": "File",
  "io.kubernetes.pod.terminationGracePeriod": "30",
  "io.kubernetes.container.ports": '[{"name":"http","containerPort":8080,"protocol":"TCP"}]',
  "kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"pod-${i}"}}`,
});
const img = "sha256:" + hex(64, 7);

const containers = Array.from({ length: 110 }, (_, i) => ({
  id: hex(64, i),
  podSandboxId: hex(64, i + 1000),
  metadata: { name: `app-${i}`, attempt: 0 },
  image: { image: "registry.local/busybox:1.36" },
  imageRef: img,
  imageId: img,
  state: pb.ContainerState.CONTAINER_RUNNING,
  createdAt: 1_765_000_000_000_000_000n + BigInt(i),
  labels: labels(i),
  annotations: annotations(i),
}));
const pods = Array.from({ length: 110 }, (_, i) => ({
  id: hex(64, i + 1000),
  metadata: meta(i),
  state: pb.PodSandboxState.SANDBOX_READY,
  createdAt: 1_765_000_000_000_000_000n + BigInt(i),
  labels: labels(i),
  annotations: annotations(i),
  runtimeHandler: "",
}));
const imageStatus = {
  image: {
    id: img,
    repoTags: ["registry.local/busybox:1.36"],
    repoDigests: [`registry.local/busybox@${img}`],
    size: 4_400_000n,
    username: "",
    spec: { image: img, annotations: {} },
    pinned: false,
  },
  info: {},
};

interface Case {
  name: string;
  ours: () => unknown;
  es: () => unknown;
}
function encodeCase<I>(name: string, schema: DescMessage, codec: Codec<unknown, I>, init: I): Case[] {
  const bytes = toBinary(schema, create(schema, init as never));
  if (Buffer.compare(Buffer.from(codec.encode(init)), Buffer.from(bytes)) !== 0) throw new Error(`${name}: the encodings differ`);
  const decoded = fromBinary(schema, bytes);
  return [
    { name: `${name}: build + serialize`, ours: () => codec.encode(init), es: () => toBinary(schema, create(schema, init as never)) },
    { name: `${name}: decode`, ours: () => codec.decode(bytes), es: () => fromBinary(schema, bytes) },
    { name: `${name}: JSON (debug log)`, ours: () => JSON.stringify(codec.toJson(init)), es: () => toJsonString(schema, decoded) },
  ];
}

const cases: Case[] = [
  ...encodeCase("ListContainersResponse (110)", pb.ListContainersResponseSchema, codecs.ListContainersResponseCodec, { containers }),
  ...encodeCase("ListPodSandboxResponse (110)", pb.ListPodSandboxResponseSchema, codecs.ListPodSandboxResponseCodec, { items: pods }),
  ...encodeCase("ImageStatusResponse", pb.ImageStatusResponseSchema, codecs.ImageStatusResponseCodec, imageStatus),
  ...encodeCase("ImageStatusRequest", pb.ImageStatusRequestSchema, codecs.ImageStatusRequestCodec, { image: { image: "registry.local/busybox:1.36" } }),
];

const perCall = (f: () => unknown) => {
  const t0 = Bun.nanoseconds();
  for (let i = 0; i < ITERS; i++) f();
  return (Bun.nanoseconds() - t0) / ITERS / 1000; // µs
};
// warm both up (JIT) before measuring
for (const c of cases) {
  for (let i = 0; i < 3; i++) {
    perCall(c.ours);
    perCall(c.es);
  }
}
const rows: string[] = ["| message, operation | ours (µs/call) | protobuf-es (µs/call) | ours / protobuf-es |", "|---|---:|---:|---:|"];
for (const c of cases) {
  const o: number[] = [];
  const e: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // alternate which goes first
    if (r % 2 === 0) o.push(perCall(c.ours));
    e.push(perCall(c.es));
    if (r % 2 === 1) o.push(perCall(c.ours));
  }
  const mo = median(o);
  const me = median(e);
  rows.push(`| ${c.name} | ${mo.toFixed(1)} | ${me.toFixed(1)} | ${(mo / me).toFixed(2)} |`);
}
console.log(`codec per call, median of ${ROUNDS} rounds of ${ITERS} calls (bun ${Bun.version})`);
console.log(rows.join("\n"));
