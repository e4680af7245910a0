// Leftovers of pods without a record, with recording fakes for the network, namespaces and shm.
import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { log } from "../../../src/log/index.ts";
import { pathsFor } from "../../../src/paths.ts";
import { Leftovers } from "../../../src/sandbox/leftovers.ts";
import type { SandboxDeps } from "../../../src/sandbox/deps.ts";
import type { PinnedNamespaces } from "../../../src/sys/namespaces.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fakes(o: { attached?: string[]; pins?: Record<string, PinnedNamespaces>; runDirs?: string[]; failDel?: Set<string> } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "leftovers-"));
  dirs.push(dir);
  const paths = pathsFor(join(dir, "root"), join(dir, "run"));
  for (const id of o.runDirs ?? []) {
    mkdirSync(join(paths.sandboxRun, id), { recursive: true });
    writeFileSync(join(paths.sandboxRun, id, "hostname"), "x\n");
  }
  const calls: string[] = [];
  const attached = new Set(o.attached ?? []);
  const d = {
    paths,
    log,
    network: {
      attachedPods: () => [...attached],
      tearDown: async (pod: { id: string; netns: string }) => {
        calls.push(`del ${pod.id} netns=${pod.netns}`);
        if (o.failDel?.has(pod.id)) throw new Error(`plugin broken for ${pod.id}`);
        attached.delete(pod.id);
      },
    },
    namespaces: {
      list: () => new Map(Object.entries(o.pins ?? {})),
      unpin: async (ns: PinnedNamespaces) => void calls.push(`unpin ${JSON.stringify(ns)}`),
    },
    shm: { unmount: async (p: string) => void calls.push(`unmount ${p.slice(paths.runroot.length)}`) },
  } as unknown as SandboxDeps;
  return { d, calls, paths, attached };
}

test("find: CNI attachments, pins and run dirs without a record; known pods are left alone", async () => {
  const f = fakes({
    attached: ["known", "crashed"],
    pins: { known: { net: "/ns/net/known" }, crashed: { net: "/ns/net/crashed", ipc: "/ns/ipc/crashed" }, pinonly: { uts: "/ns/uts/pinonly" } },
    runDirs: ["known", "crashed", "rundironly"],
  });
  const l = new Leftovers(f.d);
  const ids = await l.find(new Set(["known"]));
  expect(ids.sort()).toEqual(["crashed", "pinonly", "rundironly"]);
  expect(l.pending.sort()).toEqual(["crashed", "pinonly"]); // run dirs are removed at once
  expect(f.calls.sort()).toEqual(["unmount /sandboxes/crashed/shm", "unmount /sandboxes/rundironly/shm"]);
  expect(existsSync(join(f.paths.sandboxRun, "crashed"))).toBe(false);
  expect(existsSync(join(f.paths.sandboxRun, "known"))).toBe(true);
});

test("clean: DEL with the pinned netns first, then unpin; nothing pending afterwards", async () => {
  const f = fakes({ attached: ["crashed"], pins: { crashed: { net: "/ns/net/crashed", ipc: "/ns/ipc/crashed" } } });
  const l = new Leftovers(f.d);
  await l.find(new Set());
  f.calls.length = 0;
  await l.clean();
  expect(f.calls).toEqual(["del crashed netns=/ns/net/crashed", `unpin {"net":"/ns/net/crashed","ipc":"/ns/ipc/crashed"}`]);
  expect(l.pending).toEqual([]);
});

test("a failed DEL keeps the namespaces pinned and the pod pending; a later try succeeds", async () => {
  const failDel = new Set(["removed"]);
  const f = fakes({ failDel });
  const l = new Leftovers(f.d);
  try {
    l.add("removed", { net: "/ns/net/removed" });
    await l.clean();
    expect(f.calls).toEqual(["del removed netns=/ns/net/removed"]); // no unpin: the next DEL needs the netns
    expect(l.pending).toEqual(["removed"]);
    failDel.clear();
    await l.clean();
    expect(f.calls.slice(1)).toEqual(["del removed netns=/ns/net/removed", `unpin {"net":"/ns/net/removed"}`]);
    expect(l.pending).toEqual([]);
  } finally {
    l.close();
  }
});

test("add schedules a background try (first after 2 s)", async () => {
  const f = fakes();
  const l = new Leftovers(f.d);
  try {
    l.add("removed", {});
    expect(f.calls).toEqual([]);
    const end = Date.now() + 5_000;
    while (l.pending.length && Date.now() < end) await Bun.sleep(50);
    expect(l.pending).toEqual([]);
    expect(f.calls).toEqual(["del removed netns=", "unpin {}"]);
  } finally {
    l.close();
  }
});

test("concurrent clean calls share one pass", async () => {
  const f = fakes({ attached: ["a"], pins: { a: { net: "/ns/net/a" } } });
  const l = new Leftovers(f.d);
  await l.find(new Set());
  await Promise.all([l.clean(), l.clean(), l.clean()]);
  expect(f.calls.filter((c) => c.startsWith("del"))).toEqual(["del a netns=/ns/net/a"]);
});
