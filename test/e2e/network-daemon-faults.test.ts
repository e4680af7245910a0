// Pod networking when things go wrong, on the compiled daemon with the real plugins: the daemon's
// plugin_dirs is a private directory of symlinks to /usr/lib/cni, so one plugin can be replaced by a
// failing or slow script. StopPodSandbox with a broken plugin fails and is retried; RemovePodSandbox
// never blocks on it (the teardown stays owed and finishes later); and a kill -9 while RunPodSandbox
// is in flight leaves nothing behind once the daemon is back (veth, address, iptables, namespaces).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Protocol } from "../../src/gen/runtime/v1/api_pb.ts";
import { removeDaemonDirs, startDaemon, waitFor, type TestDaemon } from "../harness.ts";
import { podConfig, type PodConfig } from "../support/pods.ts";
import {
  canRun,
  cleanupNet,
  ipamReservations,
  mountsUnder,
  pinFiles,
  pluginDir,
  rulesMentioning,
  tableLines,
  testNet,
  vethsOn,
  type TestNet,
} from "../support/network.ts";

if (!canRun) console.warn("network-daemon-faults e2e: skipped, needs root and /usr/lib/cni (containernetworking-plugins)");
setDefaultTimeout(90_000);

let dir: string;
let d: TestDaemon;
let net: TestNet;
let bin: ReturnType<typeof pluginDir>;
let runroot: string;
const ids: string[] = [];
const hostPorts: number[] = [];
const seenChains = new Set<string>();

const nextPort = () => {
  const p = 30000 + Math.floor(Math.random() * 10000);
  hostPorts.push(p);
  return p;
};
const cniPod = (name: string): PodConfig =>
  podConfig(name, dir, { hostNetwork: false, extra: { portMappings: [{ protocol: Protocol.TCP, containerPort: 80, hostPort: nextPort() }] } });

async function runPod(pod: PodConfig): Promise<string> {
  const { podSandboxId } = await d.cri.runPodSandbox({ config: pod });
  ids.push(podSandboxId);
  await remember([podSandboxId]);
  return podSandboxId;
}

/** Records the per-pod chains (ipMasq CNI-<hash>, portmap CNI-DN-<hash>) of `podIds`, to check later that they are gone. */
async function remember(podIds: string[]): Promise<void> {
  for (const l of await rulesMentioning(podIds)) for (const m of l.matchAll(/\bCNI-(?:DN-)?[0-9a-f]{20,}\b/g)) seenChains.add(m[0]);
}

const cacheIds = () => {
  const c = join(d.root, "cni-cache");
  return existsSync(c) ? readdirSync(c).map((f) => f.replace(/\.json$/, "")) : [];
};

/** What is left of this file's pods on the host; [] when nothing. */
async function leaks(): Promise<string[]> {
  const out: string[] = [];
  for (const v of await vethsOn(net.bridge)) out.push(`veth ${v}`);
  for (const a of ipamReservations(net)) out.push(`ipam ${a}`);
  const needles = [...ids, net.name, ...hostPorts.map((p) => `--dport ${p}`), ...hostPorts.map((p) => `--dports ${p}`)];
  for (const r of await rulesMentioning(needles)) out.push(`rule ${r}`);
  const lines = [...(await tableLines("iptables-save")), ...(await tableLines("ip6tables-save"))];
  for (const l of lines) if ([...seenChains].some((c) => l.includes(c))) out.push(`chain ${l}`);
  for (const f of pinFiles(runroot)) out.push(`pin ${f}`);
  for (const m of [...mountsUnder(join(runroot, "ns")), ...mountsUnder(join(runroot, "sandboxes"))]) out.push(`mount ${m}`);
  const runDirs = join(runroot, "sandboxes");
  for (const f of existsSync(runDirs) ? readdirSync(runDirs) : []) out.push(`run dir ${f}`);
  for (const c of cacheIds()) out.push(`cni cache ${c}`);
  return out;
}

async function expectNoLeaks(timeoutMs = 0): Promise<void> {
  if (timeoutMs) await waitFor(async () => (await leaks()).length === 0, timeoutMs, "the leftovers to be cleaned").catch(() => {});
  expect(await leaks()).toEqual([]);
}

async function verboseInfo(id: string): Promise<{ networkTeardownPending: boolean; namespaces: Record<string, string> }> {
  const r = await d.cri.podSandboxStatus({ podSandboxId: id, verbose: true });
  return JSON.parse(r.info.info!);
}

beforeAll(async () => {
  if (!canRun) return;
  dir = mkdtempSync(join(process.env.CRIO_TEST_TMP ?? tmpdir(), "crio-netf-"));
  net = testNet({ dualStack: false });
  bin = pluginDir(join(dir, "cni-bin"));
  mkdirSync(join(dir, "cni", "net.d"), { recursive: true });
  writeFileSync(join(dir, "cni", "net.d", "10-test.conflist"), net.conflist);
  d = await startDaemon({ dir, config: `[crio.network]\nplugin_dirs = [${JSON.stringify(bin.dir)}]\n` });
  runroot = d.runroot;
}, 60_000);

afterAll(async () => {
  if (!canRun) return;
  if (d) {
    for (const p of (await d.cri.listPodSandbox({}).catch(() => ({ items: [] }))).items) await d.cri.removePodSandbox({ podSandboxId: p.id }).catch(() => {});
    await d[Symbol.asyncDispose]();
  }
  if (dir) removeDaemonDirs(dir, runroot);
  if (net) await cleanupNet(net);
});

describe.skipIf(!canRun)("pod networking faults through the daemon", () => {
  test("StopPodSandbox with a broken plugin fails; once fixed, a second StopPodSandbox and RemovePodSandbox succeed", async () => {
    const id = await runPod(cniPod("stopfail"));
    bin.break("portmap");
    try {
      const err = await d.cri.stopPodSandbox({ podSandboxId: id }).catch((e) => e);
      expect(err.code).toBe(2); // UNKNOWN: the plugin's failure
      expect(err.details).toContain(`stop pod sandbox "${id}": network teardown (will be retried)`);
      expect(err.details).toContain(
        `cni plugin "portmap" (network "${net.name}", DEL) failed (exit 1): portmap is broken: fault injected by the test (cni error code 999)`,
      );
      const info = await verboseInfo(id);
      expect(info.networkTeardownPending).toBe(true);
      expect(pinFiles(runroot)).toContain(`net/${id}`); // kept for the next DEL
      expect(cacheIds()).toEqual([id]);
    } finally {
      bin.fix("portmap");
    }
    await d.cri.stopPodSandbox({ podSandboxId: id });
    expect((await verboseInfo(id)).networkTeardownPending).toBe(false);
    await d.cri.removePodSandbox({ podSandboxId: id });
    expect((await d.cri.listPodSandbox({})).items).toEqual([]);
    await expectNoLeaks();
  });

  test("RemovePodSandbox with the plugin still broken does not block: the pod goes, the failure is logged, the teardown finishes later", async () => {
    const id = await runPod(cniPod("rmfail"));
    bin.break("portmap");
    try {
      const t0 = performance.now();
      await d.cri.removePodSandbox({ podSandboxId: id });
      expect(performance.now() - t0).toBeLessThan(20_000);
      expect((await d.cri.listPodSandbox({})).items).toEqual([]);
      await d.waitForLog(new RegExp(`network teardown of pod sandbox ${id} failed; removing the pod anyway`));
      // still owed, with what the DEL needs: the cached attachment and the pinned netns
      expect(cacheIds()).toEqual([id]);
      expect(pinFiles(runroot)).toContain(`net/${id}`);
      expect(ipamReservations(net).length).toBe(1);
    } finally {
      bin.fix("portmap");
    }
    // retried in the background (first after 2 s) without any RPC
    await d.waitForLog(new RegExp(`Cleaned up the network and namespaces of pod sandbox ${id}`), 30_000);
    await expectNoLeaks();
  });

  test("a teardown still owed when the daemon stops is done by the next start", async () => {
    const id = await runPod(cniPod("rmrestart"));
    bin.break("portmap");
    try {
      await d.cri.removePodSandbox({ podSandboxId: id });
      expect(await d.stop("SIGTERM")).toBe(0);
      expect(cacheIds()).toEqual([id]);
      expect((await vethsOn(net.bridge)).length).toBe(1);
    } finally {
      bin.fix("portmap");
    }
    d.cri.close();
    d = await startDaemon({ dir });
    await d.waitForLog(new RegExp(`Cleaned up the network and namespaces of pod sandbox ${id}`), 30_000);
    await expectNoLeaks();
  });

  test("RunPodSandbox whose portmap ADD fails returns the plugin's error and undoes the bridge ADD", async () => {
    bin.breakAdd("portmap");
    try {
      const pod = cniPod("addfail");
      const err = await d.cri.runPodSandbox({ config: pod }).catch((e) => e);
      expect(err.details).toContain(`set up pod network: set up network of pod "`);
      expect(err.details).toContain(
        `cni plugin "portmap" (network "${net.name}", ADD) failed (exit 1): portmap ADD is broken: fault injected by the test (cni error code 999)`,
      );
      const id = /set up network of pod "([0-9a-f]+)"/.exec(err.details)![1]!;
      ids.push(id);
      expect((await d.cri.listPodSandbox({})).items).toEqual([]);
      await expectNoLeaks();
    } finally {
      bin.fix("portmap");
    }
  });

  test("RunPodSandbox whose portmap fails ADD and DEL: the error is returned, the owed teardown is done once the plugin works", async () => {
    bin.break("portmap");
    let id: string;
    try {
      const err = await d.cri.runPodSandbox({ config: cniPod("addneverdel") }).catch((e) => e);
      expect(err.details).toContain("portmap is broken");
      id = /set up network of pod "([0-9a-f]+)"/.exec(err.details)![1]!;
      ids.push(id);
      await remember([id]);
      expect((await d.cri.listPodSandbox({})).items).toEqual([]);
      // what the DEL needs is kept: the cached attachment and the pinned netns
      expect(cacheIds()).toEqual([id]);
      expect(pinFiles(runroot)).toContain(`net/${id}`);
    } finally {
      bin.fix("portmap");
    }
    await d.waitForLog(new RegExp(`Cleaned up the network and namespaces of pod sandbox ${id}`), 30_000);
    await expectNoLeaks();
  });

  for (const plugin of ["bridge", "portmap"] as const) {
    test(`kill -9 of the daemon while RunPodSandbox waits on a slow ${plugin}: the restarted daemon leaves nothing behind`, async () => {
      const marker = join(dir, `${plugin}.pid`);
      const release = join(dir, `${plugin}.release`);
      bin.slow(plugin, marker, release);
      const pod = cniPod(`crash-${plugin}`);
      try {
        const pending = d.cri.runPodSandbox({ config: pod }).then(
          () => undefined,
          (e) => e,
        );
        await waitFor(() => existsSync(marker) && readFileSync(marker, "utf8").trim(), 30_000, `the slow ${plugin} to start`);
        const wrapperPid = Number(readFileSync(marker, "utf8").trim());
        const [id] = cacheIds(); // the attachment is recorded before the ADD
        expect(id).toBeDefined();
        ids.push(id!);
        if (plugin === "portmap") {
          // the bridge ADD is done: there is something to leak
          expect((await vethsOn(net.bridge)).length).toBe(1);
          expect(ipamReservations(net).length).toBe(1);
          await remember([id!]);
          expect(seenChains.size).toBeGreaterThan(0);
        }
        expect(pinFiles(runroot)).toContain(`net/${id}`);
        expect(existsSync(join(d.root, "sandboxes", id!))).toBe(false); // no record yet

        d.proc.kill("SIGKILL");
        await d.proc.exited;
        expect((await pending)?.code).toBe(14); // UNAVAILABLE: the connection dropped
        // the plugin died with the daemon, so it cannot finish its ADD after the clean-up
        await waitFor(() => !existsSync(`/proc/${wrapperPid}`), 10_000, "the plugin to die with the daemon");
      } finally {
        bin.fix(plugin);
        rmSync(marker, { force: true });
      }
      d.cri.close();
      d = await startDaemon({ dir });
      await expectNoLeaks(30_000);
      await d.waitForLog(/found leftovers of 1 pod sandbox\(es\) without a record/);
      // the kubelet's retry of the same pod works
      const again = await runPod(pod);
      await d.cri.stopPodSandbox({ podSandboxId: again });
      await d.cri.removePodSandbox({ podSandboxId: again });
      await expectNoLeaks();
    });
  }
});
