import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../../harness.ts";
import { CniManager, CniPluginError, type PodNetwork } from "../../../src/network/index.ts";
import { fakePlugins, type FakePlugins } from "./fake-plugin.ts";

const BRIDGE_RESULT = {
  cniVersion: "1.0.0",
  interfaces: [{ name: "cni0" }, { name: "eth0", sandbox: "X" }],
  ips: [
    { address: "fd00::7/64", interface: 1 },
    { address: "10.9.0.7/24", gateway: "10.9.0.1", interface: 1 },
  ],
};

interface Env {
  dir: string;
  net: string;
  cache: string;
  fake: FakePlugins;
  pod: PodNetwork;
  manager(o?: { defaultNetwork?: string; rescanMs?: number }): CniManager;
  writeList(file: string, list: object): void;
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function env(types = ["bridge", "portmap"]): Env {
  const d = tempDir("crio-net-unit-");
  const net = join(d.path, "net.d");
  const fake = fakePlugins(d.path, types);
  fake.setResult("bridge", BRIDGE_RESULT);
  fake.setResult("portmap", BRIDGE_RESULT);
  const netns = join(d.path, "netns-p1");
  writeFileSync(netns, "");
  const managers: CniManager[] = [];
  cleanups.push(() => {
    for (const m of managers) m.close();
    d[Symbol.dispose]();
  });
  return {
    dir: d.path,
    net,
    cache: join(d.path, "cache"),
    fake,
    pod: { id: "p1", name: "web", namespace: "ns1", uid: "uid-1", netns, portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "TCP" }] },
    manager(o = {}) {
      const m = new CniManager({
        networkDir: net,
        pluginDirs: [join(d.path, "none"), fake.pluginDir],
        cacheDir: join(d.path, "cache"),
        rescanMs: o.rescanMs ?? 60_000,
        defaultNetwork: o.defaultNetwork,
      });
      managers.push(m);
      return m;
    },
    writeList(file, list) {
      mkdirSync(net, { recursive: true });
      writeFileSync(join(net, file), JSON.stringify(list));
    },
  };
}

const list = (over: object = {}) => ({
  cniVersion: "1.0.0",
  name: "testnet",
  plugins: [
    { type: "bridge", bridge: "br9", ipam: { type: "host-local" } },
    { type: "portmap", capabilities: { portMappings: true, bandwidth: false } },
  ],
  ...over,
});

describe("setUp", () => {
  test("runs the list in order with the protocol parameters, prevResult and capability-filtered runtimeConfig", async () => {
    const e = env();
    e.writeList("10-test.conflist", list());
    const m = e.manager();
    const r = await m.setUp({ ...e.pod, bandwidth: { ingressRate: 1000, ingressBurst: 1000 } });
    expect(r.ips).toEqual(["10.9.0.7", "fd00::7"]);
    const calls = e.fake.calls();
    expect(calls.map((c) => `${c.type} ${c.cmd}`)).toEqual(["bridge ADD", "portmap ADD"]);
    expect(calls[0]!.env).toEqual({
      CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=p1;K8S_POD_UID=uid-1",
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: "p1",
      CNI_IFNAME: "eth0",
      CNI_NETNS: e.pod.netns,
      CNI_PATH: `${join(e.dir, "none")}:${e.fake.pluginDir}`,
    });
    expect(calls[0]!.stdin).toEqual({ type: "bridge", bridge: "br9", ipam: { type: "host-local" }, name: "testnet", cniVersion: "1.0.0" });
    expect(calls[1]!.stdin).toEqual({
      type: "portmap",
      capabilities: { portMappings: true, bandwidth: false },
      name: "testnet",
      cniVersion: "1.0.0",
      prevResult: BRIDGE_RESULT,
      runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] },
    });
    expect(m.cachedResult("p1")?.ips).toEqual(["10.9.0.7", "fd00::7"]);
    expect(m.attachedPods()).toEqual(["p1"]);

    // a repeated setUp of the same pod and netns returns the cached result without running plugins
    e.fake.clearCalls();
    expect((await m.setUp(e.pod)).ips).toEqual(r.ips);
    expect(e.fake.calls()).toEqual([]);
  });

  test("a failing later plugin: the error names it, and DEL undoes the partial ADD in reverse order", async () => {
    const e = env();
    e.writeList("10-test.conflist", list());
    e.fake.fail("portmap", "ADD", { cniVersion: "1.0.0", code: 7, msg: "invalid port", details: "hostPort 8080 taken" });
    const m = e.manager();
    const err = await m.setUp(e.pod).catch((x) => x);
    expect(err.message).toBe(
      'set up network of pod "p1": cni plugin "portmap" (network "testnet", ADD) failed (exit 1): invalid port: hostPort 8080 taken (cni error code 7)',
    );
    expect(err.cause).toBeInstanceOf(CniPluginError);
    expect(err.cause).toMatchObject({ plugin: "portmap", command: "ADD", exitCode: 1, cniCode: 7, cniMsg: "invalid port", details: "hostPort 8080 taken" });
    const calls = e.fake.calls();
    expect(calls.map((c) => `${c.type} ${c.cmd}`)).toEqual(["bridge ADD", "portmap ADD", "portmap DEL", "bridge DEL"]);
    expect(calls[2]!.stdin.prevResult).toEqual(BRIDGE_RESULT);
    expect(calls[2]!.env.CNI_NETNS).toBe(""); // not a pinned namespace: DEL may omit it
    expect(m.attachedPods()).toEqual([]);
  });

  test("a plugin that prints no CNI error JSON is reported with its stderr", async () => {
    const e = env();
    e.writeList("10-test.conflist", list());
    e.fake.fail("bridge", "ADD", "");
    const err = await e
      .manager()
      .setUp(e.pod)
      .catch((x) => x);
    expect(err.message).toMatch(/cni plugin "bridge" \(network "testnet", ADD\) failed \(exit 1\): no output$/);
  });

  test("a canceled request is canceled, and its partial ADD is still undone", async () => {
    const e = env();
    e.writeList("10-test.conflist", list());
    const m = e.manager();
    await expect(m.setUp(e.pod, AbortSignal.abort())).rejects.toMatchObject({ kind: "canceled" });
    expect(e.fake.calls().map((c) => c.cmd)).toEqual(["DEL", "DEL"]);
    expect(m.attachedPods()).toEqual([]);
  });

  test("refuses bad input before running anything", async () => {
    const e = env();
    e.writeList("10-test.conflist", list());
    const m = e.manager();
    await expect(m.setUp({ ...e.pod, id: "../x" })).rejects.toThrow('invalid pod id "../x"');
    await expect(m.setUp({ ...e.pod, netns: join(e.dir, "absent") })).rejects.toThrow(/does not exist/);
    await expect(m.setUp({ ...e.pod, portMappings: [{ hostPort: 1, containerPort: 99999 }] })).rejects.toThrow(/invalid port mapping/);
    expect(e.fake.calls()).toEqual([]);
    expect(m.attachedPods()).toEqual([]);
  });
});

describe("tearDown", () => {
  test("a new manager DELs from the cache: same config, runtimeConfig and prevResult, even after the config is gone", async () => {
    const e = env();
    e.writeList("10-test.conflist", list());
    await e.manager().setUp(e.pod);
    rmSync(join(e.net, "10-test.conflist"));
    e.fake.clearCalls();

    const m2 = e.manager();
    expect((await m2.status()).ready).toBe(false);
    expect(m2.cachedResult("p1")?.ips).toEqual(["10.9.0.7", "fd00::7"]);
    await m2.tearDown({ id: "p1" });
    const calls = e.fake.calls();
    expect(calls.map((c) => `${c.type} ${c.cmd}`)).toEqual(["portmap DEL", "bridge DEL"]);
    expect(calls[0]!.stdin).toMatchObject({
      prevResult: BRIDGE_RESULT,
      runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] },
    });
    expect(calls[0]!.env.CNI_ARGS).toContain("K8S_POD_NAME=web");
    expect(existsSync(join(e.cache, "p1.json"))).toBe(false);

    e.fake.clearCalls();
    await m2.tearDown({ id: "p1" }); // idempotent: nothing attached
    expect(e.fake.calls()).toEqual([]);
  });

  test("a DEL that keeps failing throws after retries and keeps the record; it succeeds once fixed", async () => {
    const e = env();
    e.writeList("10-test.conflist", list());
    const m = e.manager();
    await m.setUp(e.pod);
    e.fake.clearCalls();
    e.fake.fail("bridge", "DEL", { code: 999, msg: "failed to delete veth", details: "device busy" });
    const err = await m.tearDown({ id: "p1" }).catch((x) => x);
    expect(err.message).toBe(
      'tear down network of pod "p1" (network "testnet"): cni plugin "bridge" (network "testnet", DEL) failed (exit 1): failed to delete veth: device busy (cni error code 999)',
    );
    expect(e.fake.calls().filter((c) => c.type === "bridge").length).toBe(3);
    expect(m.attachedPods()).toEqual(["p1"]);
    e.fake.heal("bridge", "DEL");
    await m.tearDown({ id: "p1" });
    expect(m.attachedPods()).toEqual([]);
  });

  test("0.3.1 networks get no prevResult on DEL and no CHECK", async () => {
    const e = env();
    e.writeList("10-test.conflist", list({ cniVersion: "0.3.1" }));
    const m = e.manager();
    await m.setUp(e.pod);
    e.fake.clearCalls();
    await m.check({ id: "p1" });
    await m.tearDown({ id: "p1" });
    expect(e.fake.calls().map((c) => [c.type, c.cmd, "prevResult" in c.stdin])).toEqual([
      ["portmap", "DEL", false],
      ["bridge", "DEL", false],
    ]);
  });
});

describe("check", () => {
  test("CHECK runs in order with the cached result, unless disableCheck", async () => {
    const e = env();
    e.writeList("10-test.conflist", list());
    const m = e.manager();
    await expect(m.check({ id: "p1" })).rejects.toThrow('network attachment of pod "p1" not found');
    await m.setUp(e.pod);
    e.fake.clearCalls();
    await m.check({ id: "p1" });
    expect(e.fake.calls().map((c) => [c.type, c.cmd, c.stdin.prevResult])).toEqual([
      ["bridge", "CHECK", BRIDGE_RESULT],
      ["portmap", "CHECK", BRIDGE_RESULT],
    ]);
    e.fake.fail("portmap", "CHECK", { code: 100, msg: "rule missing" });
    await expect(m.check({ id: "p1" })).rejects.toThrow(/check network of pod "p1": cni plugin "portmap" .*rule missing/);

    const e2 = env();
    e2.writeList("10-test.conflist", list({ disableCheck: true }));
    const m2 = e2.manager();
    await m2.setUp(e2.pod);
    e2.fake.clearCalls();
    await m2.check({ id: "p1" });
    expect(e2.fake.calls()).toEqual([]);
  });
});

describe("readiness", () => {
  test("the directory appears later, a config is dropped in and removed: the watch flips readiness", async () => {
    const e = env();
    const m = e.manager({ rescanMs: 60_000 }); // only the watch can notice in time
    expect(await m.status()).toEqual({
      ready: false,
      reason: "NetworkPluginNotReady",
      message: `No CNI configuration file in ${e.net}. Has your network provider started?`,
    });
    const waiting = m.waitReady(10_000);
    mkdirSync(e.net);
    writeFileSync(join(e.net, "99-later.conflist"), JSON.stringify(list()));
    await waiting;
    expect(m.defaultNetwork?.name).toBe("testnet");
    rmSync(join(e.net, "99-later.conflist"));
    expect((await m.status()).ready).toBe(false);

    // the directory is removed and made again: the watch follows the new directory
    rmSync(e.net, { recursive: true });
    const again = m.waitReady(10_000);
    mkdirSync(e.net);
    writeFileSync(join(e.net, "10-again.conflist"), JSON.stringify(list({ name: "again" })));
    await again;
    expect(m.defaultNetwork?.name).toBe("again");
  });

  test("waitReady fails clearly after its timeout, and on abort", async () => {
    const e = env();
    const m = e.manager();
    await expect(m.waitReady(50)).rejects.toMatchObject({
      kind: "unavailable",
      message: `network not ready after 50 ms: No CNI configuration file in ${e.net}. Has your network provider started?`,
    });
    await expect(m.waitReady(5_000, AbortSignal.abort())).rejects.toMatchObject({ kind: "canceled" });
  });

  test("defaultNetwork picks by name; an absent name is not ready; an invalid config is skipped", async () => {
    const e = env();
    e.writeList("10-a.conflist", list({ name: "a" }));
    e.writeList("20-b.conflist", list({ name: "b" }));
    e.writeList("05-bad.conflist", list({ name: "bad", plugins: [{ type: "flannel" }] }));
    expect(e.manager().defaultNetwork?.name).toBe("a");
    expect(e.manager({ defaultNetwork: "b" }).defaultNetwork?.name).toBe("b");
    const m = e.manager({ defaultNetwork: "c" });
    expect((await m.status()).ready).toBe(false);
    expect(m.problems.map((p) => p.reason)).toEqual([expect.stringContaining('plugin "flannel" not found')]);
  });
});

describe("CNI 1.1.0", () => {
  test("STATUS decides readiness and GC passes the valid attachments", async () => {
    const e = env();
    e.writeList("10-test.conflist", list({ cniVersion: "1.1.0" }));
    const m = e.manager();
    expect(await m.status()).toEqual({ ready: true });
    expect(e.fake.calls().map((c) => [c.type, c.cmd, c.env.CNI_CONTAINERID])).toEqual([
      ["bridge", "STATUS", undefined],
      ["portmap", "STATUS", undefined],
    ]);
    e.fake.fail("bridge", "STATUS", { code: 50, msg: "no addresses left" });
    const st = await m.status();
    expect(st).toMatchObject({ ready: false, reason: "NetworkPluginNotReady" });
    expect(st.message).toContain("no addresses left (cni error code 50)");
    e.fake.heal("bridge", "STATUS");

    await m.setUp(e.pod);
    await m.setUp({ ...e.pod, id: "p2" });
    e.fake.clearCalls();
    await m.gc(["p1"]);
    const gc = e.fake.calls();
    expect(gc.map((c) => [c.type, c.cmd])).toEqual([
      ["bridge", "GC"],
      ["portmap", "GC"],
    ]);
    expect(gc[0]!.stdin["cni.dev/valid-attachments"]).toEqual([{ containerID: "p1", ifname: "eth0" }]);
    expect(gc[0]!.stdin.runtimeConfig).toBeUndefined();
  });
});

test("the cache record is versioned JSON", async () => {
  const e = env();
  e.writeList("10-test.conflist", list());
  await e.manager().setUp(e.pod);
  const rec = JSON.parse(readFileSync(join(e.cache, "p1.json"), "utf8"));
  expect(rec.v).toBe(1);
  expect(rec.data).toMatchObject({ podId: "p1", containerId: "p1", ifName: "eth0", netns: e.pod.netns, network: { name: "testnet" }, result: BRIDGE_RESULT });
});
