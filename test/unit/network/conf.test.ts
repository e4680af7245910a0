import { describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../../harness.ts";
import { compareVersions, findPlugin, loadNetworks, parseNetworkConf, selectDefault } from "../../../src/network/conf.ts";

const bridge = { type: "bridge", bridge: "cni0", ipam: { type: "host-local", subnet: "10.1.0.0/16" } };

describe("parseNetworkConf", () => {
  test("a .conflist keeps its plugins, flags and version", () => {
    const l = parseNetworkConf(
      "/d/10-a.conflist",
      JSON.stringify({ cniVersion: "0.4.0", name: "a", disableCheck: true, plugins: [bridge, { type: "portmap", capabilities: { portMappings: true } }] }),
    );
    expect(l).toEqual({
      name: "a",
      cniVersion: "0.4.0",
      disableCheck: true,
      disableGC: false,
      plugins: [bridge, { type: "portmap", capabilities: { portMappings: true } }],
      file: "/d/10-a.conflist",
    });
  });

  test("a .conf is wrapped as a one-plugin list (libcni ConfListFromConf)", () => {
    const conf = { cniVersion: "0.3.1", name: "b", ...bridge };
    const l = parseNetworkConf("/d/b.conf", JSON.stringify(conf));
    expect(l.name).toBe("b");
    expect(l.cniVersion).toBe("0.3.1");
    expect(l.plugins).toEqual([conf]);
  });

  test("the highest supported version of cniVersion/cniVersions is selected", () => {
    const l = parseNetworkConf(
      "/d/x.conflist",
      JSON.stringify({ cniVersion: "1.0.0", cniVersions: ["0.4.0", "1.1.0", "9.0.0"], name: "x", plugins: [bridge] }),
    );
    expect(l.cniVersion).toBe("1.1.0");
  });

  test.each([
    ["not json", "{", /not valid JSON/],
    ["no name", JSON.stringify({ cniVersion: "1.0.0", plugins: [bridge] }), /missing or invalid network "name"/],
    ["bad name", JSON.stringify({ cniVersion: "1.0.0", name: "-x", plugins: [bridge] }), /invalid network "name"/],
    ["empty plugins", JSON.stringify({ cniVersion: "1.0.0", name: "x", plugins: [] }), /non-empty list/],
    ["plugin without type", JSON.stringify({ cniVersion: "1.0.0", name: "x", plugins: [{}] }), /plugins\[0\] has a missing or invalid "type"/],
    ["type with a slash", JSON.stringify({ cniVersion: "1.0.0", name: "x", plugins: [{ type: "../bin/sh" }] }), /invalid "type"/],
    ["unknown version", JSON.stringify({ cniVersion: "7.0.0", name: "x", plugins: [bridge] }), /unsupported cniVersion 7.0.0/],
  ])("rejects %s", (_what, text, re) => {
    expect(() => parseNetworkConf("/d/x.conflist", text)).toThrow(re);
  });
});

describe("loadNetworks", () => {
  test("lexical order, first of a name wins, missing plugins and other extensions are skipped", () => {
    using d = tempDir();
    const bin = join(d.path, "bin");
    const net = join(d.path, "net.d");
    mkdirSync(bin);
    mkdirSync(net);
    for (const t of ["bridge", "portmap"]) {
      writeFileSync(join(bin, t), "#!/bin/sh\n");
      chmodSync(join(bin, t), 0o755);
    }
    writeFileSync(join(bin, "noexec"), "");
    const list = (name: string, types: string[]) => JSON.stringify({ cniVersion: "1.0.0", name, plugins: types.map((type) => ({ type })) });
    writeFileSync(join(net, "30-dup.conflist"), list("one", ["bridge"]));
    writeFileSync(join(net, "20-one.conflist"), list("one", ["bridge", "portmap"]));
    writeFileSync(join(net, "10-missing.conflist"), list("missing", ["bridge", "flannel"]));
    writeFileSync(join(net, "15-noexec.conflist"), list("noexec", ["noexec"]));
    writeFileSync(join(net, "40-two.json"), JSON.stringify({ cniVersion: "0.4.0", name: "two", type: "bridge" }));
    writeFileSync(join(net, "50-ignored.txt"), list("ignored", ["bridge"]));
    writeFileSync(join(net, "05-broken.conf"), "{");
    const { networks, problems } = loadNetworks(net, [join(d.path, "nope"), bin]);
    expect(networks.map((n) => [n.name, n.file.split("/").pop()])).toEqual([
      ["one", "20-one.conflist"],
      ["two", "40-two.json"],
    ]);
    expect(problems.map((p) => p.file.split("/").pop())).toEqual(["05-broken.conf", "10-missing.conflist", "15-noexec.conflist", "30-dup.conflist"]);
    expect(problems[1]!.reason).toContain('plugin "flannel" not found in');
    expect(selectDefault(networks)?.name).toBe("one");
    expect(selectDefault(networks, "two")?.name).toBe("two");
    expect(selectDefault(networks, "absent")).toBeUndefined();
  });

  test("a missing directory is simply empty", () => {
    expect(loadNetworks("/nonexistent/net.d", ["/usr/lib/cni"])).toEqual({ networks: [], problems: [] });
  });
});

test("findPlugin refuses path-like types", () => {
  expect(findPlugin("../../bin/sh", ["/usr/lib/cni"])).toBeUndefined();
  expect(findPlugin("", ["/usr/lib/cni"])).toBeUndefined();
});

test("compareVersions is numeric", () => {
  expect(compareVersions("0.10.0", "0.4.0")).toBeGreaterThan(0);
  expect(compareVersions("1.0.0", "1.0.0")).toBe(0);
  expect(compareVersions("0.3.1", "0.4.0")).toBeLessThan(0);
});
