import { expect, test } from "bun:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { ListContainersResponseSchema, ListPodSandboxResponseSchema } from "../../../src/gen/runtime/v1/api_pb.ts";
import { ContainerCodec, PodSandboxCodec } from "../../../src/gen/runtime/v1/api_codec.ts";
import { toContainer } from "../../../src/cri/convert/container.ts";
import { toPodSandbox } from "../../../src/cri/convert/sandbox.ts";
import { ListCache } from "../../../src/cri/list-cache.ts";
import { filterContainers, type ContainerFilter } from "../../../src/container/list.ts";
import type { ContainerView } from "../../../src/container/index.ts";
import { filterSandboxes, type SandboxFilter } from "../../../src/sandbox/list.ts";
import type { SandboxView } from "../../../src/sandbox/index.ts";

// ListPodSandbox / ListContainers answers are built from each record's cached message bytes
// (cri/list-cache.ts; each item encoded by the generated codec, as the daemon does). They must be byte for byte what protobuf-es writes for the whole answer,
// whatever the filter, after records are added, updated (a new status object, as
// StoredRecord.update makes) and removed; a record is encoded again only when it changed.

let seed = 7;
const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
const STATES = ["created", "running", "exited", "unknown"] as const;

/** A label or annotation value of varied length: some items pass 127 and 16383 bytes (2- and 3-byte lengths). */
const value = (i: number) => (i % 13 === 0 ? "x".repeat(20_000) : i % 5 === 0 ? `long ${"é".repeat(100)} ${i}` : `v${i}`);

type MutableCtr = { meta: ContainerView["meta"]; status: ContainerView["status"] };
function container(i: number): MutableCtr {
  return {
    meta: {
      id: `${(i % 3).toString(16)}c${i.toString(16).padStart(6, "0")}`,
      name: `k8s_c${i}`,
      sandboxId: `p${i % 4}`,
      metadata: { name: `c${i}`, attempt: i % 3 },
      configJson: null,
      image: { id: `sha256:${i % 2}`, name: "busybox", userRequested: i % 2 ? "busybox:latest" : "" },
      logPath: "",
      createdAt: 1_700_000_000_000 + (i % 7) * 1000 + i / 1000, // ties and sub-ms parts
      labels: { app: `a${i % 3}`, tier: i % 2 ? "web" : "db", ...(i % 4 === 0 ? { extra: value(i) } : {}) },
      annotations: i % 3 === 0 ? {} : { note: value(i), "io.kubernetes.container.hash": String(i * 7919) },
      stopSignal: "",
      user: { uid: 0, gid: 0, additionalGids: [] },
      mounts: [],
      tty: false,
      stdin: false,
      stdinOnce: false,
      runtimeHandler: "",
      bundle: "",
      seccomp: "",
      infra: i % 11 === 0,
    },
    status: { state: STATES[i % 4]!, pid: i },
  } as MutableCtr;
}

type MutableSb = { meta: SandboxView["meta"]; status: SandboxView["status"] };
function sandbox(i: number): MutableSb {
  return {
    meta: {
      id: `${(i % 3).toString(16)}p${i.toString(16).padStart(6, "0")}`,
      name: `k8s_p${i}`,
      metadata: { name: `p${i}`, uid: `uid-${i}`, namespace: i % 2 ? "default" : "kube-system", attempt: i % 2 },
      configJson: null,
      labels: { app: `a${i % 3}`, ...(i % 5 === 0 ? { big: value(i) } : {}) },
      annotations: i % 2 ? { note: value(i) } : {},
      runtimeHandler: i % 3 ? "" : "runc",
      hostname: "",
      logDirectory: "",
      cgroupParent: "",
      namespaceOptions: { network: 0, pid: 1, ipc: 0, targetId: "" },
      createdAt: 1_700_000_000_000 + (i % 5) * 1000,
    },
    status: {
      state: i % 3 ? "ready" : "notready",
      ips: [],
      namespaces: {},
      shmPath: "",
      hostnamePath: "",
      resolvConfPath: "",
      networkPending: false,
    },
  } as MutableSb;
}

const ctrFilters: Array<ContainerFilter | undefined> = [
  undefined,
  {},
  { id: "1" },
  { id: "0c00000a" },
  { id: "nothing" },
  { state: "created" },
  { state: "running" },
  { state: "exited" },
  { state: "unknown" },
  { podSandboxId: "p1" },
  { podSandboxId: "p9" },
  { labelSelector: { app: "a1" } },
  { labelSelector: { app: "a2", tier: "web" } },
  { labelSelector: { app: "none" } },
  { state: "running", podSandboxId: "p2", labelSelector: { tier: "db" } },
];
const sbFilters: Array<SandboxFilter | undefined> = [
  undefined,
  {},
  { id: "2" },
  { id: "nothing" },
  { state: "ready" },
  { state: "notready" },
  { labelSelector: { app: "a0" } },
  { labelSelector: { app: "a1", big: value(5) } },
  { state: "ready", labelSelector: { app: "a2" } },
];

const fullContainers = (items: ContainerView[]) =>
  toBinary(ListContainersResponseSchema, create(ListContainersResponseSchema, { containers: items.map(toContainer) }));
const fullSandboxes = (items: SandboxView[]) =>
  toBinary(ListPodSandboxResponseSchema, create(ListPodSandboxResponseSchema, { items: items.map(toPodSandbox) }));

test("ListContainers from cached item bytes equals protobuf-es's encoding of the whole answer, across adds, updates, removes and every filter", () => {
  let encodes = 0;
  let gen = 0;
  const cache = new ListCache(
    (c: ContainerView) => (encodes++, ContainerCodec.encode(toContainer(c))),
    () => gen,
  );
  const records = new Map<string, MutableCtr>();
  const check = () => {
    for (const f of ctrFilters) {
      const items = filterContainers(records.values(), f);
      const want = fullContainers(items);
      expect(Buffer.from(cache.encode(items)).equals(Buffer.from(want))).toBe(true);
      expect(Buffer.from(cache.get(JSON.stringify(f ?? null), () => items).bytes).equals(Buffer.from(want))).toBe(true);
    }
  };
  check(); // empty: zero bytes
  expect(cache.encode([]).length).toBe(0);
  for (let i = 0; i < 60; i++) {
    const c = container(i);
    records.set(c.meta.id, c);
  }
  gen++;
  check();
  for (let round = 0; round < 20; round++) {
    const ids = [...records.keys()];
    // an update: a new status object (StoredRecord.update), the state changed or not
    const u = records.get(ids[rnd(ids.length)]!)!;
    u.status = { ...u.status, state: STATES[rnd(4)]!, pid: rnd(1000) };
    // a removal and an addition
    records.delete(ids[rnd(ids.length)]!);
    const c = container(100 + round);
    records.set(c.meta.id, c);
    gen++;
    check();
  }
  // nothing changed: no record encoded again, however many answers are built
  encodes = 0;
  gen++;
  check();
  expect(encodes).toBe(0);
  // one record changed: that one alone is encoded again
  const one = [...records.values()].find((c) => !c.meta.infra)!;
  one.status = { ...one.status, state: "exited" };
  gen++;
  check();
  expect(encodes).toBe(1);
});

test("ListPodSandbox from cached item bytes equals protobuf-es's encoding of the whole answer, across adds, updates, removes and every filter", () => {
  let encodes = 0;
  let gen = 0;
  const cache = new ListCache(
    (s: SandboxView) => (encodes++, PodSandboxCodec.encode(toPodSandbox(s))),
    () => gen,
  );
  const records = new Map<string, MutableSb>();
  const check = () => {
    for (const f of sbFilters) {
      const items = filterSandboxes(records.values(), f);
      const want = fullSandboxes(items);
      expect(Buffer.from(cache.encode(items)).equals(Buffer.from(want))).toBe(true);
      expect(Buffer.from(cache.get(JSON.stringify(f ?? null), () => items).bytes).equals(Buffer.from(want))).toBe(true);
    }
  };
  check();
  for (let i = 0; i < 40; i++) {
    const s = sandbox(i);
    records.set(s.meta.id, s);
  }
  gen++;
  check();
  for (let round = 0; round < 20; round++) {
    const ids = [...records.keys()];
    const u = records.get(ids[rnd(ids.length)]!)!;
    u.status = { ...u.status, state: u.status.state === "ready" ? "notready" : "ready" };
    records.delete(ids[rnd(ids.length)]!);
    const s = sandbox(100 + round);
    records.set(s.meta.id, s);
    gen++;
    check();
  }
  encodes = 0;
  gen++;
  check();
  expect(encodes).toBe(0);
});

test("an answer is kept while the generation stands, even if a status object is swapped behind its back", () => {
  let gen = 0;
  const cache = new ListCache(
    (c: ContainerView) => ContainerCodec.encode(toContainer(c)),
    () => gen,
  );
  const c = container(1);
  const first = cache.get("k", () => [c]);
  c.status = { ...c.status, state: "exited" };
  expect(cache.get("k", () => [c])).toBe(first); // (only a record update may change a status: it moves the generation)
  gen++;
  const second = cache.get("k", () => [c]);
  expect(second).not.toBe(first);
  expect(Buffer.from(second.bytes).equals(Buffer.from(fullContainers([c])))).toBe(true);
});
