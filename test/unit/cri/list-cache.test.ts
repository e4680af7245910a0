import { afterAll, beforeAll, expect, test } from "bun:test";
import { createServer, type Server } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ContainerState, RuntimeService } from "../../../src/gen/runtime/v1/api_codec.ts";
import { bridge } from "../../../src/cri/bridge.ts";
import { GrpcServer } from "../../../src/cri/grpc-server.ts";
import { ListCache } from "../../../src/cri/list-cache.ts";
import { runtimeService, type Services } from "../../../src/cri/runtime-service.ts";
import { IdIndex, RecordDir, storeGeneration } from "../../../src/store/index.ts";
import { criClient, type CriClient } from "../../support/cri-client.ts";

// ListPodSandbox / ListContainers answered from a cache while the stores' generation stands: the
// same answer without rebuilding, a new one after any record is added, removed or updated, and
// one entry per distinct request.

type Ctr = { meta: Record<string, unknown>; status: { state: string } };
const ctr = (id: string, sandboxId: string, state = "running"): Ctr => ({
  meta: {
    id,
    sandboxId,
    metadata: { name: id, attempt: 0 },
    image: { userRequested: "busybox", id: "sha256:1" },
    createdAt: 1,
    labels: { app: id },
    annotations: {},
    infra: false,
  },
  status: { state },
});

const index = new IdIndex<Ctr>();
let builds = 0;
const services = {
  containers: {
    list: (f?: { state?: string; podSandboxId?: string }) => {
      builds++;
      return [...index.values()].filter((c) => (!f?.state || c.status.state === f.state) && (!f?.podSandboxId || c.meta.sandboxId === f.podSandboxId));
    },
  },
  sandboxes: { list: () => [] },
} as unknown as Services;

let dir: string;
let server: Server;
let cri: CriClient;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "crio-list-cache-"));
  const rt = bridge(RuntimeService, runtimeService(services) as unknown as Record<string, unknown>, () => undefined);
  const grpc = new GrpcServer(rt.routes, { maxRecvBytes: 16 << 20, maxSendBytes: 16 << 20 });
  server = createServer((conn) => grpc.inject(conn));
  await new Promise<void>((res, rej) => (server.once("error", rej), server.listen(join(dir, "s.sock"), () => res())));
  cri = criClient(join(dir, "s.sock"));
});

afterAll(() => {
  cri.close();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

const ids = async (filter?: object) => (await cri.listContainers(filter ? { filter } : {})).containers.map((c) => c.id);

test("a relist with nothing changed is answered from the cache; a change rebuilds it", async () => {
  index.add("a", ctr("a", "p1"));
  index.add("b", ctr("b", "p2"));
  builds = 0;
  expect(await ids()).toEqual(["a", "b"]);
  expect(await ids()).toEqual(["a", "b"]);
  expect(builds).toBe(1);
  index.add("c", ctr("c", "p1")); // added
  expect(await ids()).toEqual(["a", "b", "c"]);
  expect(builds).toBe(2);
  index.delete("b"); // removed
  expect(await ids()).toEqual(["a", "c"]);
  expect(builds).toBe(3);
  index.delete("nothing"); // no change: still cached
  expect(await ids()).toEqual(["a", "c"]);
  expect(builds).toBe(3);
});

test("each distinct filter is its own entry, and all of them go at a change", async () => {
  builds = 0;
  const byPod = { podSandboxId: "p1" };
  const running = { state: { state: ContainerState.CONTAINER_RUNNING } };
  expect(await ids(byPod)).toEqual(["a", "c"]);
  expect(await ids(running)).toEqual(["a", "c"]);
  expect(await ids(byPod)).toEqual(["a", "c"]);
  expect(builds).toBe(2);
  index.find("a")!.status = { state: "exited" }; // (only a record update may change a status: it bumps the generation)
  expect(await ids(running)).toEqual(["a", "c"]); // still the cached answer
  index.add("a", index.find("a")!);
  expect(await ids(running)).toEqual(["c"]);
  expect((await cri.listContainers({ filter: byPod })).containers.find((c) => c.id === "a")?.state).toBe(ContainerState.CONTAINER_EXITED);
});

test("a record's status update moves the generation once it is on disk", async () => {
  const rd = new RecordDir<{ id: string }, { n: number }>(join(dir, "records"));
  const rec = await rd.create("r1", { id: "r1" }, { n: 0 });
  const g = storeGeneration();
  await rec.update((s) => ({ n: s.n + 1 }));
  expect(storeGeneration()).toBe(g + 1);
});

test("the cache keeps at most `max` entries", () => {
  let gen = 0;
  let built = 0;
  const c = new ListCache(
    () => new Uint8Array(),
    () => gen,
    2,
  );
  const get = (k: string) => c.get(k, () => (built++, []));
  get("x");
  get("y");
  get("z"); // x dropped
  get("y");
  expect(built).toBe(3);
  get("x");
  expect(built).toBe(4);
  gen++;
  get("x");
  expect(built).toBe(5);
});
