// A pod with an infra container (shared PID namespace) on a CNI network: the infra container and
// the network are set up at once; when either fails, both are undone. Real runc and plugins.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../harness.ts";
import { podConfig, startEnv, type Env } from "../support/pods.ts";
import { canRun, cleanupNet, ipamReservations, pluginDir, testNet, vethsOn, type TestNet } from "../support/network.ts";

setDefaultTimeout(60_000);
const files = tempDir("crio-netinfra-");
let env: Env;
let net: TestNet;
let bin: ReturnType<typeof pluginDir>;
beforeAll(async () => {
  if (!canRun) return;
  net = testNet({ dualStack: false });
  bin = pluginDir(join(files.path, "cni-bin"));
  env = await startEnv({ logLevel: "info", cniConf: net.conflist, config: `[crio.network]\nplugin_dirs = [${JSON.stringify(bin.dir)}]\n` });
}, 120_000);
afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
  if (net) await cleanupNet(net);
  files[Symbol.dispose]();
});

const sharedPidPod = (name: string) => podConfig(name, env.d.dir, { hostNetwork: false, sharedPid: true });
const monitorsOf = (id: string) =>
  readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const c = readFileSync(`/proc/${p}/cmdline`, "utf8");
        return c.includes("conmon") && c.includes(id);
      } catch {
        return false;
      }
    });

describe.skipIf(!canRun)("pods with an infra container on a CNI network", () => {
  test("the pod gets its IP and its infra container; removing the pod takes both away", async () => {
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: sharedPidPod("infra-ok") });
    const st = (await env.d.cri.podSandboxStatus({ podSandboxId, verbose: true })).status!;
    expect(st.network?.ip).toMatch(/^10\./);
    expect(monitorsOf(podSandboxId)).toHaveLength(1);
    await env.d.cri.stopPodSandbox({ podSandboxId });
    await env.d.cri.removePodSandbox({ podSandboxId });
    expect(monitorsOf(podSandboxId)).toEqual([]);
  });

  test("a failing CNI ADD while the infra container starts: the error, and neither is left behind", async () => {
    bin.breakAdd("portmap");
    try {
      const err = await env.d.cri.runPodSandbox({ config: sharedPidPod("infra-fail") }).catch((e) => e);
      expect(err.details).toContain("portmap ADD is broken");
      const id = /set up network of pod "([0-9a-f]+)"/.exec(err.details)![1]!;
      expect((await env.d.cri.listPodSandbox({})).items).toEqual([]);
      expect((await env.d.cri.listContainers({})).containers).toEqual([]);
      expect(monitorsOf(id)).toEqual([]);
      expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(id);
      expect(await vethsOn(net.bridge)).toEqual([]);
      expect(ipamReservations(net)).toEqual([]);
      const runc = join(env.d.dir, "runc");
      expect(readdirSync(runc).filter((x) => x === id)).toEqual([]);
    } finally {
      bin.fix("portmap");
    }
  });
});
