// Full disk (issue #17): root on a small size-limited tmpfs. A pull that runs out of space fails
// RESOURCE_EXHAUSTED and leaves no partial layer; CreateContainer likewise, leaving nothing
// half-made; a container logging into a full log dir keeps its monitor and itself alive, and its
// logging resumes when space returns; the daemon keeps serving throughout.
import { expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeSync, closeSync } from "node:fs";
import { join } from "node:path";
import { ContainerState } from "../../src/gen/runtime/v1/api_pb.ts";
import { removeDaemonDirs, waitFor } from "../harness.ts";
import { bigImage, imageRef, pushImage } from "../support/images.ts";
import { ctrConfig, podConfig, startEnv } from "../support/pods.ts";

test("root on a 48 MB tmpfs, pod logs on a 1 MB one: ENOSPC is RESOURCE_EXHAUSTED with nothing half-made; a full log dir stops no container", async () => {
  const dir = mkdtempSync(join(process.env.CRIO_TEST_TMP ?? "/var/tmp", "crio-disk-"));
  const root = join(dir, "root");
  const logs = join(dir, "pods");
  mkdirSync(root);
  mkdirSync(logs);
  mount(root, "48m");
  mount(logs, "1m");
  try {
    await using env = await startEnv({ dir, logLevel: "info" });
    const { d } = env;
    await d.cri.pullImage({ image: { image: env.busybox } });
    const pod = podConfig("disk", dir);
    const { podSandboxId } = await d.cri.runPodSandbox({ config: pod });
    // a container that logs a line every 50 ms
    const { containerId } = await d.cri.createContainer({
      podSandboxId,
      config: ctrConfig("talker", env.busybox, ["sh", "-c", "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.05; done"], {}, pod),
      sandboxConfig: pod,
    });
    await d.cri.startContainer({ containerId });
    const logFile = join(pod.logDirectory!, "talker.log");
    await waitFor(() => existsSync(logFile) && readFileSync(logFile, "utf8").includes("line 3"));

    // 1. a pull bigger than the disk: RESOURCE_EXHAUSTED, no partial layer, the daemon serves on
    const big = await pushImage(env.reg, await bigImage({ layers: 2, totalBytes: 60 * 1024 * 1024 }), { name: "disk-big" });
    const pulled = await d.cri.pullImage({ image: { image: imageRef(env.reg, "disk-big", big.tag) } }).then(
      () => status.OK,
      (e) => e.code,
    );
    expect(pulled).toBe(status.RESOURCE_EXHAUSTED);
    expect(partialLayers(d.root)).toEqual([]);
    expect((await d.cri.listImages({})).images.some((i) => i.repoTags.some((t) => t.includes("disk-big")))).toBe(false);

    // 2. CreateContainer on a full disk: RESOURCE_EXHAUSTED, nothing half-made
    const filler = fill(join(root, "filler"));
    const before = snapshot(d.root, d.runroot);
    const created = await d.cri.createContainer({ podSandboxId, config: ctrConfig("late", env.busybox, ["true"], {}, pod), sandboxConfig: pod }).then(
      () => status.OK,
      (e) => e.code,
    );
    expect(created).toBe(status.RESOURCE_EXHAUSTED);
    expect(snapshot(d.root, d.runroot)).toEqual(before);
    expect((await d.cri.listContainers({})).containers.map((c) => c.id)).toEqual([containerId]);
    rmSync(filler);

    // 3. a full log dir: the container and its monitor live on; logging resumes when space returns
    const logFiller = fill(join(logs, "filler"));
    await Bun.sleep(1500); // the container keeps writing into a full disk
    const st = (await d.cri.containerStatus({ containerId })).status!;
    expect(st.state).toBe(ContainerState.CONTAINER_RUNNING);
    expect(monitorAlive(d.runroot, containerId)).toBe(true);
    rmSync(logFiller);
    const size = readFileSync(logFile, "utf8").length;
    await waitFor(() => readFileSync(logFile, "utf8").length > size + 40, 10_000, "logging to resume");
    // each line still well formed (a line cut by ENOSPC is not left half-written)
    for (const l of readFileSync(logFile, "utf8").split("\n").filter(Boolean)) expect(l).toMatch(/^\S+ (stdout|stderr) [PF] /);
    expect((await d.cri.version({})).runtimeName).toBeTruthy();
    await d.cri.removePodSandbox({ podSandboxId });
  } finally {
    Bun.spawnSync(["umount", "-l", logs]);
    Bun.spawnSync(["umount", "-l", root]);
    removeDaemonDirs(dir, "/nonexistent");
  }
}, 300_000);

// --- internal ---

function mount(path: string, size: string): void {
  const r = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", `size=${size}`, "tmpfs", path]);
  if (r.exitCode !== 0) throw new Error(`mount tmpfs on ${path}: ${r.stderr.toString()}`);
}

/** Fills the filesystem holding `path` until ENOSPC; returns the file. */
function fill(path: string): string {
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
  }
  try {
    for (;;) writeSync(fd, chunk.subarray(0, 512));
  } catch {}
  closeSync(fd);
  return path;
}

/** Layer dirs not in the index, and image-store temp entries. */
function partialLayers(root: string): string[] {
  const images = join(root, "images");
  const index = JSON.parse(readFileSync(join(images, "images.json"), "utf8")) as { layers: Record<string, unknown> };
  const known = new Set(Object.keys(index.layers).map((k) => k.replace(/^sha256:/, "")));
  const out = readdirSync(join(images, "layers")).filter((l) => !known.has(l.replace(/^sha256:/, "")));
  if (existsSync(join(images, "tmp"))) out.push(...readdirSync(join(images, "tmp")).map((t) => `tmp/${t}`));
  return out;
}

function snapshot(root: string, runroot: string): string[] {
  const ls = (p: string) => (existsSync(p) ? readdirSync(p).map((x) => `${p}/${x}`) : []);
  return [
    ...ls(join(root, "storage")),
    ...ls(join(root, "containers")),
    ...ls(join(runroot, "containers")),
    ...ls(join(runroot, "monitor")),
    ...ls(join(runroot, "exits")),
  ].sort();
}

function monitorAlive(_runroot: string, id: string): boolean {
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (cmd.includes("conmon") && cmd.includes(id)) return true;
    } catch {}
  }
  return false;
}
