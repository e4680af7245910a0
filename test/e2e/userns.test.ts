// Pods with their own user namespace (hostUsers: false) on the compiled daemon with real runc:
// the kubelet's mappings, idmapped root filesystems and volumes, isolation from the host, range
// checks, restart recovery, clean-up.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status as grpc } from "@grpc/grpc-js";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { hostname as hostHostname } from "node:os";
import { join } from "node:path";
import { NamespaceMode } from "../../src/gen/runtime/v1/api_pb.ts";
import { readMountinfo } from "../../src/sys/mount.ts";
import { waitFor } from "../harness.ts";
import { ctrConfig, podConfig, startEnv, type CtrConfig, type Env, type PodConfig } from "../support/pods.ts";

let env: Env;
const LOOPBACK_NET = JSON.stringify({ cniVersion: "1.0.0", name: "userns-lo", plugins: [{ type: "loopback" }] });
const RANGE = 65536;
const dec = new TextDecoder();
let seq = 0;

beforeAll(async () => {
  env = await startEnv({ cniConf: LOOPBACK_NET });
  await env.d.cri.pullImage({ image: { image: env.busybox } });
}, 120_000);
afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
});

/** A pod config as the kubelet sends it for hostUsers: false, with host base `base` (a multiple of 65536). */
function usernsPod(name: string, base: number, o: { sharedPid?: boolean } = {}): PodConfig {
  const pod = podConfig(name, env.d.dir, { hostNetwork: false, sharedPid: o.sharedPid });
  const map = [{ hostId: base, containerId: 0, length: RANGE }];
  pod.linux!.securityContext!.namespaceOptions!.usernsOptions = { mode: NamespaceMode.POD, uids: map, gids: map };
  return pod;
}

/** A running `sleep` container in `pod` (its sandbox id given); exec runs a shell command in it. */
async function sleeper(podSandboxId: string, pod: PodConfig, extra: Partial<CtrConfig> = {}) {
  const name = `c${++seq}`;
  const config = ctrConfig(name, env.busybox, ["sleep", "3600"], extra, pod);
  const { containerId } = await env.d.cri.createContainer({ podSandboxId, config, sandboxConfig: pod });
  await env.d.cri.startContainer({ containerId });
  const exec = async (cmd: string) => {
    const r = await env.d.cri.execSync({ containerId, cmd: ["sh", "-c", cmd], timeout: 20n });
    return { out: dec.decode(r.stdout).trim(), err: dec.decode(r.stderr).trim(), code: r.exitCode };
  };
  return { containerId, exec };
}

function mapOf(text: string): string {
  return text.trim().split(/\s+/).join(" ");
}

describe("a pod in its own user namespace", () => {
  test("root inside is the host base uid outside: uid_map, gid_map, the process, the rootfs upper layer", async () => {
    const base = 7 * RANGE;
    const pod = usernsPod("u1", base);
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    const c = await sleeper(podSandboxId, pod);
    expect(mapOf((await c.exec("cat /proc/self/uid_map")).out)).toBe(`0 ${base} ${RANGE}`);
    expect(mapOf((await c.exec("cat /proc/self/gid_map")).out)).toBe(`0 ${base} ${RANGE}`);
    expect((await c.exec("id -u; id -g")).out).toBe("0\n0");
    const st = await env.d.cri.containerStatus({ containerId: c.containerId, verbose: true });
    const pid = Number(JSON.parse(st.info.info ?? "{}").pid);
    expect(pid).toBeGreaterThan(0);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    expect(/^Uid:\s+(\d+)/m.exec(status)![1]).toBe(String(base));
    expect(/^Gid:\s+(\d+)/m.exec(status)![1]).toBe(String(base));
    // image files are root's inside (idmapped lower layers), and what root writes is the host base's in the upper layer
    expect((await c.exec("stat -c %u:%g /bin/busybox /etc")).out).toBe("0:0\n0:0");
    expect((await c.exec("echo hi > /written && mkdir /made && stat -c %u /written /made")).out).toBe("0\n0");
    const upper = join(env.d.root, "storage", c.containerId, "upper");
    expect(statSync(join(upper, "written")).uid).toBe(base);
    expect(statSync(join(upper, "written")).gid).toBe(base);
    expect(statSync(join(upper, "made")).uid).toBe(base);
    // pod files and /dev/shm are root's inside and writable
    expect((await c.exec("stat -c %u /etc/hostname /etc/resolv.conf /dev/shm")).out).toBe("0\n0\n0");
    expect((await c.exec("echo x > /dev/shm/f && cat /etc/hostname")).out).toBe("u1");
  });
});
