// cgroup_manager = "systemd" in a systemd node (test/systemd-node/run.sh): kubelet-style pods
// with slice cgroup parents, each container in crio-<id>.scope, monitors placed as monitor_cgroup
// says, limits in the scope's cgroups (v1 hierarchies: this host binds every controller to v1),
// updates, stats, nothing left behind, scopes found again after a restart.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { existsSync, readdirSync } from "node:fs";
import { ContainerState, type LinuxContainerResourcesSchema } from "../../src/gen/runtime/v1/api_pb.ts";
import { waitFor } from "../harness.ts";
import { ctrConfig, logLines, podConfig, type PodConfig } from "../support/pods.ts";
import { cri, ensureActive, nodeCgroupFile, nodeCgroups, nodePath, nodeProcs, setUpNode, sh, unitProp } from "./node.ts";

type Resources = MessageInitShape<typeof LinuxContainerResourcesSchema>;
const MiB = 1024n * 1024n;
/** The v1 controllers every container's scope must be in. */
const CONTROLLERS = ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "name=systemd"];

let images: { busybox: string; pause: string };
beforeAll(async () => {
  images = await setUpNode();
}, 600_000);
afterAll(async () => {
  await ensureActive();
  for (const p of (await cri().listPodSandbox({})).items) await cri().removePodSandbox({ podSandboxId: p.id }, { timeoutMs: 120_000 });
});

/** The kubelet's pod slice for a QoS class: kubepods[-<qos>]-pod<uid with _>.slice, and its path. */
function podSlice(qos: "besteffort" | "burstable" | "guaranteed", uid: string): { name: string; path: string } {
  const u = uid.replace(/-/g, "_");
  if (qos === "guaranteed") return { name: `kubepods-pod${u}.slice`, path: `/kubepods.slice/kubepods-pod${u}.slice` };
  return { name: `kubepods-${qos}-pod${u}.slice`, path: `/kubepods.slice/kubepods-${qos}.slice/kubepods-${qos}-pod${u}.slice` };
}

interface Running {
  pod: PodConfig;
  podSandboxId: string;
  containerId: string;
  /** The container's init, in the node's pid namespace. */
  pid: number;
  slice: { name: string; path: string };
}

let seq = 0;
/** A pod in its QoS slice (as the kubelet sends it) with one running container. */
async function running(
  o: { qos?: "besteffort" | "burstable" | "guaranteed"; resources?: Resources; handler?: string; cmd?: string[]; network?: "pod" | "node" } = {},
): Promise<Running> {
  const name = `cg${++seq}`;
  const pod = podConfig(name, "/var/log", { hostNetwork: o.network !== "pod" });
  const slice = podSlice(o.qos ?? "besteffort", pod.metadata!.uid!);
  pod.linux!.cgroupParent = slice.name;
  await sh(["mkdir", "-p", pod.logDirectory!]);
  const { podSandboxId } = await cri().runPodSandbox({ config: pod, runtimeHandler: o.handler ?? "" });
  const base = ctrConfig(name, images.busybox, o.cmd ?? ["sleep", "3600"], {}, pod);
  const config = (o.resources ? { ...base, linux: { ...base.linux, resources: o.resources } } : base) as typeof base;
  const { containerId } = await cri().createContainer({ podSandboxId, config, sandboxConfig: pod });
  await cri().startContainer({ containerId });
  const st = await cri().containerStatus({ containerId, verbose: true });
  const pid = Number(JSON.parse(st.info.info ?? "{}").pid);
  expect(pid).toBeGreaterThan(1);
  return { pod, podSandboxId, containerId, pid, slice };
}

/** The monitor (crio conmon) of container `id`, inside the node. */
async function monitorOf(id: string): Promise<number> {
  const m = await nodeProcs((a) => a.includes("conmon") && a[a.indexOf("--id") + 1] === id && a.includes("create"));
  expect(m.map((x) => x.argv.slice(0, 6).join(" "))).toHaveLength(1);
  return m[0]!.pid;
}

/** Units matching a pattern, loaded in the node's systemd (any state). */
async function units(pattern: string): Promise<string[]> {
  const out = await sh(["systemctl", "list-units", "--all", "--plain", "--no-legend", pattern]);
  return out
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0]!)
    .filter(Boolean);
}

/** A file of the container's scope in a v1 controller (read from this side). */
function scopeFile(c: Running, controller: string, file: string): string | undefined {
  return nodeCgroupFile(controller, `${c.slice.path}/crio-${c.containerId}.scope`, file);
}

describe("kubelet-style pods under cgroup_manager = systemd", () => {
  test("each container runs in crio-<id>.scope under its pod's slice, in every v1 hierarchy; its monitor in system.slice", async () => {
    const c = await running({ network: "pod" });
    const scope = `crio-${c.containerId}.scope`;
    const cg = await nodeCgroups(c.pid);
    for (const ctl of CONTROLLERS) expect({ ctl, path: cg.get(ctl) }).toEqual({ ctl, path: `${c.slice.path}/${scope}` });
    expect(await unitProp(scope, "ActiveState")).toBe("active");
    expect(await unitProp(scope, "Slice")).toBe(c.slice.name);
    // the pod's network came from the CNI config install.sh wrote
    const st = await cri().podSandboxStatus({ podSandboxId: c.podSandboxId });
    expect(st.status?.network?.ip).toMatch(/^10\.85\./);
    // monitor_cgroup "" (default): a scope of its own in system.slice
    const mon = await nodeCgroups(await monitorOf(c.containerId));
    expect(mon.get("name=systemd")).toBe(`/system.slice/crio-conmon-${c.containerId}.scope`);
    expect(await unitProp(`crio-conmon-${c.containerId}.scope`, "ActiveState")).toBe("active");
    // exec and logs work in the scope
    const r = await cri().execSync({
      containerId: c.containerId,
      cmd: ["sh", "-c", "cat /proc/self/cgroup | grep memory; echo to-log > /proc/1/fd/1"],
      timeout: 10n,
    });
    expect(new TextDecoder().decode(r.stdout)).toContain(`${c.slice.path}/${scope}`);
    await waitFor(
      () => {
        try {
          return logLines(nodePath(`${c.pod.logDirectory}/${c.pod.metadata!.name}.log`)).some((l) => l.text === "to-log");
        } catch {
          return false;
        }
      },
      10_000,
      "the log line",
    );
  });

  test('monitor_cgroup = "pod" puts the monitor in the pod\'s slice; a named slice puts it there', async () => {
    const inPod = await running({ handler: "runc-pod" });
    expect((await nodeCgroups(await monitorOf(inPod.containerId))).get("name=systemd")).toBe(`${inPod.slice.path}/crio-conmon-${inPod.containerId}.scope`);
    const named = await running({ handler: "runc-slice" });
    expect((await nodeCgroups(await monitorOf(named.containerId))).get("name=systemd")).toBe(
      `/crio.slice/crio-monitors.slice/crio-conmon-${named.containerId}.scope`,
    );
    // and the containers themselves are in their scopes all the same
    for (const c of [inPod, named]) expect((await nodeCgroups(c.pid)).get("memory")).toBe(`${c.slice.path}/crio-${c.containerId}.scope`);
  });

  test("CPU, memory and pids limits are in the scope's cgroups; UpdateContainerResources changes them", async () => {
    const c = await running({
      qos: "burstable",
      resources: { cpuShares: 512n, cpuQuota: 50_000n, cpuPeriod: 100_000n, memoryLimitInBytes: 64n * MiB, cpusetCpus: "0" },
    });
    expect(scopeFile(c, "cpu", "cpu.shares")).toBe("512");
    expect(scopeFile(c, "cpu", "cpu.cfs_quota_us")).toBe("50000");
    expect(scopeFile(c, "cpu", "cpu.cfs_period_us")).toBe("100000");
    expect(scopeFile(c, "memory", "memory.limit_in_bytes")).toBe(String(64n * MiB));
    expect(scopeFile(c, "cpuset", "cpuset.cpus")).toBe("0");
    expect(scopeFile(c, "pids", "pids.max")).toBe("1234"); // pids_limit of the lane's drop-in
    // systemd knows the limits too (runc sets them as the scope's properties)
    expect(await unitProp(`crio-${c.containerId}.scope`, "CPUQuotaPerSecUSec")).toBe("500ms");

    await cri().updateContainerResources({
      containerId: c.containerId,
      linux: { cpuShares: 256n, cpuQuota: 20_000n, cpuPeriod: 100_000n, memoryLimitInBytes: 96n * MiB },
    });
    expect(scopeFile(c, "cpu", "cpu.shares")).toBe("256");
    expect(scopeFile(c, "cpu", "cpu.cfs_quota_us")).toBe("20000");
    expect(scopeFile(c, "memory", "memory.limit_in_bytes")).toBe(String(96n * MiB));
    const st = await cri().containerStatus({ containerId: c.containerId });
    expect(st.status?.resources?.linux?.memoryLimitInBytes).toBe(96n * MiB);
    // a memory hog is OOM-killed at the scope's limit
    const hog = await running({ resources: { memoryLimitInBytes: 16n * MiB }, cmd: ["sh", "-c", "x=a; while :; do x=$x$x; done"] });
    await waitFor(
      async () => (await cri().containerStatus({ containerId: hog.containerId })).status?.state === ContainerState.CONTAINER_EXITED,
      30_000,
      "the hog to be killed",
    );
    expect((await cri().containerStatus({ containerId: hog.containerId })).status).toMatchObject({ reason: "OOMKilled", exitCode: 137 });
  });

  test("hugepage limits: the hugetlb controller is not mounted on this host, so they are ignored with a warning", async () => {
    expect(await sh(["sh", "-c", "findmnt -rn -t cgroup -o OPTIONS | grep -c hugetlb || true"])).toBe("0\n");
    const c = await running({ resources: { hugepageLimits: [{ pageSize: "2MB", limit: 4n * MiB }] } });
    expect((await cri().containerStatus({ containerId: c.containerId })).status?.state).toBe(ContainerState.CONTAINER_RUNNING);
    await waitFor(
      async () => (await sh(["journalctl", "-u", "crio.service", "--no-pager", "-o", "cat"])).includes("hugepage limits ignored"),
      10_000,
      "the warning",
    );
  });

  test("container and pod stats come from the scope and the slice", async () => {
    const c = await running({
      qos: "burstable",
      resources: { memoryLimitInBytes: 64n * MiB },
      cmd: ["sh", "-c", "x=$(head -c 4000000 /dev/zero | tr '\\0' a); while :; do :; done"],
    });
    await waitFor(
      async () => {
        const s = (await cri().containerStats({ containerId: c.containerId })).stats;
        return (s?.cpu?.usageCoreNanoSeconds?.value ?? 0n) > 0n && (s?.memory?.workingSetBytes?.value ?? 0n) > 0n;
      },
      20_000,
      "container stats",
    );
    const s = (await cri().containerStats({ containerId: c.containerId })).stats!;
    // the same figures the scope's cgroup has
    const usage = BigInt(scopeFile(c, "cpuacct", "cpuacct.usage") ?? "0");
    expect(usage).toBeGreaterThan(0n);
    expect(s.cpu!.usageCoreNanoSeconds!.value).toBeLessThanOrEqual(usage);
    expect(s.memory!.usageBytes!.value).toBeGreaterThan(0n);
    const pod = await waitFor(
      async () => {
        const p = (await cri().podSandboxStats({ podSandboxId: c.podSandboxId })).stats;
        return (p?.linux?.cpu?.usageCoreNanoSeconds?.value ?? 0n) > 0n ? p : undefined;
      },
      20_000,
      "pod stats",
    );
    expect(pod.linux!.memory!.workingSetBytes!.value).toBeGreaterThan(0n);
    expect(pod.linux!.containers.map((x) => x.attributes?.id)).toEqual([c.containerId]);
    await cri().stopPodSandbox({ podSandboxId: c.podSandboxId });
  });

  test("StopPodSandbox and RemovePodSandbox leave no scope behind, and nothing of ours in the pod's slice", async () => {
    const c = await running({ handler: "runc-pod" });
    const mon = `crio-conmon-${c.containerId}.scope`;
    expect(await units(`crio-*${c.containerId}*`)).toEqual(expect.arrayContaining([`crio-${c.containerId}.scope`, mon]));
    await cri().stopPodSandbox({ podSandboxId: c.podSandboxId });
    await waitFor(async () => (await units(`crio-*${c.containerId}*`)).length === 0, 10_000, "the scopes to go");
    await cri().removePodSandbox({ podSandboxId: c.podSandboxId });
    // the pod's slice is the kubelet's (it makes it before RunPodSandbox and removes it when the
    // pod is gone; RemovePodSandbox may be for an old sandbox of a live pod), as with CRI-O:
    // nothing of ours is left in it, in any hierarchy
    for (const ctl of ["memory", "cpu", "cpuacct", "cpuset", "pids", "devices", "freezer", "blkio", "systemd"]) {
      const dir = nodePath(`/sys/fs/cgroup/${ctl}${c.slice.path}`);
      const children = existsSync(dir)
        ? readdirSync(dir, { withFileTypes: true })
            .filter((e) => e.isDirectory())
            .map((e) => e.name)
        : [];
      expect({ ctl, children }).toEqual({ ctl, children: [] });
    }
    expect(await units(`crio-*${c.containerId}*`)).toEqual([]);
  });

  test("a daemon restart finds the scopes of running containers: stats, update and stop work on them", async () => {
    const c = await running({ qos: "burstable", resources: { memoryLimitInBytes: 64n * MiB } });
    await sh(["systemctl", "restart", "crio.service"], { timeoutMs: 120_000 });
    await ensureActive();
    expect((await cri().containerStatus({ containerId: c.containerId })).status?.state).toBe(ContainerState.CONTAINER_RUNNING);
    const s = await waitFor(
      async () => {
        const x = (await cri().containerStats({ containerId: c.containerId })).stats;
        return (x?.memory?.workingSetBytes?.value ?? 0n) > 0n ? x : undefined;
      },
      20_000,
      "stats after restart",
    );
    expect(s.attributes?.id).toBe(c.containerId);
    await cri().updateContainerResources({ containerId: c.containerId, linux: { memoryLimitInBytes: 80n * MiB } });
    expect(scopeFile(c, "memory", "memory.limit_in_bytes")).toBe(String(80n * MiB));
    await cri().stopContainer({ containerId: c.containerId, timeout: 1n });
    expect((await cri().containerStatus({ containerId: c.containerId })).status?.state).toBe(ContainerState.CONTAINER_EXITED);
    await waitFor(async () => (await units(`crio-${c.containerId}.scope`)).length === 0, 10_000, "the scope to go");
  });

  test("StopContainer ends a container whose init left the cgroups runc recorded (its `kill --all` reaches nothing): SIGKILL to its init", async () => {
    const c = await running();
    // as a cgroup migration by another agent would: the init moved up to its pod slice's cgroup in
    // every controller hierarchy (systemd keeps its name=systemd placement)
    const moved: string[] = [];
    for (const [ctrl, path] of await nodeCgroups(c.pid)) {
      if (ctrl === "unified" || ctrl === "name=systemd" || !path.endsWith(`crio-${c.containerId}.scope`)) continue;
      const parent = path.slice(0, path.lastIndexOf("/"));
      await sh(["sh", "-c", `echo ${c.pid} > /sys/fs/cgroup/${ctrl}${parent}/cgroup.procs`]);
      moved.push(ctrl);
    }
    expect(moved).toContain("devices");
    expect((await nodeCgroups(c.pid)).get("devices")).toBe(c.slice.path);
    const t0 = Date.now();
    await cri().stopContainer({ containerId: c.containerId, timeout: 1n });
    const took = Date.now() - t0;
    const st = (await cri().containerStatus({ containerId: c.containerId })).status!;
    expect({ state: st.state, exitCode: st.exitCode }).toEqual({ state: ContainerState.CONTAINER_EXITED, exitCode: 137 });
    expect(took).toBeLessThan(25_000); // the SIGKILL floor is 30 s: it did not take the runtime's word alone
    expect((await nodeProcs((a) => a[0] === "sleep" && a[1] === "3600")).some((p) => p.pid === c.pid)).toBe(false);
    await cri().removePodSandbox({ podSandboxId: c.podSandboxId });
  });

  test("pods get IPC and UTS namespaces of their own with their sysctls (the node's /proc/sys lets them)", async () => {
    const name = `sysctl${++seq}`;
    const pod = podConfig(name, "/var/log", { hostNetwork: false, extra: { hostname: "pinned-host" } });
    pod.linux!.cgroupParent = podSlice("besteffort", pod.metadata!.uid!).name;
    pod.linux!.sysctls = { "kernel.shm_rmid_forced": "1", "fs.mqueue.msg_max": "100", "kernel.msgmax": "8192" };
    await sh(["mkdir", "-p", pod.logDirectory!]);
    const { podSandboxId } = await cri().runPodSandbox({ config: pod });
    const { containerId } = await cri().createContainer({
      podSandboxId,
      config: ctrConfig(name, images.busybox, ["sleep", "3600"], {}, pod),
      sandboxConfig: pod,
    });
    await cri().startContainer({ containerId });
    const r = await cri().execSync({
      containerId,
      cmd: ["sh", "-c", "hostname; cat /proc/sys/kernel/shm_rmid_forced /proc/sys/fs/mqueue/msg_max /proc/sys/kernel/msgmax"],
      timeout: 10n,
    });
    expect(new TextDecoder().decode(r.stdout)).toBe("pinned-host\n1\n100\n8192\n");
    // the node's own values are untouched
    expect((await sh(["cat", "/proc/sys/kernel/shm_rmid_forced"])).trim()).toBe("0");
    await cri().removePodSandbox({ podSandboxId });
  });

  test("runc made each container with the systemd driver (the monitor's `runc create` carries --systemd-cgroup)", async () => {
    const cs = [await running(), await running({ handler: "runc-pod" })];
    for (const c of cs) {
      const root = c === cs[0] ? "/run/runc" : "/run/runc-pod";
      const state = JSON.parse(await sh(["cat", `${root}/${c.containerId}/state.json`])) as { config: { cgroups: Record<string, unknown> } };
      // runc records the driver it was run with: a create without --systemd-cgroup records false
      expect({ id: c.containerId, systemd: state.config.cgroups.Systemd ?? state.config.cgroups.systemd }).toEqual({ id: c.containerId, systemd: true });
    }
  });
});
