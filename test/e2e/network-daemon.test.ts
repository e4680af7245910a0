// Pod networking through CNI, end to end on the compiled daemon with the real plugins and iptables:
// the shipped default conflist (bridge, subnets and IPAM dir made unique) copied into network_dir;
// two pods get distinct dual-stack addresses and reach each other; a hostPort reaches a pod from the
// host's 127.0.0.1; DNS options land in resolv.conf; host-network pods skip CNI; NetworkReady
// follows network_dir without a restart and RunPodSandbox waits for it (bounded); UpdateRuntimeConfig
// stores the pod CIDR; and once the pods are gone nothing of theirs is left on the host.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, renameSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { Protocol } from "../../src/gen/runtime/v1/api_pb.ts";
import { run } from "../../src/sys/exec.ts";
import { waitFor } from "../harness.ts";
import { ctrConfig, podConfig, startEnv, type Env, type PodConfig } from "../support/pods.ts";
import {
  canRun,
  cleanupNet,
  ipamReservations,
  mountsUnder,
  pinFiles,
  rulesMentioning,
  tableLines,
  testNet,
  vethsOn,
  type TestNet,
} from "../support/network.ts";

if (!canRun) console.warn("network-daemon e2e: skipped, needs root and /usr/lib/cni (containernetworking-plugins)");
setDefaultTimeout(60_000);

const HOST_PORT = 20000 + Math.floor(Math.random() * 10000);
let net: TestNet;
let env: Env;
/** Every CNI pod id this file made, and the per-pod iptables chains seen while they were up. */
const podIds: string[] = [];
const perPodChains = new Set<string>();
const dec = new TextDecoder();

const netDir = () => join(env.d.dir, "cni", "net.d");
const cniPod = (name: string, extra: Partial<PodConfig> = {}) => podConfig(name, env.d.dir, { hostNetwork: false, extra });

async function runPod(config: PodConfig): Promise<string> {
  const { podSandboxId } = await env.d.cri.runPodSandbox({ config });
  podIds.push(podSandboxId);
  return podSandboxId;
}

async function startCtr(podSandboxId: string, pod: PodConfig, name: string, cmd: string[]): Promise<string> {
  const { containerId } = await env.d.cri.createContainer({ podSandboxId, config: ctrConfig(name, env.busybox, cmd, {}, pod), sandboxConfig: pod });
  await env.d.cri.startContainer({ containerId });
  return containerId;
}

async function exec(containerId: string, cmd: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await env.d.cri.execSync({ containerId, cmd, timeout: 10n });
  return { code: r.exitCode, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

async function networkReady(): Promise<{ status: boolean; reason: string; message: string }> {
  const { status } = await env.d.cri.status({});
  const c = status!.conditions.find((x) => x.type === "NetworkReady")!;
  return { status: c.status, reason: c.reason, message: c.message };
}

/** Names of per-pod chains (CNI-<hash>, CNI-DN-<hash>) referenced by rules that mention `needles`. */
async function chainsMentioning(needles: string[]): Promise<string[]> {
  const out = new Set<string>();
  for (const l of await rulesMentioning(needles)) for (const m of l.matchAll(/\bCNI-(?:DN-)?[0-9a-f]{20,}\b/g)) out.add(m[0]);
  return [...out];
}

/** The node's IPv4 address on the default-route interface, as the daemon reports for host-network pods. */
async function nodeIPv4(): Promise<string> {
  const dev = JSON.parse(await run(["ip", "-j", "-4", "route", "show", "default"]))[0]?.dev as string;
  const addrs = JSON.parse(await run(["ip", "-j", "-4", "addr", "show", "dev", dev]))[0].addr_info as Array<{ local: string; scope: string }>;
  return addrs.find((a) => a.scope === "global")!.local;
}

beforeAll(async () => {
  if (!canRun) return;
  net = testNet();
  env = await startEnv({ cniConf: net.conflist });
  await env.d.cri.pullImage({ image: { image: env.busybox } });
}, 120_000);

afterAll(async () => {
  if (!canRun) return;
  await env?.[Symbol.asyncDispose]();
  if (net) await cleanupNet(net);
});

describe.skipIf(!canRun)("pod networking through the daemon", () => {
  test("the copied default conflist makes the node NetworkReady", async () => {
    expect(await networkReady()).toEqual({ status: true, reason: "", message: "" });
    await env.d.waitForLog(new RegExp(`CNI default network.*${net.name}`));
  });

  let web: { id: string; ctr: string; ips: string[]; pod: PodConfig };
  let client: { id: string; ctr: string; ips: string[] };

  test("two pods get distinct dual-stack addresses and reach each other over IPv4 and IPv6", async () => {
    const dnsConfig = {
      servers: ["10.96.0.10", "fd00:96::a"],
      searches: ["default.svc.cluster.local", "svc.cluster.local"],
      options: ["ndots:5", "timeout:2"],
    };
    const webPod = cniPod("web", { portMappings: [{ protocol: Protocol.TCP, containerPort: 8080, hostPort: HOST_PORT }], dnsConfig });
    const webId = await runPod(webPod);
    const webCtr = await startCtr(webId, webPod, "httpd", [
      "sh",
      "-c",
      "mkdir -p /www && echo served-by-web > /www/index.html && exec httpd -f -p 8080 -h /www",
    ]);
    const clientPod = cniPod("client");
    const clientId = await runPod(clientPod);
    const clientCtr = await startCtr(clientId, clientPod, "sleeper", ["sleep", "3600"]);

    const ipsOf = async (id: string) => {
      const n = (await env.d.cri.podSandboxStatus({ podSandboxId: id })).status!.network!;
      return [n.ip, ...n.additionalIps.map((x) => x.ip)];
    };
    web = { id: webId, ctr: webCtr, ips: await ipsOf(webId), pod: webPod };
    client = { id: clientId, ctr: clientCtr, ips: await ipsOf(clientId) };
    for (const ips of [web.ips, client.ips]) {
      expect(ips.length).toBe(2);
      expect(isIP(ips[0]!)).toBe(4); // the primary pod IP is IPv4, the additional one IPv6
      expect(isIP(ips[1]!)).toBe(6);
      expect(ips[0]!.startsWith(net.subnet4.split(".").slice(0, 3).join(".") + ".")).toBe(true);
    }
    expect(web.ips[0]).not.toBe(client.ips[0]);
    expect(web.ips[1]).not.toBe(client.ips[1]);
    expect(ipamReservations(net).sort()).toEqual([...web.ips, ...client.ips].sort());
    // the pod's eth0 holds exactly the reported addresses
    const addrs = (await exec(client.ctr, ["ip", "-o", "addr", "show", "dev", "eth0"])).out;
    for (const ip of client.ips) expect(addrs).toContain(` ${ip}/`);
    expect((await vethsOn(net.bridge)).length).toBe(2);

    // (no -T: busybox 1.35's wget crashes with it; execSync's timeout bounds the call)
    const get = (url: string) => exec(client.ctr, ["wget", "-qO-", url]);
    await waitFor(async () => (await get(`http://${web.ips[0]}:8080/`)).out === "served-by-web\n", 15_000, "wget over IPv4");
    // IPv6 needs duplicate address detection to finish on both ends first
    await waitFor(async () => (await get(`http://[${web.ips[1]}]:8080/`)).out === "served-by-web\n", 15_000, "wget over IPv6");
    for (const c of await chainsMentioning([web.id, client.id])) perPodChains.add(c);
    expect(perPodChains.size).toBeGreaterThan(0); // ipMasq chains per pod (and portmap's DNAT chain for web)
  });

  test("a hostPort reaches the pod from the host's 127.0.0.1", async () => {
    const res = await fetch(`http://127.0.0.1:${HOST_PORT}/`, { signal: AbortSignal.timeout(5_000) });
    expect(await res.text()).toBe("served-by-web\n");
    // and through the node's own address
    const res2 = await fetch(`http://${await nodeIPv4()}:${HOST_PORT}/`, { signal: AbortSignal.timeout(5_000) });
    expect(await res2.text()).toBe("served-by-web\n");
    expect((await rulesMentioning([`--dport ${HOST_PORT}`, `--dports ${HOST_PORT}`])).length).toBeGreaterThan(0);
  });

  test("dns_config servers, searches and options land in the container's /etc/resolv.conf", async () => {
    const r = await exec(web.ctr, ["cat", "/etc/resolv.conf"]);
    expect(r.out).toBe("search default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\nnameserver fd00:96::a\noptions ndots:5 timeout:2\n");
  });

  test("host-network pods skip CNI and report the node's addresses", async () => {
    const pod = podConfig("hostnet", env.d.dir);
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    const n = (await env.d.cri.podSandboxStatus({ podSandboxId })).status!.network!;
    expect(n.ip).toBe(await nodeIPv4());
    for (const x of n.additionalIps) expect(isIP(x.ip)).toBe(6);
    expect(existsSync(join(env.d.root, "cni-cache", `${podSandboxId}.json`))).toBe(false);
    expect(pinFiles(env.d.runroot).filter((f) => f.startsWith("net/"))).not.toContain(`net/${podSandboxId}`);
    expect((await vethsOn(net.bridge)).length).toBe(2);
    const ctr = await startCtr(podSandboxId, pod, "hn", ["sleep", "3600"]);
    const links = (await exec(ctr, ["cat", "/proc/net/dev"])).out;
    expect(links).toContain(net.bridge); // the host's interfaces are visible: the host's network namespace
    await env.d.cri.stopPodSandbox({ podSandboxId });
    await env.d.cri.removePodSandbox({ podSandboxId });
  });

  test("UpdateRuntimeConfig stores the pod CIDR", async () => {
    const cidr = `10.244.${Math.floor(Math.random() * 256)}.0/24`;
    await env.d.cri.updateRuntimeConfig({ runtimeConfig: { networkConfig: { podCidr: cidr } } });
    // logrus text format escapes the quotes: msg="pod CIDR set to \"10.244.7.0/24\""
    const line = await env.d.waitForLog(/pod CIDR set to/);
    expect(line).toContain(cidr);
  });

  test("stopping and removing the pods leaves nothing of theirs on the host", async () => {
    for (const id of [web.id, client.id]) {
      await env.d.cri.stopPodSandbox({ podSandboxId: id });
      await env.d.cri.removePodSandbox({ podSandboxId: id });
    }
    await expectNoLeaks();
  });

  test("NetworkReady flips when the config is removed and added back, without a restart", async () => {
    const aside = join(env.d.dir, "aside.conflist");
    renameSync(join(netDir(), "10-test.conflist"), aside);
    const r = await waitFor(async () => ((await networkReady()).status ? undefined : await networkReady()), 15_000, "NetworkReady false");
    expect(r).toEqual({
      status: false,
      reason: "NetworkPluginNotReady",
      message: `Network plugin returns error: No CNI configuration file in ${netDir()}. Has your network provider started?`,
    });
    renameSync(aside, join(netDir(), "10-test.conflist"));
    await waitFor(async () => (await networkReady()).status, 15_000, "NetworkReady true");
  });

  test("RunPodSandbox of a CNI pod while the network is not ready waits (bounded), then fails naming the directory", async () => {
    const aside = join(env.d.dir, "aside.conflist");
    renameSync(join(netDir(), "10-test.conflist"), aside);
    try {
      await waitFor(async () => !(await networkReady()).status, 15_000, "NetworkReady false");
      const t0 = performance.now();
      const err = await env.d.cri.runPodSandbox({ config: cniPod("early") }, { timeoutMs: 60_000 }).catch((e) => e);
      const waited = performance.now() - t0;
      expect(err.code).toBe(14); // UNAVAILABLE: the kubelet retries
      expect(err.details).toContain(`No CNI configuration file in ${netDir()}`);
      expect(err.details).toContain("wait for the network");
      expect(waited).toBeGreaterThan(9_000); // cni_status_grace_period, at least 10 s
      expect(waited).toBeLessThan(30_000);
      // the failed attempt left nothing behind
      expect((await env.d.cri.listPodSandbox({})).items).toEqual([]);
      expect(pinFiles(env.d.runroot)).toEqual([]);
      expect(mountsUnder(join(env.d.runroot, "sandboxes"))).toEqual([]);
    } finally {
      renameSync(aside, join(netDir(), "10-test.conflist"));
    }
  });

  test("a RunPodSandbox waiting for the network goes on once a config appears", async () => {
    const aside = join(env.d.dir, "aside.conflist");
    renameSync(join(netDir(), "10-test.conflist"), aside);
    await waitFor(async () => !(await networkReady()).status, 15_000, "NetworkReady false");
    const pending = env.d.cri.runPodSandbox({ config: cniPod("patient") }, { timeoutMs: 60_000 });
    await Bun.sleep(1_000); // let it start waiting
    renameSync(aside, join(netDir(), "10-test.conflist"));
    const { podSandboxId } = await pending;
    podIds.push(podSandboxId);
    const n = (await env.d.cri.podSandboxStatus({ podSandboxId })).status!.network!;
    expect(isIP(n.ip)).toBe(4);
    await env.d.cri.stopPodSandbox({ podSandboxId });
    await env.d.cri.removePodSandbox({ podSandboxId });
    await expectNoLeaks();
  });
});

/** Nothing of this file's pods is left: veths, IPAM reservations, iptables rules and chains, pins, mounts, cache. */
async function expectNoLeaks(): Promise<void> {
  expect(await vethsOn(net.bridge)).toEqual([]);
  expect(ipamReservations(net)).toEqual([]);
  expect(await rulesMentioning([...podIds, net.name, `--dport ${HOST_PORT}`, `--dports ${HOST_PORT}`])).toEqual([]);
  const lines = [...(await tableLines("iptables-save")), ...(await tableLines("ip6tables-save"))];
  expect(lines.filter((l) => [...perPodChains].some((c) => l.includes(c)))).toEqual([]);
  expect(pinFiles(env.d.runroot)).toEqual([]);
  expect(mountsUnder(join(env.d.runroot, "ns"))).toEqual([]);
  expect(mountsUnder(join(env.d.runroot, "sandboxes"))).toEqual([]);
  const cache = join(env.d.root, "cni-cache");
  expect(existsSync(cache) ? readdirSync(cache) : []).toEqual([]);
}
