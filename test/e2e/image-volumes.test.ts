// Image volumes (CRI Mount.image, KEP-4639) on the compiled daemon with real runc: an image
// pulled from the loopback registry is mounted read-only, nosuid, nodev and noexec into a
// container, whole or by image_sub_path; the image cannot be removed while a container mounts
// it; bad requests are refused with the right code and leave no mount behind; removal unmounts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status as grpc } from "@grpc/grpc-js";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { imageRef, MULTILAYER_EXPECT, multilayerImage, pushImage } from "../support/images.ts";
import { ctrConfig, podConfig, startEnv, type CtrConfig, type Env } from "../support/pods.ts";

let env: Env;
let multilayer: string;
beforeAll(async () => {
  env = await startEnv({ logLevel: "info" });
  await pushImage(env.reg, await multilayerImage(), { name: "multilayer" });
  multilayer = imageRef(env.reg, "multilayer");
  for (const image of [env.busybox, multilayer]) await env.d.cri.pullImage({ image: { image } });
}, 120_000);
afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
});

const dec = new TextDecoder();
const code = async (p: Promise<unknown>) => ((await p.catch((e) => e)) as { code?: number }).code;
/** Image-volume mounts in this machine's mount table (ours live below the daemon's root). */
const volumeMounts = () =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.includes(env.d.root) && l.includes("image-volumes"));
let seq = 0;

async function createIn(extra: Partial<CtrConfig>) {
  const name = `iv${++seq}`;
  const pod = podConfig(name, env.d.dir);
  const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
  const create = () => env.d.cri.createContainer({ podSandboxId, config: ctrConfig(name, env.busybox, ["sleep", "3600"], extra, pod), sandboxConfig: pod });
  return { podSandboxId, create };
}

describe("image volumes", () => {
  test("an image mounted whole and by sub path: its merged layers, read-only, noexec; status reports it; removal unmounts", async () => {
    const mounts = [
      { containerPath: "/vol", image: { image: multilayer }, readonly: true },
      { containerPath: "/app", image: { image: multilayer }, imageSubPath: "opt/app", readonly: true },
    ];
    const { create } = await createIn({ mounts } as Partial<CtrConfig>);
    const { containerId } = await create();
    await env.d.cri.startContainer({ containerId });
    const sh = async (c: string) => {
      const r = await env.d.cri.execSync({ containerId, cmd: ["sh", "-c", c], timeout: 20n });
      return { out: dec.decode(r.stdout).trim(), err: dec.decode(r.stderr).trim(), code: r.exitCode };
    };
    // the image's layers, merged: later layers win, whiteouts hide
    for (const [path, text] of Object.entries(MULTILAYER_EXPECT.files)) expect((await sh(`cat /vol${path}`)).out).toBe(text.trim());
    for (const path of MULTILAYER_EXPECT.absent) expect((await sh(`test -e /vol${path}; echo $?`)).out).toBe("1");
    expect((await sh("cat /app/hello.txt")).out).toBe("hello from layer 2");
    expect((await sh("ls /app")).out.split("\n")).toContain("entrypoint.sh");
    // nothing is writable, nothing runs from it
    const write = await sh("touch /vol/new 2>&1; echo rc=$?");
    expect(write.out).toMatch(/Read-only file system[\s\S]*rc=1/);
    const run = await sh("/vol/bin/busybox true 2>&1; echo rc=$?");
    expect(run.out).toMatch(/Permission denied[\s\S]*rc=126/);
    const opts = await sh("grep ' /vol ' /proc/self/mountinfo");
    expect(opts.out).toMatch(/ \/vol ro,nosuid,nodev,noexec/);
    // ContainerStatus reports the mounts as asked
    const st = await env.d.cri.containerStatus({ containerId });
    const m = st.status!.mounts.map((x) => ({ path: x.containerPath, image: x.image?.image, sub: x.imageSubPath }));
    expect(m).toEqual([
      { path: "/vol", image: multilayer, sub: "" },
      { path: "/app", image: multilayer, sub: "opt/app" },
    ]);
    expect(volumeMounts().filter((l) => l.includes(containerId))).toHaveLength(2);

    // the image is in use while a container mounts it
    expect(await code(env.d.cri.removeImage({ image: { image: multilayer } }))).toBe(grpc.FAILED_PRECONDITION);
    await env.d.cri.stopContainer({ containerId, timeout: 0n });
    await env.d.cri.removeContainer({ containerId });
    expect(volumeMounts().filter((l) => l.includes(containerId))).toEqual([]);
    expect(existsSync(join(env.d.root, "storage", containerId))).toBe(false);
    await env.d.cri.removeImage({ image: { image: multilayer } });
    await env.d.cri.pullImage({ image: { image: multilayer } }); // for the next tests
  });

  test("bad image volumes: the right code, and no mount or container left", async () => {
    const before = volumeMounts();
    const cases: Array<[object, number]> = [
      [{ containerPath: "/vol", image: { image: "127.0.0.1:1/not-pulled:1" } }, grpc.NOT_FOUND],
      [{ containerPath: "/vol", image: { image: multilayer }, imageSubPath: "no/such/dir" }, grpc.INVALID_ARGUMENT],
      [{ containerPath: "/vol", hostPath: "/tmp", imageSubPath: "bin" }, grpc.INVALID_ARGUMENT],
      [{ containerPath: "/vol", hostPath: "/tmp", image: { image: multilayer } }, grpc.INVALID_ARGUMENT],
    ];
    for (const [mount, want] of cases) {
      const { podSandboxId, create } = await createIn({ mounts: [mount] } as Partial<CtrConfig>);
      expect([JSON.stringify(mount), await code(create())]).toEqual([JSON.stringify(mount), want]);
      expect((await env.d.cri.listContainers({ filter: { podSandboxId } })).containers).toEqual([]);
    }
    expect(volumeMounts()).toEqual(before);
    // a sub path cannot climb out of the image: ../.. stays inside it
    const { create } = await createIn({
      mounts: [{ containerPath: "/vol", image: { image: multilayer }, imageSubPath: "../../opt/app" }],
    } as Partial<CtrConfig>);
    const { containerId } = await create();
    await env.d.cri.startContainer({ containerId });
    const r = await env.d.cri.execSync({ containerId, cmd: ["cat", "/vol/hello.txt"], timeout: 20n });
    expect(dec.decode(r.stdout)).toBe("hello from layer 2\n");
  });
});
