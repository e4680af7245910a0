// Runtime handlers on the compiled daemon: the default runc, a second handler entry pointing at the
// same runc binary with its own runtime_root, an unknown handler refused, the handlers and their
// features in Status, and crun (which needs a cgroup v2 host: on this hybrid node it must fail
// clearly, naming crun and the cgroup problem).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status as grpc } from "@grpc/grpc-js";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { run } from "../../src/sys/exec.ts";
import { detectCgroupLayout } from "../../src/sys/cgroup.ts";
import { ContainerState } from "../../src/gen/runtime/v1/api_pb.ts";
import { tempDir, waitFor } from "../harness.ts";
import { ctrConfig, podConfig, startEnv, type Env } from "../support/pods.ts";

const roots = tempDir("crio-handlers-");
const MY_ROOT = join(roots.path, "myrunc");
const hybrid = detectCgroupLayout().kind !== "v2";

let env: Env;
beforeAll(async () => {
  env = await startEnv({
    config: `[crio.runtime.runtimes.myrunc]\nruntime_path = "/usr/bin/runc"\nruntime_root = ${JSON.stringify(MY_ROOT)}\nprivileged_without_host_devices = true\n`,
  });
  await env.d.cri.pullImage({ image: { image: env.busybox } });
}, 120_000);
afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
  roots[Symbol.dispose]();
});

let seq = 0;
async function pod(handler: string) {
  const name = `h${++seq}`;
  const p = podConfig(name, env.d.dir);
  const { podSandboxId } = await env.d.cri.runPodSandbox({ config: p, runtimeHandler: handler });
  return { name, p, podSandboxId };
}

async function runIn(handler: string, o: { privileged?: boolean } = {}) {
  const name = `h${++seq}`;
  const p = podConfig(name, env.d.dir);
  if (o.privileged) p.linux!.securityContext!.privileged = true;
  const { podSandboxId } = await env.d.cri.runPodSandbox({ config: p, runtimeHandler: handler });
  const extra = o.privileged ? { linux: { securityContext: { privileged: true } } } : {};
  const { containerId } = await env.d.cri.createContainer({
    podSandboxId,
    config: ctrConfig(name, env.busybox, ["sleep", "3600"], extra, p),
    sandboxConfig: p,
  });
  await env.d.cri.startContainer({ containerId });
  return { podSandboxId, containerId };
}

/** The ids a runc state root knows. */
async function runcList(root: string): Promise<string[]> {
  if (!existsSync(root)) return [];
  const out = await run(["runc", "--root", root, "list", "-q"]);
  return out.split("\n").filter(Boolean);
}

describe("runtime handlers", () => {
  test('runtime_handler "runc" and the empty handler both run on runc under its runtime_root', async () => {
    const a = await runIn("runc");
    const b = await runIn("");
    for (const c of [a, b]) {
      expect((await env.d.cri.containerStatus({ containerId: c.containerId })).status?.state).toBe(ContainerState.CONTAINER_RUNNING);
      expect(await runcList(env.d.runcRoot)).toContain(c.containerId);
      expect((await env.d.cri.podSandboxStatus({ podSandboxId: c.podSandboxId })).status?.runtimeHandler).toBe("runc");
    }
  });

  test("an unknown handler is INVALID_ARGUMENT naming it and the configured ones", async () => {
    const err = await pod("nosuch").catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    expect(err.details).toContain('runtime handler "nosuch" is not configured');
    expect(err.details).toContain("runc");
    expect((await env.d.cri.listPodSandbox({})).items.some((p) => p.runtimeHandler === "nosuch")).toBe(false);
  });
});

describe("a second handler entry", () => {
  test("myrunc (/usr/bin/runc with another runtime_root) runs containers kept in its own root", async () => {
    const c = await runIn("myrunc");
    expect((await env.d.cri.containerStatus({ containerId: c.containerId })).status?.state).toBe(ContainerState.CONTAINER_RUNNING);
    expect(await runcList(MY_ROOT)).toContain(c.containerId);
    expect(await runcList(env.d.runcRoot)).not.toContain(c.containerId);
    expect((await env.d.cri.podSandboxStatus({ podSandboxId: c.podSandboxId })).status?.runtimeHandler).toBe("myrunc");
    const ex = await env.d.cri.execSync({ containerId: c.containerId, cmd: ["echo", "hi"], timeout: 10n });
    expect(new TextDecoder().decode(ex.stdout)).toBe("hi\n");
    await env.d.cri.stopContainer({ containerId: c.containerId, timeout: 0n });
    await waitFor(
      async () => (await env.d.cri.containerStatus({ containerId: c.containerId })).status?.state === ContainerState.CONTAINER_EXITED,
      15_000,
      "exit",
    );
    await env.d.cri.removePodSandbox({ podSandboxId: c.podSandboxId });
    expect(await runcList(MY_ROOT)).not.toContain(c.containerId);
  });
});

describe("Status", () => {
  test('lists every handler (the default also as "") with its features', async () => {
    // user namespaces: reported once the node's probe (started after recovery) has passed
    const st = await waitFor(async () => {
      const r = await env.d.cri.status({});
      return r.runtimeHandlers.find((h) => h.name === "runc")?.features?.userNamespaces ? r : undefined;
    });
    const byName = Object.fromEntries(st.runtimeHandlers.map((h) => [h.name, h.features]));
    expect(Object.keys(byName).sort()).toEqual(["", "crun", "myrunc", "runc"]);
    // runc 1.1 lists "rro" in `runc features`; this kernel has mount_setattr (≥ 5.12).
    const runcFeatures = JSON.parse(await run(["runc", "features"])) as { mountOptions?: string[] };
    const rro = (runcFeatures.mountOptions ?? []).includes("rro");
    for (const n of ["", "runc", "myrunc"]) expect(byName[n]).toMatchObject({ recursiveReadOnlyMounts: rro, userNamespaces: true });
    // crun: as its own `features` says (its namespaces list), on this node that passed the probe
    const crunUser =
      existsSync("/usr/bin/crun") &&
      ((JSON.parse(await run(["crun", "features"]).catch(() => "{}")) as { linux?: { namespaces?: string[] } }).linux?.namespaces ?? ["user"]).includes("user");
    expect(byName.crun?.userNamespaces).toBe(crunUser);
  });
});

describe.skipIf(!existsSync("/usr/bin/crun"))("crun", () => {
  test(
    hybrid ? "on this hybrid cgroup node crun fails with a clear error naming crun and the cgroup problem" : "runs a container on a cgroup v2 node",
    async () => {
      if (!hybrid) {
        const c = await runIn("crun");
        expect((await env.d.cri.containerStatus({ containerId: c.containerId })).status?.state).toBe(ContainerState.CONTAINER_RUNNING);
        return;
      }
      const { name, p, podSandboxId } = await pod("crun");
      const err = await env.d.cri
        .createContainer({ podSandboxId, config: ctrConfig(name, env.busybox, ["sleep", "3600"], {}, p), sandboxConfig: p })
        .catch((e) => e);
      expect(err.details).toContain('runtime create with handler "crun" (/usr/bin/crun)');
      expect(err.details).toContain("cgroups in hybrid mode not supported");
      // Nothing is left behind: no container record, nothing in crun's root.
      expect((await env.d.cri.listContainers({ filter: { podSandboxId } })).containers).toEqual([]);
    },
  );
});

describe("privileged_without_host_devices", () => {
  test("a privileged container of myrunc gets no host devices; under runc it gets them all", async () => {
    const devs = async (containerId: string) =>
      new TextDecoder()
        .decode((await env.d.cri.execSync({ containerId, cmd: ["ls", "/dev"], timeout: 10n })).stdout)
        .split("\n")
        .filter(Boolean);
    const withHost = await devs((await runIn("runc", { privileged: true })).containerId);
    const without = await devs((await runIn("myrunc", { privileged: true })).containerId);
    expect(withHost).toContain("loop-control");
    expect(without).not.toContain("loop-control");
    expect(without).toContain("null"); // runc's standard set is still there
  });
});
