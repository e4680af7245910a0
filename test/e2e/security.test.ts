// The security context end to end on the compiled daemon with real runc, seen from inside the
// container (/proc/self/status, ExecSync): capabilities, seccomp, no_new_privs, read-only rootfs,
// masked and read-only /proc paths, users and groups, devices, AppArmor/SELinux being off here.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status as grpc } from "@grpc/grpc-js";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ALL_CAPABILITIES } from "../../src/container/spec/security.ts";
import { SecurityProfile_ProfileType as Profile, SupplementalGroupsPolicy } from "../../src/gen/runtime/v1/api_pb.ts";
import { ctrConfig, podConfig, startEnv, type CtrConfig, type Env, type PodConfig } from "../support/pods.ts";

let env: Env;
// A loopback-only network: pods get their own network namespace without bridges or iptables rules.
const LOOPBACK_NET = JSON.stringify({ cniVersion: "1.0.0", name: "sec-lo", plugins: [{ type: "loopback" }] });

beforeAll(async () => {
  env = await startEnv({ cniConf: LOOPBACK_NET });
  await env.d.cri.pullImage({ image: { image: env.busybox } });
}, 120_000);
afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
});

type SecurityContext = NonNullable<NonNullable<CtrConfig["linux"]>["securityContext"]>;

/** The kubelet's masked and read-only paths for ProcMount Default (pkg/securitycontext). */
const KUBELET_MASKED = [
  "/proc/asound",
  "/proc/acpi",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
];
const KUBELET_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/** The /proc/<pid>/status mask of a set of capability names. */
function mask(caps: readonly string[]): string {
  let m = 0n;
  for (const c of caps) {
    const i = (ALL_CAPABILITIES as readonly string[]).indexOf(c.startsWith("CAP_") ? c : `CAP_${c}`);
    if (i < 0) throw new Error(`unknown capability ${c}`);
    m |= 1n << BigInt(i);
  }
  return m.toString(16).padStart(16, "0");
}

const DEFAULT_NINE = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "KILL"];
/** What the daemon holds (its bounding set); this kernel withholds CAP_SYS_RESOURCE from it. */
const DAEMON_CAPS = /^CapBnd:\s*([0-9a-f]+)/m.exec(readFileSync("/proc/self/status", "utf8"))![1]!;

const dec = new TextDecoder();
let seq = 0;

/** A running container (sleep) with this security context in a (host network) pod; `exec` runs a command in it. */
async function running(sc: SecurityContext, o: { pod?: PodConfig; extra?: Partial<CtrConfig>; image?: string } = {}) {
  const name = `sec${++seq}`;
  const pod = o.pod ?? podConfig(name, env.d.dir);
  const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
  const base = ctrConfig(name, o.image ?? env.busybox, ["sleep", "3600"], o.extra ?? {}, pod);
  const config = { ...base, linux: { ...base.linux, securityContext: { ...base.linux?.securityContext, ...sc } } } as CtrConfig;
  const { containerId } = await env.d.cri.createContainer({ podSandboxId, config, sandboxConfig: pod });
  await env.d.cri.startContainer({ containerId });
  const exec = async (cmd: string) => {
    const r = await env.d.cri.execSync({ containerId, cmd: ["sh", "-c", cmd], timeout: 20n });
    return { out: dec.decode(r.stdout).trim(), err: dec.decode(r.stderr).trim(), code: r.exitCode };
  };
  return { podSandboxId, containerId, pod, exec };
}

/** A status field of the container's own process as it sees it. */
async function statusField(c: { exec: (cmd: string) => Promise<{ out: string }> }, field: string): Promise<string> {
  const { out } = await c.exec(`grep '^${field}:' /proc/self/status`);
  return out.replace(/^[^:]+:\s*/, "");
}

async function caps(c: { exec: (cmd: string) => Promise<{ out: string }> }) {
  const { out } = await c.exec("grep ^Cap /proc/self/status");
  return Object.fromEntries(out.split("\n").map((l) => l.split(/:\s*/) as [string, string]));
}

const kubeletPaths = { maskedPaths: KUBELET_MASKED, readonlyPaths: KUBELET_READONLY };

describe("capabilities", () => {
  test("the default nine: effective = permitted = bounding, nothing ambient or inheritable", async () => {
    const c = await running({ ...kubeletPaths });
    expect(await caps(c)).toEqual({
      CapInh: "0".repeat(16),
      CapPrm: mask(DEFAULT_NINE),
      CapEff: mask(DEFAULT_NINE),
      CapBnd: mask(DEFAULT_NINE),
      CapAmb: "0".repeat(16),
    });
  });

  test("add and drop change every set but ambient", async () => {
    const c = await running({
      capabilities: { addCapabilities: ["NET_ADMIN", "CAP_SYS_TIME"], dropCapabilities: ["CHOWN", "KILL"], addAmbientCapabilities: [] },
    });
    const want = [...DEFAULT_NINE.filter((x) => x !== "CHOWN" && x !== "KILL"), "NET_ADMIN", "SYS_TIME"];
    const got = await caps(c);
    expect([got.CapEff, got.CapBnd, got.CapAmb]).toEqual([mask(want), mask(want), "0".repeat(16)]);
    // CHOWN is gone: root cannot chown.
    expect((await c.exec("chown 1:1 /tmp")).code).not.toBe(0);
  });

  test('drop "ALL" leaves nothing; drop ALL + add NET_RAW leaves just that', async () => {
    const none = await running({ capabilities: { dropCapabilities: ["ALL"], addCapabilities: [], addAmbientCapabilities: [] } });
    expect((await caps(none)).CapEff).toBe("0".repeat(16));
    expect((await caps(none)).CapBnd).toBe("0".repeat(16));
    const raw = await running({ capabilities: { dropCapabilities: ["ALL"], addCapabilities: ["NET_RAW"], addAmbientCapabilities: [] } });
    expect((await caps(raw)).CapEff).toBe(mask(["NET_RAW"]));
  });

  test('add "ALL" = every capability the daemon holds', async () => {
    const c = await running({ capabilities: { addCapabilities: ["ALL"], dropCapabilities: [], addAmbientCapabilities: [] } });
    const got = await caps(c);
    expect(got.CapEff).toBe(DAEMON_CAPS);
    expect(got.CapBnd).toBe(DAEMON_CAPS);
    expect(DAEMON_CAPS).not.toBe(mask(ALL_CAPABILITIES)); // CAP_SYS_RESOURCE is withheld on this kernel
  });

  test("privileged = every capability the daemon holds, no seccomp, host devices, nothing masked", async () => {
    const pod = podConfig(`priv${seq}`, env.d.dir);
    pod.linux!.securityContext!.privileged = true;
    const c = await running({ privileged: true, ...kubeletPaths }, { pod });
    const got = await caps(c);
    expect([got.CapEff, got.CapBnd, got.CapPrm]).toEqual([DAEMON_CAPS, DAEMON_CAPS, DAEMON_CAPS]);
    expect(await statusField(c, "Seccomp")).toBe("0");
    expect((await c.exec("wc -c < /proc/kcore")).out).not.toBe("0"); // not masked
    expect((await c.exec("ls /dev")).out.split("\n").length).toBeGreaterThan(20);
  });

  test("a privileged container in an unprivileged pod is refused", async () => {
    const err = await running({ privileged: true }).catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    expect(err.details).toContain("no privileged container allowed in sandbox");
  });

  test("an unknown capability is INVALID_ARGUMENT", async () => {
    const err = await running({ capabilities: { addCapabilities: ["NO_SUCH"], dropCapabilities: [], addAmbientCapabilities: [] } }).catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    expect(err.details).toContain('unknown capability "CAP_NO_SUCH"');
  });
});

describe("seccomp", () => {
  const profile = (profileType: Profile, localhostRef = "") => ({ seccomp: { profileType, localhostRef } });

  test("RuntimeDefault filters (Seccomp: 2) and denies unshare without CAP_SYS_ADMIN; Unconfined and unset do not filter", async () => {
    const def = await running(profile(Profile.RuntimeDefault));
    expect(await statusField(def, "Seccomp")).toBe("2");
    const denied = await def.exec("unshare -U true");
    expect(denied.code).not.toBe(0);
    expect(denied.err).toContain("Operation not permitted");

    const unconfined = await running(profile(Profile.Unconfined));
    expect(await statusField(unconfined, "Seccomp")).toBe("0");
    // The same call is allowed without the filter: it was seccomp that said no.
    expect(await unconfined.exec("unshare -U true")).toMatchObject({ code: 0 });

    const unset = await running({});
    expect(await statusField(unset, "Seccomp")).toBe("0");
    expect((await env.d.cri.containerStatus({ containerId: def.containerId, verbose: true })).info.info).toContain("RuntimeDefault");
  });

  test("a Localhost profile from a file: its rules apply", async () => {
    const file = join(env.d.dir, "deny-mkdir.json");
    writeFileSync(
      file,
      JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }] }),
    );
    const c = await running(profile(Profile.Localhost, file));
    expect(await statusField(c, "Seccomp")).toBe("2");
    const r = await c.exec("mkdir /tmp/nope");
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("Operation not permitted");
    expect((await c.exec("touch /tmp/yes && echo ok")).out).toBe("ok");
  });

  test("a missing or invalid Localhost profile is INVALID_ARGUMENT naming the file", async () => {
    const missing = join(env.d.dir, "no-such-profile.json");
    let err = await running(profile(Profile.Localhost, missing)).catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    expect(err.details).toContain(missing);
    const bad = join(env.d.dir, "bad-profile.json");
    writeFileSync(bad, "{ not json");
    err = await running(profile(Profile.Localhost, bad)).catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    expect(err.details).toContain(`seccomp profile "${bad}" is not valid JSON`);
    err = await running(profile(Profile.Localhost, "relative.json")).catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    // The deprecated path field needs the localhost/ prefix (critest checks this).
    err = await running({ seccompProfilePath: bad }).catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    expect(err.details).toContain(`unknown seccomp profile path "${bad}"`);
  });
});

describe("no_new_privs", () => {
  test("NoNewPrivs: 1 when privilege escalation is off, 0 otherwise", async () => {
    expect(await statusField(await running({ noNewPrivs: true }), "NoNewPrivs")).toBe("1");
    expect(await statusField(await running({ noNewPrivs: false }), "NoNewPrivs")).toBe("0");
  });
});

describe("file system", () => {
  test("a read-only rootfs refuses writes; a mounted /tmp stays writable", async () => {
    const tmp = join(env.d.dir, "rw-tmp");
    mkdirSync(tmp, { recursive: true });
    const c = await running({ readonlyRootfs: true }, { extra: { mounts: [{ containerPath: "/tmp", hostPath: tmp }] } as Partial<CtrConfig> });
    const w = await c.exec("touch /etc/x");
    expect(w.code).not.toBe(0);
    expect(w.err).toContain("Read-only file system");
    expect((await c.exec("echo hi > /tmp/x && cat /tmp/x")).out).toBe("hi");
    expect(readFileSync(join(tmp, "x"), "utf8")).toBe("hi\n");
  });

  test("masked paths read as empty, read-only paths refuse writes", async () => {
    const c = await running({ ...kubeletPaths });
    // /proc/kcore where the kernel has it (this VM's does not); /proc/keys and /proc/timer_list always.
    const files = ["/proc/kcore", "/proc/keys", "/proc/timer_list"].filter((f) => existsSync(f));
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const f of files) expect((await c.exec(`wc -c < ${f}`)).out).toBe("0");
    expect((await c.exec("ls -A /proc/acpi | wc -l")).out).toBe("0");
    const w = await c.exec("echo 1 > /proc/sys/kernel/ns_last_pid");
    expect(w.code).not.toBe(0);
    expect(w.err).toContain("Read-only file system");
    // The interrupts file is masked too (CRI-O adds it to the kubelet's list).
    expect((await c.exec("wc -c < /proc/interrupts")).out).toBe("0");
  });

  test("ProcMount Unmasked (empty lists from the kubelet): nothing masked or read-only", async () => {
    const c = await running({ maskedPaths: [], readonlyPaths: [] });
    expect(Number((await c.exec("wc -c < /proc/interrupts")).out)).toBeGreaterThan(0);
    expect((await c.exec("grep -c ' /proc/' /proc/self/mounts")).out).toBe("0");
  });
});

describe("users and groups", () => {
  // busybox-static cannot resolve names (no NSS in a static glibc binary): compare numbers; the
  // daemon resolved the names from the image's files.
  const id = async (c: Awaited<ReturnType<typeof running>>) => (await c.exec("id -u; id -g; id -G")).out.split("\n");
  const statusUser = async (containerId: string) => (await env.d.cri.containerStatus({ containerId })).status?.user?.linux;

  test("run_as_user 1000 resolves through the image's passwd and group files; ContainerStatus reports the user", async () => {
    const c = await running({ runAsUser: { value: 1000n } });
    expect(await id(c)).toEqual(["1000", "1000", "1000 2000"]);
    expect((await c.exec("ls -d /etc/passwd /home/app && touch /tmp/mine && stat -c %u:%g /tmp/mine")).out).toBe("/etc/passwd\n/home/app\n1000:1000");
    expect(await statusUser(c.containerId)).toMatchObject({ uid: 1000n, gid: 1000n, supplementalGroups: [1000n, 2000n] });
    expect((await caps(c)).CapEff).toBe("0".repeat(16)); // a non-root user keeps no effective capability
  });

  test("run_as_username, run_as_group and supplemental groups: Merge keeps the image's groups, Strict does not", async () => {
    const merge = await running({ runAsUsername: "app", runAsGroup: { value: 3000n }, supplementalGroups: [4000n] });
    expect(await id(merge)).toEqual(["1000", "3000", "3000 2000 4000"]);
    expect(await statusUser(merge.containerId)).toMatchObject({ uid: 1000n, gid: 3000n, supplementalGroups: [3000n, 2000n, 4000n] });
    const strict = await running({
      runAsUsername: "app",
      runAsGroup: { value: 3000n },
      supplementalGroups: [4000n],
      supplementalGroupsPolicy: SupplementalGroupsPolicy.Strict,
    });
    expect((await strict.exec("id -G")).out).toBe("3000 4000");
    expect(await statusUser(strict.containerId)).toMatchObject({ uid: 1000n, gid: 3000n, supplementalGroups: [3000n, 4000n] });
    const st = await env.d.cri.status({});
    expect(st.features?.supplementalGroupsPolicy).toBe(true);
  });

  test("a uid without a passwd entry gets one (generated file), so the shell knows it", async () => {
    const c = await running({ runAsUser: { value: 4242n } });
    expect((await c.exec("id -u; grep ':4242:' /etc/passwd")).out).toBe("4242\ndefault:x:4242:0:default user:/:/sbin/nologin");
  });

  test("an unknown user name and a group without a user are INVALID_ARGUMENT", async () => {
    let err = await running({ runAsUsername: "nobody-here" }).catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    expect(err.details).toContain("unable to find user nobody-here");
    err = await running({ runAsGroup: { value: 5n } }).catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    expect(err.details).toContain("user group is specified without user or username");
  });
});

describe("sysctls", () => {
  test("namespaced sysctls of the pod: net.* in its network namespace, kernel.shm* in its IPC namespace", async () => {
    const pod = podConfig(`sysctl${seq}`, env.d.dir, { hostNetwork: false });
    pod.linux!.sysctls = { "net.ipv4.ip_unprivileged_port_start": "80", "kernel.shmmni": "2048" };
    const hostPort = readFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8").trim();
    const hostShm = readFileSync("/proc/sys/kernel/shmmni", "utf8").trim();
    const c = await running({}, { pod });
    expect((await c.exec("cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni")).out).toBe("80\n2048");
    expect(readFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8").trim()).toBe(hostPort);
    expect(readFileSync("/proc/sys/kernel/shmmni", "utf8").trim()).toBe(hostShm);
  });

  test("a host-network pod asking for net.* and any pod asking for a node-wide sysctl are INVALID_ARGUMENT", async () => {
    const host = podConfig(`sysctlh${seq}`, env.d.dir);
    host.linux!.sysctls = { "net.ipv4.ip_forward": "1" };
    let err = await env.d.cri.runPodSandbox({ config: host }).catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    expect(err.details).toContain('sysctl "net.ipv4.ip_forward"');
    const node = podConfig(`sysctln${seq}`, env.d.dir, { hostNetwork: false });
    node.linux!.sysctls = { "kernel.panic": "1" };
    err = await env.d.cri.runPodSandbox({ config: node }).catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    expect(err.details).toContain('sysctl "kernel.panic" is not namespaced');
    expect((await env.d.cri.listPodSandbox({ filter: { labelSelector: {} } })).items.some((p) => p.metadata?.name === host.metadata!.name)).toBe(false);
  });
});

describe("devices", () => {
  test("a host device mapped at another path: rwm works; r-only refuses writes through the device cgroup", async () => {
    const rw = await running({}, { extra: { devices: [{ hostPath: "/dev/null", containerPath: "/dev/mynull", permissions: "rwm" }] } as Partial<CtrConfig> });
    expect((await rw.exec("echo x > /dev/mynull && stat -c '%t:%T %F' /dev/mynull")).out).toBe("1:3 character special file");
    // /dev/null and /dev/net/tun are in runc's always-allowed set; /dev/loop-control (10:237) is not.
    const ro = await running(
      {},
      { extra: { devices: [{ hostPath: "/dev/loop-control", containerPath: "/dev/myloop", permissions: "r" }] } as Partial<CtrConfig> },
    );
    expect((await ro.exec("exec 3</dev/myloop && echo read-ok")).out).toBe("read-ok");
    const w = await ro.exec("exec 3>/dev/myloop");
    expect(w.code).not.toBe(0);
    expect(w.err).toContain("Operation not permitted");
    // Not mapped at all: even with CAP_MKNOD the node can be made but not opened.
    const none = await running({ capabilities: { addCapabilities: ["MKNOD"], dropCapabilities: [], addAmbientCapabilities: [] } });
    const r = await none.exec("mknod /tmp/lc c 10 237 && echo made && exec 3</tmp/lc");
    expect(r.out).toBe("made");
    expect(r.err).toContain("Operation not permitted");
  });

  test("a missing host device is INVALID_ARGUMENT", async () => {
    const err = await running(
      {},
      { extra: { devices: [{ hostPath: "/dev/no-such-device", containerPath: "/dev/x", permissions: "rwm" }] } as Partial<CtrConfig> },
    ).catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    expect(err.details).toContain('failed to add device "/dev/no-such-device"');
  });
});

describe("AppArmor and SELinux are off on this kernel", () => {
  const bundle = (id: string) => JSON.parse(readFileSync(join(env.d.runroot, "containers", id, "config.json"), "utf8"));

  test("the daemon says once that AppArmor is off; a Localhost profile is ignored, not an error", async () => {
    const c = await running({ apparmor: { profileType: Profile.Localhost, localhostRef: "localhost/my-profile" } });
    expect((await c.exec("echo up")).out).toBe("up");
    expect(bundle(c.containerId).process.apparmorProfile).toBeUndefined();
    const lines = env.d
      .logs()
      .split("\n")
      .filter((l) => l.includes("AppArmor is disabled"));
    expect(lines).toHaveLength(1);
  });

  test("SELinux options are a clean no-op", async () => {
    const c = await running({ selinuxOptions: { user: "system_u", role: "system_r", type: "container_t", level: "s0:c1,c2" } });
    expect((await c.exec("echo up")).out).toBe("up");
    const spec = bundle(c.containerId);
    expect(spec.process.selinuxLabel).toBeUndefined();
    expect(spec.linux.mountLabel).toBeUndefined();
  });
});
