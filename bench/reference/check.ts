// Self-check of the reference runtime (bench/reference/containerd.ts), as root:
//   bun bench/reference/check.ts
// Starts containerd on the loopback registry, asks crictl (when present) for version/info/images,
// runs a host-network pod and a bridge pod each with a busybox container that writes its log, tears
// everything down, and checks that nothing is left: no shim, no bridge, no temp dir, and no
// /run/containerd, /var/lib/containerd or containerd config written on the host.
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { runRaw } from "../../src/sys/exec.ts";
import { criClient } from "../../test/support/cri-client.ts";
import { busyboxImage, imageRef, pauseImage, pushImage } from "../../test/support/images.ts";
import { ctrConfig, podConfig } from "../../test/support/pods.ts";
import { startRegistry } from "../../test/support/registry.ts";
import { startContainerd } from "./containerd.ts";

const CRICTL = process.env.CRICTL ?? "/var/tmp/crio-conformance/bin/crictl";
const HOST_PATHS = ["/run/containerd", "/var/lib/containerd"];
const CGROUP_PARENTS = ["/sys/fs/cgroup/memory/k8s.io", "/sys/fs/cgroup/pids/k8s.io", "/sys/fs/cgroup/unified/k8s.io"];
const cgroupsBefore = CGROUP_PARENTS.filter((d) => existsSync(d));
const before = new Map(HOST_PATHS.map((p) => [p, existsSync(p) ? statSync(p).mtimeMs : -1]));
const etcBefore = existsSync("/etc/containerd/config.toml") ? readFileSync("/etc/containerd/config.toml", "utf8") : undefined;

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`ok  ${what}`);
}

await using reg = await startRegistry();
await pushImage(reg, await busyboxImage());
await pushImage(reg, await pauseImage());
const busybox = imageRef(reg, "busybox");
let dir = "";
let bridge = "";
const shims: number[] = [];
{
  const t0 = performance.now();
  await using c = await startContainerd({ registryHost: reg.host, pauseImage: imageRef(reg, "pause"), bridge: true });
  dir = c.dir;
  bridge = c.bridgeName!;
  console.log(`containerd pid ${c.pid} answering on ${c.socket} after ${(performance.now() - t0).toFixed(0)} ms`);
  const cri = criClient(c.socket);
  try {
    await cri.pullImage({ image: { image: busybox } });
    if (existsSync(CRICTL)) {
      const crictl = (...a: string[]) => runRaw([CRICTL, "--runtime-endpoint", `unix://${c.socket}`, "--timeout", "10s", ...a]);
      const v = await crictl("version");
      check(v.code === 0 && /RuntimeName:\s+containerd/.test(v.stdout), "crictl version names containerd");
      const info = await crictl("info");
      check(info.code === 0 && /"NetworkReady"[\s\S]*?"status": true/.test(info.stdout), "crictl info: NetworkReady (the bridge conflist)");
      const imgs = await crictl("images");
      check(imgs.code === 0 && imgs.stdout.includes(`${reg.host}/busybox`), "crictl images lists the busybox pulled over plain HTTP");
    } else console.log(`--  ${CRICTL} missing: crictl checks skipped`);

    for (const hostNetwork of [true, false]) {
      const pod = podConfig(hostNetwork ? "check-host" : "check-bridge", c.dir, { hostNetwork, extra: hostNetwork ? { hostname: "" } : {} });
      mkdirSync(pod.logDirectory!, { recursive: true });
      const { podSandboxId } = await cri.runPodSandbox({ config: pod });
      const { containerId } = await cri.createContainer({
        podSandboxId,
        config: ctrConfig("c", busybox, ["sh", "-c", "echo hello; sleep 3600"], {}, pod),
        sandboxConfig: pod,
      });
      await cri.startContainer({ containerId });
      const log = join(pod.logDirectory!, "c.log");
      const deadline = Date.now() + 10_000;
      while (!(existsSync(log) && readFileSync(log, "utf8").includes("stdout F hello")) && Date.now() < deadline) await Bun.sleep(50);
      check(
        readFileSync(log, "utf8").includes("stdout F hello"),
        `${hostNetwork ? "host-network" : "bridge"} pod: the container ran and its CRI log has its line`,
      );
      const ip = (await cri.podSandboxStatus({ podSandboxId })).status?.network?.ip ?? "";
      check(hostNetwork ? ip === "" : /^10\.\d+\.\d+\.\d+$/.test(ip), `${hostNetwork ? "host-network" : "bridge"} pod IP ${JSON.stringify(ip)}`);
      shims.push(...c.shimPids());
      check(c.shimPids().length === 1, "one containerd-shim-runc-v2 for the pod");
      check(!existsSync("/run/containerd"), "the shim's socket dir is in the private /run, not the host's");
      await cri.stopContainer({ containerId, timeout: 0n });
      await cri.removeContainer({ containerId });
      await cri.stopPodSandbox({ podSandboxId });
      await cri.removePodSandbox({ podSandboxId });
    }
  } finally {
    cri.close();
  }
}
const alive = shims.filter((p) => existsSync(`/proc/${p}/cmdline`) && readFileSync(`/proc/${p}/cmdline`, "utf8") !== "");
check(alive.length === 0, "no shim left running");
check(!existsSync(dir), `temp dir ${dir} removed`);
check((await runRaw(["ip", "link", "show", bridge])).code !== 0, `bridge ${bridge} deleted`);
check(!readFileSync("/proc/self/mountinfo", "utf8").includes(dir), "no mount left below the temp dir");
for (const p of HOST_PATHS) check((existsSync(p) ? statSync(p).mtimeMs : -1) === before.get(p), `${p} untouched`);
check((existsSync("/etc/containerd/config.toml") ? readFileSync("/etc/containerd/config.toml", "utf8") : undefined) === etcBefore, "/etc/containerd untouched");
check(CGROUP_PARENTS.filter((d) => existsSync(d)).join() === cgroupsBefore.join(), "no k8s.io cgroup parent left behind");
console.log("reference check passed");
