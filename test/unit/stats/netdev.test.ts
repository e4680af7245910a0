import { describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { netDevReader, parseNetDev } from "../../../src/stats/netdev.ts";
import { KeptFiles } from "../../../src/sys/kept-files.ts";
import { netdevText, tree, writeProc } from "./fixtures.ts";

describe("parseNetDev", () => {
  test("reads every interface but lo", () => {
    expect(parseNetDev(netdevText(1234, 5678))).toEqual([
      { name: "eth0", rxBytes: 1234, rxPackets: 7, rxErrors: 1, rxDropped: 2, txBytes: 5678, txPackets: 5, txErrors: 3, txDropped: 4 },
    ]);
    expect(parseNetDev("garbage\n")).toEqual([]);
  });
});

describe("netDevReader", () => {
  test("reads /proc/<pid>/net/dev of a process in the pod's namespace; otherwise runs the helper", async () => {
    using t = tree("v2");
    const netns = join(t.root, "netns-pod1");
    const other = join(t.root, "netns-other");
    writeFileSync(netns, "");
    writeFileSync(other, "");
    writeProc(t, 10, "/x", { netdev: netdevText(1, 1) }); // another pod's process (a recycled pid)
    writeProc(t, 11, "/x", { netdev: netdevText(2, 2) });
    for (const [pid, ns] of [
      [10, other],
      [11, netns],
    ] as const) {
      mkdirSync(join(t.proc, String(pid), "ns"), { recursive: true });
      symlinkSync(ns, join(t.proc, String(pid), "ns", "net"));
    }
    const helped: string[] = [];
    const r = netDevReader({ procRoot: t.proc, helper: async (ns) => (helped.push(ns), netdevText(3, 3)) });
    expect(parseNetDev(await r.read(netns, [10, 11]))[0]!.rxBytes).toBe(2);
    expect(helped).toEqual([]);
    expect(parseNetDev(await r.read(netns, [10, 99]))[0]!.rxBytes).toBe(3);
    expect(helped).toEqual([netns]);
  });

  test("with an owner, /proc/<pid>/net/dev is kept open under it once the namespace is checked, and read again without a new check", async () => {
    using t = tree("v2");
    const netns = join(t.root, "netns-pod1");
    writeFileSync(netns, "");
    writeProc(t, 11, "/x", { netdev: netdevText(2, 2) });
    mkdirSync(join(t.proc, "11", "ns"), { recursive: true });
    symlinkSync(netns, join(t.proc, "11", "ns", "net"));
    const files = new KeptFiles();
    const helped: string[] = [];
    const r = netDevReader({ procRoot: t.proc, files, helper: async (ns) => (helped.push(ns), netdevText(3, 3)) });
    expect(parseNetDev(await r.read(netns, [11], () => "c:a"))[0]!.rxBytes).toBe(2);
    expect(files.isKept("c:a", join(t.proc, "11", "net", "dev"))).toBe(true);
    writeFileSync(join(t.proc, "11", "net", "dev"), netdevText(5, 5)); // counters move
    rmSync(join(t.proc, "11", "ns", "net")); // no check on a kept descriptor: it stays bound to the namespace it was opened in
    expect(parseNetDev(await r.read(netns, [11], () => "c:a"))[0]!.rxBytes).toBe(5);
    files.release("c:a"); // the container stopped
    expect(parseNetDev(await r.read(netns, [11], () => "c:a"))[0]!.rxBytes).toBe(3); // checked anew: no longer in the namespace
    expect([helped, files.size]).toEqual([[netns], 0]);
  });
});
