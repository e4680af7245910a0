// Runtime handler options on the compiled daemon with real runc: allowed_annotations gates the
// pod shm size annotation (without the allowance a pod gets the default 64 MiB /dev/shm and the
// annotation is dropped, with it the size asked, either name allowing both); default_annotations
// land in the pod's status and the infra and container config.json, under the request's own
// annotations (ContainerStatus shows the container's own only, as in CRI-O); runtime_config_path
// on an "oci" handler, or an unknown allowed_annotations entry, stops the daemon naming the key,
// and a SIGHUP reload with one keeps the running configuration.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status as grpc } from "@grpc/grpc-js";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startDaemon, tempDir, waitFor } from "../harness.ts";
import { ctrConfig, podConfig, startEnv, type Env, type PodConfig } from "../support/pods.ts";

const SHM = "io.kubernetes.cri-o.ShmSize";
const SHM2 = "shm-size.crio.io";
const MiB = 1024 * 1024;
const RUNC = Bun.which("runc") ?? "/usr/sbin/runc";
const roots = tempDir("crio-rho-");
const DEFAULTS = { "owner.example.com/team": "platform", "tier.example.com/class": "gold", "zone.example.com/name": "z1" };

let env: Env;
beforeAll(async () => {
  // runc: no allowance, no defaults. shmok: the shm size allowed under its newer name only, and defaults.
  const shmok = [
    "[crio.runtime.runtimes.shmok]",
    `runtime_path = ${JSON.stringify(RUNC)}`,
    `runtime_root = ${JSON.stringify(join(roots.path, "shmok"))}`,
    `allowed_annotations = [${JSON.stringify(SHM2)}]`,
    `default_annotations = { ${Object.entries(DEFAULTS)
      .map(([k, v]) => `${JSON.stringify(k)} = ${JSON.stringify(v)}`)
      .join(", ")} }`,
  ].join("\n");
  env = await startEnv({ config: `${shmok}\n` });
  await env.d.cri.pullImage({ image: { image: env.busybox } });
}, 120_000);
afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
  roots[Symbol.dispose]();
});

const dec = new TextDecoder();
let seq = 0;

/** A pod (sharing its PID namespace, so it has an infra container) with one running busybox. */
async function run(handler: string, o: { pod?: Record<string, string>; ctr?: Record<string, string> } = {}) {
  const name = `rho${++seq}`;
  const p: PodConfig = podConfig(name, env.d.dir, { sharedPid: true, extra: { annotations: o.pod ?? {} } });
  const { podSandboxId } = await env.d.cri.runPodSandbox({ config: p, runtimeHandler: handler });
  const { containerId } = await env.d.cri.createContainer({
    podSandboxId,
    config: ctrConfig(name, env.busybox, ["sleep", "3600"], { annotations: o.ctr ?? {} }, p),
    sandboxConfig: p,
  });
  await env.d.cri.startContainer({ containerId });
  return { podSandboxId, containerId };
}

/** The size of the container's /dev/shm in bytes, from its own mount table. */
async function shmBytes(containerId: string): Promise<number> {
  const r = await env.d.cri.execSync({ containerId, cmd: ["grep", " /dev/shm ", "/proc/mounts"], timeout: 10n });
  const m = /size=(\d+)k/.exec(dec.decode(r.stdout));
  if (!m) throw new Error(`no /dev/shm size in ${JSON.stringify(dec.decode(r.stdout))}`);
  return Number(m[1]) * 1024;
}

/** The annotations of a bundle's config.json (the daemon's runroot/containers/<id>/). */
const specAnnotations = (id: string) =>
  (JSON.parse(readFileSync(join(env.d.runroot, "containers", id, "config.json"), "utf8")) as { annotations: Record<string, string> }).annotations;
const podAnns = async (podSandboxId: string) => (await env.d.cri.podSandboxStatus({ podSandboxId })).status!.annotations;
const ctrAnns = async (containerId: string) => (await env.d.cri.containerStatus({ containerId })).status!.annotations;
/** The annotations of the config in verbose PodSandboxStatus / ContainerStatus info. */
const verboseConfigAnns = async (kind: "pod" | "container", id: string) => {
  const info =
    kind === "pod"
      ? (await env.d.cri.podSandboxStatus({ podSandboxId: id, verbose: true })).info
      : (await env.d.cri.containerStatus({ containerId: id, verbose: true })).info;
  return (JSON.parse(info.info ?? "{}") as { config?: { annotations?: Record<string, string> } }).config?.annotations;
};

describe("allowed_annotations gates the pod shm size", () => {
  test("without the allowance: the default 64 MiB /dev/shm, and the annotations are dropped (even a malformed size)", async () => {
    const { podSandboxId, containerId } = await run("runc", { pod: { [SHM]: "128Mi", [SHM2]: "256Mi", keep: "1" }, ctr: { [SHM]: "1Gi", mine: "2" } });
    expect(await shmBytes(containerId)).toBe(64 * MiB);
    expect(await podAnns(podSandboxId)).toEqual({ keep: "1" });
    expect(await ctrAnns(containerId)).toEqual({ mine: "2" });
    for (const id of [podSandboxId, containerId]) {
      const a = specAnnotations(id);
      expect(a[SHM]).toBeUndefined();
      expect(a[SHM2]).toBeUndefined();
    }
    expect(specAnnotations(containerId)).toMatchObject({ keep: "1", mine: "2" });
    // verbose status shows the config with the annotations it runs with, not the request's
    expect(await verboseConfigAnns("pod", podSandboxId)).toEqual({ keep: "1" });
    expect(await verboseConfigAnns("container", containerId)).toEqual({ mine: "2" });
    expect(env.d.logs()).toContain(`Annotation \\"${SHM}\\" of pod default/rho${seq} is not in runtime handler \\"runc\\"'s allowed_annotations; ignored`);

    const bad = await run("runc", { pod: { [SHM]: "lots" } });
    expect(await shmBytes(bad.containerId)).toBe(64 * MiB);
  });

  test("with the allowance: the size asked, under either name (the handler allows shm-size.crio.io only)", async () => {
    const a = await run("shmok", { pod: { [SHM]: "128Mi" } });
    expect(await shmBytes(a.containerId)).toBe(128 * MiB);
    expect(await podAnns(a.podSandboxId)).toMatchObject({ [SHM]: "128Mi" });
    const b = await run("shmok", { pod: { [SHM2]: "96Mi" } });
    expect(await shmBytes(b.containerId)).toBe(96 * MiB);
    const none = await run("shmok");
    expect(await shmBytes(none.containerId)).toBe(64 * MiB);
  });

  test("with the allowance, a malformed size is INVALID_ARGUMENT and leaves nothing: the same pod then runs", async () => {
    const p = podConfig(`rho${++seq}`, env.d.dir, { extra: { annotations: { [SHM2]: "lots" } } });
    const shmMounts = () =>
      readFileSync("/proc/self/mountinfo", "utf8")
        .split("\n")
        .filter((l) => l.includes(env.d.runroot) && l.includes("/shm "));
    const before = shmMounts().length;
    const err = await env.d.cri.runPodSandbox({ config: p, runtimeHandler: "shmok" }).catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    expect(err.details).toContain('invalid shm size annotation "lots"');
    expect((await env.d.cri.listPodSandbox({})).items.filter((s) => s.metadata?.name === p.metadata!.name)).toEqual([]);
    expect(shmMounts().length).toBe(before);
    p.annotations = { [SHM2]: "80Mi" };
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: p, runtimeHandler: "shmok" });
    expect((await env.d.cri.podSandboxStatus({ podSandboxId })).status?.state).toBe(0); // SANDBOX_READY
  });
});

describe("default_annotations", () => {
  test("in the pod's status, its infra and container config.json; the pod's and container's own annotations win", async () => {
    const { podSandboxId, containerId } = await run("shmok", {
      pod: { "tier.example.com/class": "silver", podonly: "p" },
      ctr: { "owner.example.com/team": "app", ctronly: "c" },
    });
    const pod = { ...DEFAULTS, "tier.example.com/class": "silver", podonly: "p" };
    expect(await podAnns(podSandboxId)).toEqual(pod);
    expect(specAnnotations(podSandboxId)).toMatchObject(pod); // the infra container's bundle
    expect(JSON.parse(specAnnotations(podSandboxId)["io.kubernetes.cri-o.Annotations"]!)).toEqual(pod);
    expect(specAnnotations(containerId)).toMatchObject({ ...pod, "owner.example.com/team": "app", ctronly: "c" });
    // ContainerStatus: the container's own annotations, as CRI-O reports them
    expect(await ctrAnns(containerId)).toEqual({ "owner.example.com/team": "app", ctronly: "c" });
    expect(await verboseConfigAnns("pod", podSandboxId)).toEqual(pod);
    // listings carry the pod's annotations too
    expect((await env.d.cri.listPodSandbox({ filter: { id: podSandboxId } })).items[0]?.annotations).toEqual(pod);
  });

  test("another handler's pods get none of them", async () => {
    const { podSandboxId, containerId } = await run("runc", { pod: { podonly: "p" } });
    expect(await podAnns(podSandboxId)).toEqual({ podonly: "p" });
    for (const k of Object.keys(DEFAULTS)) {
      expect(specAnnotations(containerId)[k]).toBeUndefined();
      expect(specAnnotations(podSandboxId)[k]).toBeUndefined();
    }
  });
});

describe("config errors", () => {
  test("runtime_config_path on an oci handler, or an unknown allowed_annotations entry: the daemon refuses to start naming the key", async () => {
    for (const [toml, key, why] of [
      [
        '[crio.runtime.runtimes.runc]\nruntime_config_path = "/etc/kata-containers/configuration.toml"\n',
        "crio.runtime.runtimes.runc.runtime_config_path",
        'used only with runtime_type \\"vm\\"',
      ],
      [
        '[crio.runtime.runtimes.runc]\nallowed_annotations = ["io.kubernetes.cri-o.Bogus"]\n',
        "crio.runtime.runtimes.runc.allowed_annotations",
        "one of the experimental annotations",
      ],
    ] as const) {
      await using d = await startDaemon({ config: toml, noWait: true });
      expect(await d.proc.exited).toBe(1);
      const line = d
        .logs()
        .split("\n")
        .find((l) => l.includes("invalid configuration"));
      expect(line).toContain(`key \\"${key}\\"`);
      expect(line).toContain(why);
    }
  });

  test("a SIGHUP reload with runtime_config_path keeps the running configuration and says why", async () => {
    const dropIn = join(env.d.configDir, "50-bad.conf");
    writeFileSync(dropIn, '[crio.runtime.runtimes.shmok]\nruntime_config_path = "/etc/vm.toml"\n');
    try {
      const before = env.d.logs().length;
      env.d.proc.kill("SIGHUP");
      const line = await waitFor(
        () =>
          env.d
            .logs()
            .slice(before)
            .split("\n")
            .find((l) => l.includes("configuration reload failed")),
        10_000,
        "the failed reload",
      );
      expect(line).toContain("keeping the running configuration");
      expect(line).toContain("crio.runtime.runtimes.shmok.runtime_config_path");
    } finally {
      rmSync(dropIn, { force: true });
    }
    // still serving, with the handler as it was
    const a = await run("shmok", { pod: { [SHM2]: "72Mi" } });
    expect(await shmBytes(a.containerId)).toBe(72 * MiB);
  });
});
