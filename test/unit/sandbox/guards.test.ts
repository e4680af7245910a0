import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
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
