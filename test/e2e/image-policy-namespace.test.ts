// signature_policy_dir: <dir>/<namespace>.json is the signature policy of pods in that namespace,
// for PullImage (its sandbox config names the namespace) and again at CreateContainer, as CRI-O
// does: an image pulled where the policy allows it cannot be run in a namespace that refuses it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status as grpc } from "@grpc/grpc-js";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../harness.ts";
import { ctrConfig, podConfig, startEnv, type CtrConfig, type Env, type PodConfig } from "../support/pods.ts";

const files = tempDir("crio-nspolicy-");
const dir = join(files.path, "policies");
let env: Env;
beforeAll(async () => {
  mkdirSync(dir);
  writeFileSync(join(dir, "locked.json"), JSON.stringify({ default: [{ type: "reject" }] }));
  writeFileSync(join(dir, "broken.json"), "{ not json");
  // the global policy (the harness's) accepts anything
  env = await startEnv({ logLevel: "info", config: `signature_policy_dir = ${JSON.stringify(dir)}\n` });
}, 120_000);
afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
  files[Symbol.dispose]();
});

const code = async (p: Promise<unknown>) => {
  const e = (await p.then(
    () => undefined,
    (x) => x,
  )) as { code?: number; details?: string } | undefined;
  return e ? [e.code, e.details ?? ""] : [0, ""];
};
const podIn = (namespace: string, name: string): PodConfig => {
  const p = podConfig(name, env.d.dir);
  return { ...p, metadata: { ...p.metadata!, namespace } } as PodConfig;
};

describe("signature_policy_dir", () => {
  test("pulls follow the pod namespace's policy; other namespaces the global one", async () => {
    const [c, msg] = await code(env.d.cri.pullImage({ image: { image: env.busybox }, sandboxConfig: podIn("locked", "p") }));
    expect(c).toBe(grpc.PERMISSION_DENIED);
    expect(msg).toContain(join(dir, "locked.json"));
    const [b, bmsg] = await code(env.d.cri.pullImage({ image: { image: env.busybox }, sandboxConfig: podIn("broken", "p") }));
    expect(b).toBe(grpc.FAILED_PRECONDITION);
    expect(bmsg).toContain(`namespace "broken"`);
    expect(await code(env.d.cri.pullImage({ image: { image: env.busybox }, sandboxConfig: podIn("open", "p") }))).toEqual([0, ""]);
    // a namespace that could name a file outside the directory is refused, not looked up
    const [bad, badMsg] = await code(env.d.cri.pullImage({ image: { image: env.busybox }, sandboxConfig: podIn("../locked", "p") }));
    expect([bad, badMsg]).toEqual([grpc.INVALID_ARGUMENT, `invalid namespace "../locked" for a signature policy lookup`]);
    expect(await code(env.d.cri.pullImage({ image: { image: env.busybox } }))).toEqual([0, ""]);
  });

  test("CreateContainer checks the namespace's policy again (by name, or by id with the user's name); nothing is left", async () => {
    await env.d.cri.pullImage({ image: { image: env.busybox } });
    const id = (await env.d.cri.imageStatus({ image: { image: env.busybox } })).image!.id;
    const tryCreate = async (namespace: string, image: { image: string; userSpecifiedImage?: string }) => {
      const pod = podIn(namespace, `c-${namespace}`);
      const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
      const r = await code(
        env.d.cri.createContainer({
          podSandboxId,
          config: ctrConfig("c", env.busybox, ["sleep", "60"], { image } as Partial<CtrConfig>, pod),
          sandboxConfig: pod,
        }),
      );
      const left = (await env.d.cri.listContainers({ filter: { podSandboxId } })).containers.length;
      await env.d.cri.stopPodSandbox({ podSandboxId });
      await env.d.cri.removePodSandbox({ podSandboxId });
      return [r[0], left];
    };
    expect(await tryCreate("locked", { image: env.busybox })).toEqual([grpc.PERMISSION_DENIED, 0]);
    expect(await tryCreate("locked", { image: id, userSpecifiedImage: env.busybox })).toEqual([grpc.PERMISSION_DENIED, 0]);
    expect(await tryCreate("locked", { image: id })).toEqual([grpc.PERMISSION_DENIED, 0]); // the image's own name
    expect(await tryCreate("broken", { image: env.busybox })).toEqual([grpc.FAILED_PRECONDITION, 0]);
    expect(await tryCreate("open", { image: env.busybox })).toEqual([0, 1]);
    expect(await tryCreate("open", { image: id })).toEqual([0, 1]);
  });
});
