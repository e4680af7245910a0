// Pods with their own user namespace (hostUsers: false) on the compiled daemon with real runc:
// the kubelet's mappings, idmapped root filesystems and volumes, isolation from the host, range
// checks, restart recovery, clean-up.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status as grpc } from "@grpc/grpc-js";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname as hostHostname, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { NamespaceMode } from "../../src/gen/runtime/v1/api_pb.ts";
import { readMountinfo } from "../../src/sys/mount.ts";
import { startDaemon, waitFor } from "../harness.ts";
import { channelData, channelMessage, SpdyClient, WsClient } from "../support/streaming-client.ts";
import { imageRef, MULTILAYER_EXPECT, multilayerImage, pushImage } from "../support/images.ts";
import { cleanupPods, ctrConfig, podConfig, startEnv, type CtrConfig, type Env, type PodConfig } from "../support/pods.ts";

let env: Env;
let multilayer: string;
const LOOPBACK_NET = JSON.stringify({ cniVersion: "1.0.0", name: "userns-lo", plugins: [{ type: "loopback" }] });
const RANGE = 65536;
const dec = new TextDecoder();
let seq = 0;

// A handler whose runtime (runc behind a wrapper) reports no user namespace support in `features`.
const NO_USERNS = join(mkdtempSync(join(process.env.CRIO_TEST_TMP ?? tmpdir(), "userns-rt-")), "runc-no-userns");
const RUNC = Bun.which("runc") ?? "/usr/sbin/runc";

beforeAll(async () => {
  writeFileSync(
    NO_USERNS,
    `#!/bin/sh\nfor a in "$@"; do if [ "$a" = features ]; then "${RUNC}" features | sed '/"user"/d'; exit; fi; done\nexec "${RUNC}" "$@"\n`,
    { mode: 0o755 },
  );
  env = await startEnv({
    cniConf: LOOPBACK_NET,
    config: `[crio.runtime.runtimes.nouserns]\nruntime_path = "${NO_USERNS}"\nruntime_root = "/run/crt-nouserns-${process.pid}"\n`,
  });
  await env.d.cri.pullImage({ image: { image: env.busybox } });
  await pushImage(env.reg, await multilayerImage(), { name: "multilayer" });
  multilayer = imageRef(env.reg, "multilayer");
  await env.d.cri.pullImage({ image: { image: multilayer } });
}, 120_000);
afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
  rmSync(dirname(NO_USERNS), { recursive: true, force: true });
});

/** A pod config as the kubelet sends it for hostUsers: false, with host base `base` (a multiple of 65536). */
function usernsPod(name: string, base: number, o: { sharedPid?: boolean; dir?: string } = {}): PodConfig {
  const pod = podConfig(name, o.dir ?? env.d.dir, { hostNetwork: false, sharedPid: o.sharedPid });
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

describe("a multi-layer image", () => {
  test("whiteouts and opaque dirs hold, owners map through every layer, the image's user runs mapped, copy-up lands in the pod's range", async () => {
    const base = 15 * RANGE;
    const pod = usernsPod("ml", base);
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    const config = ctrConfig(`ml${++seq}`, multilayer, ["sleep", "3600"], {}, pod);
    const { containerId } = await env.d.cri.createContainer({ podSandboxId, config, sandboxConfig: pod });
    await env.d.cri.startContainer({ containerId });
    const exec = async (cmd: string) => dec.decode((await env.d.cri.execSync({ containerId, cmd: ["sh", "-c", cmd], timeout: 20n })).stdout).trim();
    for (const [path, text] of Object.entries(MULTILAYER_EXPECT.files)) expect(await exec(`cat ${path}`)).toBe(text.trim());
    for (const path of MULTILAYER_EXPECT.absent) expect(await exec(`test -e ${path} && echo present || echo absent`)).toBe("absent");
    // the image's user (app, 1000) runs as 1000 inside, base+1000 on the node; its home is its own
    expect(await exec("id -u; stat -c %u:%g " + MULTILAYER_EXPECT.appHome)).toBe("1000\n1000:1000");
    const pid = Number(JSON.parse((await env.d.cri.containerStatus({ containerId, verbose: true })).info.info ?? "{}").pid);
    expect(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]).toBe(String(base + 1000));
    // a file of a lower layer changed by its owner is copied up owned by the owner's host id
    expect(await exec(`echo mine > ${MULTILAYER_EXPECT.appHome}/note && stat -c %u ${MULTILAYER_EXPECT.appHome}/note`)).toBe("1000");
    expect(statSync(join(env.d.root, "storage", containerId, "upper", MULTILAYER_EXPECT.appHome, "note")).uid).toBe(base + 1000);
    expect(statSync(join(env.d.root, "storage", containerId, "upper", MULTILAYER_EXPECT.appHome)).uid).toBe(base + 1000);
  });
});

describe("volumes and isolation", () => {
  test("a hostPath volume: host root's file is root's inside, and container root writes as host root", async () => {
    const vol = join(env.d.dir, "vol-hostpath");
    mkdirSync(vol, { recursive: true });
    writeFileSync(join(vol, "from-host"), "host\n");
    const pod = usernsPod("u2", 9 * RANGE);
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    const c = await sleeper(podSandboxId, pod, {
      mounts: [
        { containerPath: "/vol", hostPath: vol },
        { containerPath: "/iv", image: { image: env.busybox } },
      ],
    });
    // an image volume's files are root's inside too (its layers idmapped), and read-only
    expect((await c.exec("stat -c %u:%g /iv/bin/busybox")).out).toBe("0:0");
    expect((await c.exec("touch /iv/x")).code).not.toBe(0);
    expect((await c.exec("stat -c %u:%g /vol/from-host /vol && cat /vol/from-host")).out).toBe("0:0\n0:0\nhost");
    expect((await c.exec("echo c > /vol/from-ctr && mkdir /vol/dir && stat -c %u /vol/from-ctr")).out).toBe("0");
    expect([statSync(join(vol, "from-ctr")).uid, statSync(join(vol, "from-ctr")).gid, statSync(join(vol, "dir")).uid]).toEqual([0, 0, 0]);
    // a file owned by a host id outside the pod's range is nobody's inside
    writeFileSync(join(vol, "stranger"), "");
    Bun.spawnSync(["chown", "123456789:123456789", join(vol, "stranger")]);
    expect((await c.exec("stat -c %u /vol/stranger")).out).toBe("65534");
  });

  test("CRI Mount uid/gid mappings of its own are honoured (host id 1000 shows as container root)", async () => {
    const vol = join(env.d.dir, "vol-mapped");
    mkdirSync(vol, { recursive: true });
    writeFileSync(join(vol, "f"), "");
    Bun.spawnSync(["chown", "1000:1000", join(vol, "f")]);
    const pod = usernsPod("u3", 11 * RANGE);
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    // idmapped mount semantics: on-disk id k shows as the host id the mapping gives id k; here
    // 1000 → the pod's base, which is root inside (the pod's own mapping would show it as 1000)
    const m = [{ containerId: 1000, hostId: 11 * RANGE, length: 1 }];
    const c = await sleeper(podSandboxId, pod, { mounts: [{ containerPath: "/m", hostPath: vol, uidMappings: m, gidMappings: m }] });
    expect((await c.exec("stat -c %u:%g /m/f")).out).toBe("0:0");
  });

  test("privileges stay in the pod, even for a privileged container: no device nodes, no kernel modules, the host's hostname untouched", async () => {
    const pod = usernsPod("u4", 13 * RANGE);
    pod.linux!.securityContext!.privileged = true;
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    const c = await sleeper(podSandboxId, pod, {
      linux: { securityContext: { namespaceOptions: pod.linux!.securityContext!.namespaceOptions, privileged: true } },
    });
    expect(mapOf((await c.exec("cat /proc/self/uid_map")).out)).toBe(`0 ${13 * RANGE} ${RANGE}`);
    expect((await c.exec("grep ^CapEff /proc/self/status")).out).not.toContain("0000000000000000"); // every capability, inside
    // CAP_MKNOD inside is not CAP_MKNOD on the host: a device node is refused (root on the host may)
    const mknod = await c.exec("mknod /tmp/mem c 1 1");
    expect(mknod.code).not.toBe(0);
    expect(mknod.err).toContain("Operation not permitted");
    // no module is loaded from inside; NOTE: this kernel has no module support at all
    // (CONFIG_MODULES=n), so the call fails for host root too and cannot tell the two apart here:
    // the mknod above is what proves that the capabilities inside are not the host's
    // (init_module and mknod of a device both need the capability in the initial user namespace)
    const insmod = await c.exec("insmod /proc/self/exe 2>&1 || echo refused");
    expect(insmod.out).toContain("refused");
    // sethostname reaches only the pod's own UTS namespace
    const before = hostHostname();
    const h = await c.exec("hostname pod-renamed && hostname");
    expect(h.out).toBe("pod-renamed");
    expect(hostHostname()).toBe(before);
    expect(readFileSync("/proc/sys/kernel/hostname", "utf8").trim()).toBe(before);
  });
});

describe("ranges and bad input", () => {
  test("two pods get their own disjoint ranges; an overlapping one is INVALID_ARGUMENT with nothing made", async () => {
    const a = usernsPod("r1", 20 * RANGE);
    const b = usernsPod("r2", 21 * RANGE);
    const pa = (await env.d.cri.runPodSandbox({ config: a })).podSandboxId;
    const pb = (await env.d.cri.runPodSandbox({ config: b })).podSandboxId;
    const ca = await sleeper(pa, a);
    const cb = await sleeper(pb, b);
    expect(mapOf((await ca.exec("cat /proc/self/uid_map")).out)).toBe(`0 ${20 * RANGE} ${RANGE}`);
    expect(mapOf((await cb.exec("cat /proc/self/uid_map")).out)).toBe(`0 ${21 * RANGE} ${RANGE}`);
    const before = snapshot();
    expect(before.pins[3]).toEqual(expect.arrayContaining([pa, pb])); // the snapshot sees the user namespace pins
    const err = await env.d.cri.runPodSandbox({ config: usernsPod("r3", 20 * RANGE) }).catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    expect(err.details).toContain(`overlaps the host ids of pod sandbox ${pa}`);
    expect(snapshot()).toEqual(before);
  });

  test.each([
    ["a range not 65536 long", (p: PodConfig) => void (p.linux!.securityContext!.namespaceOptions!.usernsOptions!.uids![0]!.length = 1000), "65536 ids long"],
    [
      "a base not a multiple of 65536",
      (p: PodConfig) => void (p.linux!.securityContext!.namespaceOptions!.usernsOptions!.gids![0]!.hostId = 30 * RANGE + 1),
      "multiple of 65536",
    ],
    ["host network", (p: PodConfig) => void (p.linux!.securityContext!.namespaceOptions!.network = NamespaceMode.NODE), "host's network"],
    ["host PID", (p: PodConfig) => void (p.linux!.securityContext!.namespaceOptions!.pid = NamespaceMode.NODE), "host's PID"],
    ["host IPC", (p: PodConfig) => void (p.linux!.securityContext!.namespaceOptions!.ipc = NamespaceMode.NODE), "host's IPC"],
    [
      "mode CONTAINER",
      (p: PodConfig) => void (p.linux!.securityContext!.namespaceOptions!.usernsOptions!.mode = NamespaceMode.CONTAINER),
      "unsupported user namespace mode CONTAINER",
    ],
  ])("%s is INVALID_ARGUMENT, nothing made", async (_what, spoil, msg) => {
    const pod = usernsPod(`bad${++seq}`, 30 * RANGE);
    spoil(pod);
    const before = snapshot();
    const err = await env.d.cri.runPodSandbox({ config: pod }).catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    expect(err.details).toContain(msg);
    expect(snapshot()).toEqual(before);
  });

  test("a container cannot leave or remap its pod's user namespace, nor run as an unmapped user", async () => {
    const pod = usernsPod("cx", 31 * RANGE);
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    const leave = ctrConfig("leave", env.busybox, ["true"], {}, pod);
    (leave.linux!.securityContext as { namespaceOptions: unknown }).namespaceOptions = {
      ...pod.linux!.securityContext!.namespaceOptions,
      usernsOptions: { mode: NamespaceMode.NODE },
    };
    const e1 = await env.d.cri.createContainer({ podSandboxId, config: leave, sandboxConfig: pod }).catch((e) => e);
    expect([e1.code, e1.details]).toEqual([grpc.INVALID_ARGUMENT, expect.stringContaining("host's user namespace")]);
    const big = ctrConfig(
      "big",
      env.busybox,
      ["true"],
      { linux: { securityContext: { namespaceOptions: pod.linux!.securityContext!.namespaceOptions, runAsUser: { value: 70000n } } } },
      pod,
    );
    const e2 = await env.d.cri.createContainer({ podSandboxId, config: big, sandboxConfig: pod }).catch((e) => e);
    expect([e2.code, e2.details]).toEqual([grpc.INVALID_ARGUMENT, expect.stringContaining("user 70000 is not mapped")]);
    expect((await env.d.cri.listContainers({ filter: { podSandboxId } })).containers).toEqual([]);
  });

  test("Status reports user namespaces per handler; a handler without them gives FAILED_PRECONDITION naming why", async () => {
    const st = await env.d.cri.status({ verbose: false });
    const handlers = st.runtimeHandlers.map((h) => [h.name, h.features?.userNamespaces]);
    expect(handlers).toContainEqual(["", true]);
    expect(handlers).toContainEqual(["runc", true]);
    expect(handlers).toContainEqual(["nouserns", false]);
    const before = snapshot();
    const err = await env.d.cri.runPodSandbox({ config: usernsPod("nu", 32 * RANGE), runtimeHandler: "nouserns" }).catch((e) => e);
    expect(err.code).toBe(grpc.FAILED_PRECONDITION);
    expect(err.details).toContain('runtime handler "nouserns"');
    expect(err.details).toContain("the runtime does not support user namespaces");
    expect(snapshot()).toEqual(before);
    // the same handler still runs pods in the host's user namespace
    const plain = podConfig("nu-plain", env.d.dir, { hostNetwork: false });
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: plain, runtimeHandler: "nouserns" });
    await env.d.cri.stopPodSandbox({ podSandboxId });
    await env.d.cri.removePodSandbox({ podSandboxId });
  });
});

describe("everything else keeps working inside", () => {
  test("infra container, exec with a tty, attach, port-forward, logs, stats", async () => {
    const pod = usernsPod("all", 40 * RANGE, { sharedPid: true });
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    const sb = await env.d.cri.podSandboxStatus({ podSandboxId, verbose: true });
    const infraPid = Number(JSON.parse(sb.info.info ?? "{}").pid ?? 0);
    expect(infraPid).toBeGreaterThan(0); // a shared PID namespace: the pod has an infra container
    expect(mapOf(readFileSync(`/proc/${infraPid}/uid_map`, "utf8"))).toBe(`0 ${40 * RANGE} ${RANGE}`);
    expect(JSON.parse(sb.info.info ?? "{}").namespaces.user).toMatch(/\/userns\/[0-9a-f]+$/);
    // a shell on a tty, attached; and a web server reached through port-forward
    const name = `att${++seq}`;
    const cfg = ctrConfig(
      name,
      env.busybox,
      ["sh", "-c", "echo started; mkdir -p /www && echo served-in-userns > /www/index.html && httpd -p 8080 -h /www && exec sh"],
      { tty: true, stdin: true },
      pod,
    );
    const { containerId } = await env.d.cri.createContainer({ podSandboxId, config: cfg, sandboxConfig: pod });
    await env.d.cri.startContainer({ containerId });
    const att = await env.d.cri.attach({ containerId, tty: true, stdin: true, stdout: true });
    const { ws } = await WsClient.connect(att.url, ["v5.channel.k8s.io"]);
    ws.send(channelMessage(0, "echo uid-$(id -u)-$((6*7))\n"));
    await ws.waitFor(() => channelData(ws.messages).get(1)?.toString().includes("uid-0-42"), 10_000);
    ws.close();
    await ws.closed;
    const ex = await env.d.cri.exec({ containerId, cmd: ["sh", "-c", "sleep 0.3; stty size; cat /proc/self/uid_map"], tty: true, stdin: true, stdout: true });
    const tty = await WsClient.connect(ex.url, ["v5.channel.k8s.io"]);
    tty.ws.send(channelMessage(4, JSON.stringify({ Width: 91, Height: 37 })));
    await tty.ws.closed;
    const out = channelData(tty.ws.messages).get(1)?.toString() ?? "";
    expect(out).toContain("37 91");
    expect(mapOf(out.split("\n").slice(1).join(" ") ?? "")).toContain(`0 ${40 * RANGE} ${RANGE}`);
    await waitFor(async () => (await env.d.cri.execSync({ containerId, cmd: ["wget", "-qO-", "http://127.0.0.1:8080/"], timeout: 5n })).exitCode === 0);
    const pf = await env.d.cri.portForward({ podSandboxId, port: [8080] });
    const { client } = await SpdyClient.connect(pf.url, ["portforward.k8s.io"]);
    const h = { port: "8080", requestID: "0" };
    (await client.createStream({ ...h, streamType: "error" })).end();
    const data = await client.createStream({ ...h, streamType: "data" });
    data.write("GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    data.end();
    expect((await data.ended).toString()).toContain("served-in-userns");
    await client.close();
    // the CRI log and stats
    const st = await env.d.cri.containerStatus({ containerId });
    await waitFor(() => existsSync(st.status!.logPath) && readFileSync(st.status!.logPath, "utf8").includes("started"));
    const stats = await waitFor(async () => (await env.d.cri.containerStats({ containerId })).stats?.memory?.workingSetBytes?.value);
    expect(Number(stats)).toBeGreaterThan(0);
  });

  test("a restarted daemon finds the pinned user namespace; stop and remove leave no pin or mount", async () => {
    await using renv = await startEnv({ cniConf: LOOPBACK_NET });
    const d = renv.d;
    await d.cri.pullImage({ image: { image: renv.busybox } });
    const pod = usernsPod("rs", 50 * RANGE, { dir: d.dir });
    const { podSandboxId } = await d.cri.runPodSandbox({ config: pod });
    const cfg = (n: string) => ctrConfig(n, renv.busybox, ["sleep", "3600"], {}, pod);
    const { containerId } = await d.cri.createContainer({ podSandboxId, config: cfg("one"), sandboxConfig: pod });
    await d.cri.startContainer({ containerId });
    const pin = readMountinfo().find((m) => m.mountPoint.endsWith(`/userns/${podSandboxId}`));
    expect(pin).toBeDefined();
    d.proc.kill("SIGKILL");
    await d.proc.exited;
    // as if the daemon had died between staging a container's idmapped copies and runc create
    const leftover = join(d.runroot, "idmap", "d9999");
    mkdirSync(leftover, { recursive: true });
    expect(Bun.spawnSync(["mount", "--bind", d.dir, leftover]).exitCode).toBe(0);
    await using d2 = await startDaemon({ dir: d.dir });
    expect((await d2.cri.podSandboxStatus({ podSandboxId })).status?.state).toBe(0); // SANDBOX_READY (recovery done)
    expect(readMountinfo().some((m) => m.mountPoint === leftover)).toBe(false); // detached at recovery
    expect(existsSync(join(d.dir, "crio.conf"))).toBe(true); // and nothing removed through it
    const uidMap = async (id: string) =>
      mapOf(dec.decode((await d2.cri.execSync({ containerId: id, cmd: ["cat", "/proc/self/uid_map"], timeout: 10n })).stdout));
    expect(await uidMap(containerId)).toBe(`0 ${50 * RANGE} ${RANGE}`);
    // a new container after the restart joins the same namespace
    const two = (await d2.cri.createContainer({ podSandboxId, config: cfg("two"), sandboxConfig: pod })).containerId;
    await d2.cri.startContainer({ containerId: two });
    expect(await uidMap(two)).toBe(`0 ${50 * RANGE} ${RANGE}`);
    // the range stays held across the restart
    const err = await d2.cri.runPodSandbox({ config: usernsPod("rs2", 50 * RANGE, { dir: d.dir }) }).catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    await d2.cri.stopPodSandbox({ podSandboxId });
    await d2.cri.removePodSandbox({ podSandboxId });
    const left = readMountinfo().filter(
      (m) => m.mountPoint.includes(podSandboxId) || m.mountPoint.includes(containerId) || m.mountPoint.startsWith(join(d2.runroot, "idmap") + "/"),
    );
    expect(left.map((m) => m.mountPoint)).toEqual([]);
    expect(existsSync(pin!.mountPoint)).toBe(false);
    // and the range is free again
    const again = await d2.cri.runPodSandbox({ config: usernsPod("rs3", 50 * RANGE, { dir: d.dir }) });
    await d2.cri.stopPodSandbox({ podSandboxId: again.podSandboxId });
    await d2.cri.removePodSandbox({ podSandboxId: again.podSandboxId });
    await cleanupPods(d2);
  });
});

/** What a failed RunPodSandbox must not leave: pods, pinned namespaces, run dirs, staged mounts. */
function snapshot() {
  const ls = (p: string) => (existsSync(p) ? readdirSync(p).sort() : []);
  return {
    pins: ["net", "ipc", "uts", "user"].map((k) => ls(join(env.d.runroot, "ns", `${k}ns`))),
    runDirs: ls(join(env.d.runroot, "sandboxes")),
    staged: ls(join(env.d.runroot, "idmap")),
    mounts: readMountinfo().filter((m) => m.mountPoint.startsWith(env.d.runroot)).length,
  };
}
