// The OCI layer against the real runtimes (root): a spec from buildContainerSpec over an overlay
// rootfs of two hand-made layers (busybox and its applet links, then /etc files) is run with
// runc (and crun once); the container reports its identity and its /proc/self/status, which must
// show the caps, NoNewPrivs, seccomp mode and user the spec asked for. Everything is removed after,
// and no mount or cgroup is left behind.
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeviceSchema, MountSchema } from "../../src/gen/runtime/v1/api_pb.ts";
import { buildContainerSpec, detectSpecHost, realSpecIo, type ContainerSpecInput, type SpecHost } from "../../src/container/spec/index.ts";
import { OciRuntime, writeBundle, type Spec } from "../../src/oci/index.ts";
import { createRootfs, removeRootfs } from "../../src/storage/index.ts";
import { cgroupDirsForPath, cgroupDirsForPid, detectCgroupLayout, removeCgroupDirs } from "../../src/sys/cgroup.ts";
import { runRaw } from "../../src/sys/exec.ts";
import { mountShm, readMountinfo, unmount } from "../../src/sys/mount.ts";
import { isRoot } from "../preload.ts";
import { containerConfig, fakeDefaults, sandboxConfig } from "../unit/container/spec/fixtures.ts";

const APPLETS = ["sh", "id", "cat", "grep", "sleep", "unshare", "echo", "ls", "hostname", "true"];
const NINE_CAPS = "00000000000005fb"; // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE

let dir = "";
let host: SpecHost;
let lowers: string[] = [];
const runc = () => new OciRuntime({ name: "runc", path: "/usr/sbin/runc", root: join(dir, "runc-root") });
const crun = () => new OciRuntime({ name: "crun", path: "/usr/bin/crun", root: join(dir, "crun-root") });

beforeAll(async () => {
  if (!isRoot()) return;
  dir = mkdtempSync(join(tmpdir(), "oci-e2e-"));
  // Layer 1: busybox with `busybox --install`-style links. Layer 2: /etc files and a marker.
  const l1 = join(dir, "layers", "busybox");
  mkdirSync(join(l1, "bin"), { recursive: true });
  copyFileSync("/bin/busybox", join(l1, "bin", "busybox"));
  for (const a of APPLETS) symlinkSync("busybox", join(l1, "bin", a));
  const l2 = join(dir, "layers", "etc");
  mkdirSync(join(l2, "etc"), { recursive: true });
  writeFileSync(join(l2, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n");
  writeFileSync(join(l2, "etc", "group"), "root:x:0:\napp:x:1000:\nextra:x:2000:app\n");
  writeFileSync(join(l2, "marker"), "layer2\n");
  lowers = [l1, l2];
  const features = await runc().features();
  host = detectSpecHost({ rro: features.rro });
});

afterAll(async () => {
  if (!dir) return;
  // runc leaves the (empty) parent cgroup it created for the pod; remove it on every hierarchy.
  await removeCgroupDirs(cgroupDirsForPath(detectCgroupLayout(), `/crio-e2e-${process.pid}`));
  for (const m of readMountinfo()
    .filter((x) => x.mountPoint.startsWith(dir))
    .reverse())
    unmount(m.mountPoint, { detach: true });
  rmSync(dir, { recursive: true, force: true });
});

/** Builds rootfs + pod files + spec for container `id`; the caller runs it. */
async function prepare(id: string, edit: (i: ContainerSpecInput) => void = () => {}): Promise<{ bundle: string; spec: Spec }> {
  const rootfs = await createRootfs(join(dir, "storage"), id, lowers);
  const pod = join(dir, "pods", id);
  mkdirSync(pod, { recursive: true });
  await mountShm(join(pod, "shm"), 1 << 20);
  writeFileSync(join(pod, "hostname"), "e2e-pod\n");
  writeFileSync(join(pod, "resolv.conf"), "nameserver 127.0.0.1\n");
  const cfg = containerConfig();
  cfg.mounts = [];
  cfg.workingDir = "/";
  cfg.linux!.resources!.cpusetCpus = "";
  const input: ContainerSpecInput = {
    id,
    name: `k8s_${id}_e2e_default_uid_0`,
    config: cfg,
    sandbox: {
      id: `pod-${id}`,
      name: `k8s_POD_e2e_default_uid_0`,
      config: sandboxConfig(),
      hostname: "e2e-pod",
      namespaces: { network: "new", ipc: "new", uts: "new", pid: "new" },
      shmPath: join(pod, "shm"),
      hostnamePath: join(pod, "hostname"),
      resolvConfPath: join(pod, "resolv.conf"),
      cgroupParent: `/crio-e2e-${process.pid}`,
    },
    image: { config: { Cmd: ["sh"] }, id: "sha256:0", name: "local/busybox", userRequested: "busybox" },
    rootfs,
    runDir: pod,
    cgroupManager: "cgroupfs",
    etcPasswd: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
    etcGroup: "root:x:0:\napp:x:1000:\nextra:x:2000:app\n",
    created: new Date().toISOString(),
    defaults: fakeDefaults({ env: [] }),
    host,
    io: realSpecIo,
  };
  edit(input);
  const r = buildContainerSpec(input);
  for (const f of r.files) writeFileSync(f.path, f.content, { mode: f.mode });
  const bundle = join(dir, "bundles", id);
  await writeBundle(bundle, r.spec);
  return { bundle, spec: r.spec };
}

async function cleanup(id: string): Promise<void> {
  await removeRootfs(join(dir, "storage"), id);
  unmount(join(dir, "pods", id, "shm"));
}

/** `runtime run` in the foreground; returns its output. */
async function runToEnd(rt: OciRuntime, id: string, bundle: string, wrap: string[] = []): Promise<{ code: number | null; out: string }> {
  const r = await runRaw([...wrap, ...rt.command.prefix, "run", "--bundle", bundle, id], { timeoutMs: 30_000 });
  return { code: r.code, out: r.stdout + r.stderr };
}

function statusField(out: string, name: string): string | undefined {
  return new RegExp(`^${name}:\\s*(\\S+)`, "m").exec(out)?.[1];
}

describe.if(isRoot())("runc runs our spec", () => {
  test("a non-root container: user, groups, caps, NoNewPrivs and seccomp as asked", async () => {
    const vol = join(dir, "volumes");
    mkdirSync(join(vol, "ro", "sub"), { recursive: true });
    writeFileSync(join(vol, "ro", "hello"), "from-host\n");
    const { bundle } = await prepare("nonroot", (i) => {
      i.config.command = ["sh", "-c"];
      i.config.args = [
        [
          "id",
          "hostname",
          "cat /marker",
          "cat /ro/hello",
          "(echo x > /ro/f) 2>/dev/null || echo RO-DENIED",
          "cat /proc/sys/net/ipv4/ip_unprivileged_port_start",
          "echo HOME=$HOME MODE=$MODE",
          "ls -l /dev/fuse",
          "cat /proc/self/status",
        ].join("; "),
      ];
      i.config.mounts = [create(MountSchema, { containerPath: "/ro", hostPath: join(vol, "ro"), readonly: true, recursiveReadOnly: true })];
      i.config.devices = [create(DeviceSchema, { containerPath: "/dev/fuse", hostPath: "/dev/fuse", permissions: "rw" })];
    });
    const { code, out } = await runToEnd(runc(), "nonroot", bundle);
    expect({ code, out }).toMatchObject({ code: 0 });
    expect(out).toContain("uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)");
    expect(out).toContain("e2e-pod\nlayer2\nfrom-host\nRO-DENIED\n0\n");
    expect(out).toContain("MODE=test");
    expect(out).toMatch(/crw-------\s+1 root\s+root\s+10,\s+229 .* \/dev\/fuse/);
    expect(statusField(out, "CapBnd")).toBe("00000000000015db"); // the nine + NET_ADMIN − KILL (the fixture's add/drop)
    expect(statusField(out, "CapEff")).toBe("0000000000000000"); // a non-root user holds no effective caps
    expect(statusField(out, "NoNewPrivs")).toBe("1");
    expect(statusField(out, "Seccomp")).toBe("2");
    expect(await runc().state("nonroot")).toBeUndefined(); // `run` deleted it
    await cleanup("nonroot");
  });

  test("a root container holds exactly the default caps, and seccomp blocks new namespaces", async () => {
    const { bundle } = await prepare("rootseccomp", (i) => {
      i.config.linux!.securityContext!.runAsUser = { value: 0n } as never;
      i.config.linux!.securityContext!.capabilities = undefined;
      i.config.command = ["sh", "-c"];
      i.config.args = ["cat /proc/self/status; unshare -U true && echo UNSHARE-OK || echo UNSHARE-DENIED"];
    });
    const { code, out } = await runToEnd(runc(), "rootseccomp", bundle);
    expect({ code, out }).toMatchObject({ code: 0 });
    expect(statusField(out, "CapEff")).toBe(NINE_CAPS);
    expect(statusField(out, "CapBnd")).toBe(NINE_CAPS);
    expect(out).toContain("UNSHARE-DENIED");
    await cleanup("rootseccomp");
  });

  test("create → start → state → kill → delete through OciRuntime; no cgroup or mount left", async () => {
    const id = "lifecycle";
    const { bundle, spec } = await prepare(id, (i) => {
      i.config.command = ["sleep", "300"];
      i.config.args = [];
    });
    const rt = runc();
    // `create` is the monitor's job; here its argv runs with stdio detached.
    const create = Bun.spawn(rt.command.create(id, { bundle, pidFile: join(dir, `${id}.pid`) }), { stdio: ["ignore", "ignore", "pipe"] });
    expect(await create.exited).toBe(0);
    expect(await rt.state(id)).toMatchObject({ id, status: "created", bundle });
    await rt.start(id);
    const st = await rt.state(id);
    expect(st?.status).toBe("running");
    const dirs = cgroupDirsForPid(st!.pid);
    expect(dirs.some((d) => d.endsWith(`/crio-e2e-${process.pid}/crio-${id}`))).toBe(true);
    await expect(rt.start(id)).rejects.toMatchObject({ kind: "failed-precondition" });
    await rt.update(id, { cpu: { shares: 256 } });
    await rt.kill(id, "SIGKILL");
    for (let i = 0; i < 200 && (await rt.state(id))?.status !== "stopped"; i++) await Bun.sleep(10);
    expect((await rt.state(id))?.status).toBe("stopped");
    await expect(rt.kill(id, "SIGKILL")).rejects.toMatchObject({ kind: expect.stringMatching(/failed-precondition|not-found/) });
    await rt.delete(id, { force: true });
    expect(await rt.state(id)).toBeUndefined();
    await rt.delete(id); // idempotent
    const layout = detectCgroupLayout();
    await removeCgroupDirs(cgroupDirsForPath(layout, spec.linux!.cgroupsPath!)); // nothing left to remove, must not throw
    for (const d of cgroupDirsForPath(layout, spec.linux!.cgroupsPath!)) expect(existsSync(d)).toBe(false);
    await removeCgroupDirs(cgroupDirsForPath(layout, `/crio-e2e-${process.pid}`));
    await cleanup(id);
    expect(readMountinfo().filter((m) => m.mountPoint.startsWith(join(dir, "storage", id)))).toEqual([]);
  });

  test("a privileged container gets every capability this daemon holds", async () => {
    const { bundle } = await prepare("priv", (i) => {
      i.config.linux!.securityContext!.privileged = true;
      i.config.linux!.securityContext!.runAsUser = { value: 0n } as never;
      i.sandbox.config.linux!.securityContext!.privileged = true;
      i.config.command = ["sh", "-c"];
      i.config.args = ["cat /proc/self/status"];
    });
    const { code, out } = await runToEnd(runc(), "priv", bundle);
    expect({ code, out }).toMatchObject({ code: 0 });
    const own = /^CapBnd:\s*(\S+)/m.exec(await Bun.file("/proc/self/status").text())?.[1];
    expect(statusField(out, "CapEff")).toBe(own);
    expect(statusField(out, "Seccomp")).toBe("0");
    await cleanup("priv");
  });
});

describe.if(isRoot())("crun runs our spec", () => {
  test("the non-root container under crun", async () => {
    const { bundle } = await prepare("crun1", (i) => {
      i.config.command = ["sh", "-c"];
      i.config.args = ["id; cat /proc/self/status"];
    });
    // crun 1.8 refuses a hybrid layout whose cgroup2 hierarchy holds a controller (hugetlb here):
    // on such a node it runs in a private mount namespace without the cgroup2 mount, where it
    // sees (and uses) plain cgroup v1. The host's mounts are untouched.
    const layout = detectCgroupLayout();
    const wrap =
      layout.kind === "hybrid" && layout.unified
        ? ["unshare", "-m", "--propagation", "private", "sh", "-c", `umount -l ${layout.unified.mountPoint} && exec "$@"`, "sh"]
        : [];
    const { code, out } = await runToEnd(crun(), "crun1", bundle, wrap);
    expect({ code, out }).toMatchObject({ code: 0 });
    expect(out).toContain("uid=1000(app) gid=1000(app)");
    expect(statusField(out, "NoNewPrivs")).toBe("1");
    expect(statusField(out, "Seccomp")).toBe("2");
    expect(await crun().state("crun1")).toBeUndefined();
    await cleanup("crun1");
  });
});
