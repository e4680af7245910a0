import { expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sandboxName } from "../../../src/sandbox/record.ts";
import { SandboxService } from "../../../src/sandbox/service.ts";
import { StoredRecord } from "../../../src/store/index.ts";

/** A service that recovered three pods: ready in its own netns, ready on the host network, not ready. */
async function service(dir: string) {
  const pod = (id: string, state: string, net?: string) =>
    new StoredRecord(
      join(dir, id),
      { id, name: `k8s_${id}`, metadata: { name: id, namespace: "ns", uid: "u", attempt: 0 } } as never,
      { state, namespaces: net ? { net } : {} } as never,
    );
  const log = { withTag: () => log, info: () => {}, warn: () => {}, debug: () => {} };
  const d = {
    log,
    paths: { namespaces: join(dir, "ns"), sandboxRun: join(dir, "run") },
    records: { loadAll: async () => [pod("own", "ready", "/run/netns/own"), pod("host", "ready"), pod("gone", "notready")] },
    names: { reserve: () => {} },
    namespaces: { pinCheck: () => () => true, list: () => new Map() },
    network: { attachedPods: () => [] },
  };
  const s = new SandboxService(d as never);
  await s.recover();
  return s;
}

test("PortForward reaches a ready pod's netns, the node for a host-network pod; not a stopped or unknown pod", async () => {
  const dir = mkdtempSync(join(tmpdir(), "crio-guards-"));
  try {
    const s = await service(dir);
    expect(s.portForwardTarget("own")).toEqual({ netns: "/run/netns/own" });
    expect(s.portForwardTarget("host")).toEqual({ netns: undefined });
    expect(() => s.portForwardTarget("gone")).toThrow('pod sandbox "gone" is not ready');
    expect(() => s.portForwardTarget("nope")).toThrow("not found");
    expect(s.forNewContainer("own").meta.id).toBe("own");
    expect(() => s.forNewContainer("gone")).toThrow('pod sandbox "gone" is not ready');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a pod's reserved name is CRI-O's k8s_<name>_<namespace>_<uid>_<attempt>", () => {
  expect(sandboxName({ name: "web", namespace: "default", uid: "1234", attempt: 2 })).toBe("k8s_web_default_1234_2");
});

test("recovery: a ready pod that lost some of its namespaces (a stop killed half-way through its unpin) is NOTREADY and what remains is unpinned", async () => {
  const dir = mkdtempSync(join(tmpdir(), "crio-recover-"));
  try {
    const ns = { net: join(dir, "netns/p"), ipc: join(dir, "ipcns/p"), uts: join(dir, "utsns/p") };
    mkdirSync(join(dir, "p"), { recursive: true });
    const rec = new StoredRecord(
      join(dir, "p"),
      { id: "p", name: "k8s_p", metadata: { name: "p", namespace: "ns", uid: "u", attempt: 0 } } as never,
      { state: "ready", namespaces: ns } as never,
    );
    const unpinned: unknown[] = [];
    const log = { withTag: () => log, info: () => {}, warn: () => {}, debug: () => {} };
    const d = {
      log,
      paths: { namespaces: join(dir, "ns"), sandboxRun: join(dir, "run") },
      records: { loadAll: async () => [rec] },
      names: { reserve: () => {} },
      // the net pin is gone, ipc and uts are still mounted
      namespaces: { pinCheck: () => (p: string) => p !== ns.net, list: () => new Map(), unpin: async (x: unknown) => void unpinned.push(x) },
      network: { attachedPods: () => [] },
    };
    const s = new SandboxService(d as never);
    await s.recover();
    expect(unpinned).toEqual([ns]);
    const st = rec.status as unknown as { state: string; namespaces: object };
    expect(st.state).toBe("notready");
    expect(st.namespaces).toEqual({});
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
