import { describe, expect, test } from "bun:test";
import type { ContainerView } from "../../../src/container/record.ts";
import type { SandboxView } from "../../../src/sandbox/record.ts";
import { ContainerEvents, type ContainerEvent, type ContainerEventKind } from "../../../src/stats/events.ts";

/** A fake container service: records whose status can change, and onChange listeners. */
function fakeDomain() {
  const listeners = new Set<(k: ContainerEventKind, c: ContainerView) => void>();
  const ctrs = new Map<string, { meta: ContainerView["meta"]; status: ContainerView["status"] }>();
  const sb = {
    meta: { id: "pod1", metadata: { name: "p", namespace: "default", uid: "u", attempt: 0 } },
    status: { state: "ready" },
  } as unknown as SandboxView;
  const add = (id: string, infra = false) => {
    const c = { meta: { id, sandboxId: "pod1", infra } as ContainerView["meta"], status: { state: "created" } as ContainerView["status"] };
    ctrs.set(id, c);
    return c;
  };
  return {
    add,
    sources: {
      containers: {
        onChange: (fn: (k: ContainerEventKind, c: ContainerView) => void) => (listeners.add(fn), () => listeners.delete(fn)),
        ofPod: (id: string) => [...ctrs.values()].filter((c) => c.meta.sandboxId === id),
      },
      sandboxes: { find: (id: string) => (id === "pod1" ? sb : undefined) },
    },
    emit(kind: ContainerEventKind, c: { meta: ContainerView["meta"]; status: ContainerView["status"] }, state?: ContainerView["status"]["state"]) {
      if (state) c.status = { ...c.status, state };
      if (kind === "deleted") ctrs.delete(c.meta.id);
      for (const l of listeners) l(kind, c);
    },
  };
}

/** Collects what a subscriber receives until `n` events arrived. */
function subscribe(ev: ContainerEvents, n: number, o: { slow?: Promise<void> } = {}) {
  const ac = new AbortController();
  const got: ContainerEvent[] = [];
  let done!: () => void;
  const enough = new Promise<void>((r) => (done = r));
  const served = ev.serve(ac.signal, async (e) => {
    await o.slow;
    got.push(e);
    if (got.length >= n) done();
  });
  return { got, enough, served, stop: () => ac.abort() };
}

describe("ContainerEvents", () => {
  test("a full lifecycle arrives in order with pod status and container snapshots; infra is not reported", async () => {
    const d = fakeDomain();
    const ev = new ContainerEvents({ enabled: () => true });
    ev.attach(d.sources);
    const s = subscribe(ev, 4);
    const infra = d.add("pod1", true);
    d.emit("stopped", infra, "exited");
    const c = d.add("c1");
    d.emit("created", c);
    d.emit("started", c, "running");
    d.emit("stopped", c, "exited");
    d.emit("deleted", c);
    await s.enough;
    expect(s.got.map((e) => [e.containerId, e.kind])).toEqual([
      ["c1", "created"],
      ["c1", "started"],
      ["c1", "stopped"],
      ["c1", "deleted"],
    ]);
    expect(s.got[0]!.sandbox?.meta.id).toBe("pod1");
    // Snapshots: the CREATED event still shows the container as created.
    expect(s.got.map((e) => e.containers.map((x) => x.status.state))).toEqual([["created"], ["running"], ["exited"], []]);
    s.stop();
    await s.served;
    expect(ev.subscribers()).toBe(0);
  });

  test("an exit seen before STARTED is held back and delivered after it", async () => {
    const d = fakeDomain();
    const ev = new ContainerEvents({ enabled: () => true, reorderMs: 5_000 });
    ev.attach(d.sources);
    const s = subscribe(ev, 3);
    const c = d.add("c1");
    d.emit("created", c);
    d.emit("stopped", c, "exited"); // the monitor's exit came first
    d.emit("started", c);
    await s.enough;
    expect(s.got.map((e) => e.kind)).toEqual(["created", "started", "stopped"]);
    s.stop();
  });

  test("a never-started container's STOPPED is released after the reorder window, or by DELETED", async () => {
    const d = fakeDomain();
    const ev = new ContainerEvents({ enabled: () => true, reorderMs: 30 });
    ev.attach(d.sources);
    const s = subscribe(ev, 5);
    const a = d.add("a");
    d.emit("created", a);
    d.emit("stopped", a, "exited");
    const b = d.add("b");
    d.emit("created", b);
    d.emit("stopped", b, "exited");
    d.emit("deleted", b);
    await s.enough;
    expect(s.got.map((e) => `${e.containerId}:${e.kind}`)).toEqual(["a:created", "b:created", "b:stopped", "b:deleted", "a:stopped"]);
    s.stop();
  });

  test("a subscriber that does not read loses events (counted) and never blocks the others", async () => {
    const d = fakeDomain();
    const ev = new ContainerEvents({ enabled: () => true, bufferSize: 3 });
    ev.attach(d.sources);
    let release!: () => void;
    const stuck = subscribe(ev, 1, { slow: new Promise<void>((r) => (release = r)) });
    const fast = subscribe(ev, 10);
    for (let i = 0; i < 10; i++) {
      d.emit("created", d.add(`c${i}`));
      await Bun.sleep(0); // the fast reader keeps up
    }
    await fast.enough;
    expect(fast.got).toHaveLength(10);
    // The stuck one holds 1 in its send and 3 queued: 6 dropped.
    expect(ev.dropped()).toBe(6);
    release();
    await stuck.enough;
    stuck.stop();
    fast.stop();
    await Promise.all([stuck.served, fast.served]);
  });

  test("disabled (enable_pod_events = false): the stream ends at once; close() ends open streams", async () => {
    const off = new ContainerEvents({ enabled: () => false });
    await off.serve(new AbortController().signal, async () => {});
    const ev = new ContainerEvents({ enabled: () => true });
    ev.attach(fakeDomain().sources);
    const s = subscribe(ev, 1);
    ev.close();
    await s.served;
    expect(s.got).toEqual([]);
  });
});
