import { describe, expect, test } from "bun:test";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { netDevReader, parseNetDev } from "../../../src/stats/netdev.ts";
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
});
