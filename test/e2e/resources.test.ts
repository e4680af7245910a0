// Container resources on the compiled daemon with real runc, read back from the cgroup files (cgroup
// v1 hybrid, cgroupfs driver): cpu shares, quota/period, cpuset, memory and memory+swap, pids,
// oom_score_adj (clamped), hugepages and the unified map (ignored here with a warning), the pod's
// cgroup_parent, UpdateContainerResources on a running container, and bad limits refused.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status as grpc } from "@grpc/grpc-js";
import { existsSync, readFileSync, readdirSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { detectCgroupLayout } from "../../src/sys/cgroup.ts";
import { waitFor } from "../harness.ts";
import { ctrConfig, podConfig, startEnv, type CtrConfig, type Env } from "../support/pods.ts";

const layout = detectCgroupLayout();
const v1 = layout.kind !== "v2";
if (!v1) console.warn("resources e2e: written for cgroup v1 (hybrid); this node runs v2 only: skipped");

/** The pods' cgroup_parent, unique to this run; its directories are removed at the end. */
const PARENT = `/crtest-${randomBytes(4).toString("hex")}`;
const PIDS_LIMIT = 321;

let env: Env;
beforeAll(async () => {
  if (!v1) return;
  env = await startEnv({ config: `[crio.runtime]\npids_limit = ${PIDS_LIMIT}\n` });
  await env.d.cri.pullImage({ image: { image: env.busybox } });
}, 120_000);
afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
  // runc makes the parent in every hierarchy, the (controller-less) cgroup2 one of a hybrid node too.
  for (const c of [...Object.values(layout.v1), ...(layout.unified ? [layout.unified] : [])]) {
    const dir = join(c.mountPoint, PARENT);
    if (!existsSync(dir)) continue;
    for (const sub of readdirSync(dir, { withFileTypes: true })) if (sub.isDirectory()) rmdirSync(join(dir, sub.name));
    rmdirSync(dir);
  }
});

type Resources = NonNullable<NonNullable<CtrConfig["linux"]>["resources"]>;
let seq = 0;

/** A running container with these resources in a pod under PARENT. */
async function running(resources: Resources, cmd = ["sleep", "3600"]) {
  const name = `res${++seq}`;
  const pod = podConfig(name, env.d.dir);
  pod.linux!.cgroupParent = PARENT;
  const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
  const base = ctrConfig(name, env.busybox, cmd, {}, pod);
  const config = { ...base, linux: { ...base.linux, resources } } as CtrConfig;
  const { containerId } = await env.d.cri.createContainer({ podSandboxId, config, sandboxConfig: pod });
  await env.d.cri.startContainer({ containerId });
  return { podSandboxId, containerId };
}

/** A value of the container's cgroup file in a v1 controller. */
function cg(controller: string, id: string, file: string): string {
  const m = layout.v1[controller];
  if (!m) throw new Error(`no ${controller} controller`);
  return readFileSync(join(m.mountPoint, PARENT, `crio-${id}`, file), "utf8").trim();
}

const MiB = 1024n * 1024n;

describe.skipIf(!v1)("resources in the cgroup files", () => {
  test("cpu shares, quota/period, cpuset, memory, memory+swap and pids land under the pod's cgroup_parent", async () => {
    const { containerId } = await running({
      cpuShares: 512n,
      cpuQuota: 50_000n,
      cpuPeriod: 100_000n,
      cpusetCpus: "0",
      cpusetMems: "0",
      memoryLimitInBytes: 64n * MiB,
      memorySwapLimitInBytes: 128n * MiB,
    } as Resources);
    expect(cg("cpu", containerId, "cpu.shares")).toBe("512");
    expect(cg("cpu", containerId, "cpu.cfs_quota_us")).toBe("50000");
    expect(cg("cpu", containerId, "cpu.cfs_period_us")).toBe("100000");
    expect(cg("cpuset", containerId, "cpuset.cpus")).toBe("0");
    expect(cg("cpuset", containerId, "cpuset.mems")).toBe("0");
    expect(cg("memory", containerId, "memory.limit_in_bytes")).toBe(String(64n * MiB));
    if (existsSync(join(layout.v1.memory!.mountPoint, "memory.memsw.limit_in_bytes")))
      expect(cg("memory", containerId, "memory.memsw.limit_in_bytes")).toBe(String(128n * MiB));
    expect(cg("pids", containerId, "pids.max")).toBe(String(PIDS_LIMIT));
    // The container's own processes are in it.
    const st = await env.d.cri.containerStatus({ containerId, verbose: true });
    const pid = JSON.parse(st.info.info!).pid as number;
    expect(cg("memory", containerId, "cgroup.procs").split("\n")).toContain(String(pid));
    expect(readFileSync(`/proc/${pid}/cgroup`, "utf8")).toContain(`:memory:${PARENT}/crio-${containerId}`);
  });

  test("memory without swap: memory+swap equals the limit (no swap)", async () => {
    const { containerId } = await running({ memoryLimitInBytes: 32n * MiB } as Resources);
    expect(cg("memory", containerId, "memory.limit_in_bytes")).toBe(String(32n * MiB));
    if (existsSync(join(layout.v1.memory!.mountPoint, "memory.memsw.limit_in_bytes")))
      expect(cg("memory", containerId, "memory.memsw.limit_in_bytes")).toBe(String(32n * MiB));
  });

  test("UpdateContainerResources changes a running container's cgroup", async () => {
    const { containerId } = await running({ cpuShares: 256n, memoryLimitInBytes: 64n * MiB } as Resources);
    await env.d.cri.updateContainerResources({
      containerId,
      linux: { cpuShares: 768n, cpuQuota: 20_000n, cpuPeriod: 100_000n, memoryLimitInBytes: 96n * MiB },
    });
    expect(cg("cpu", containerId, "cpu.shares")).toBe("768");
    expect(cg("cpu", containerId, "cpu.cfs_quota_us")).toBe("20000");
    expect(cg("memory", containerId, "memory.limit_in_bytes")).toBe(String(96n * MiB));
    // Updating an exited container is refused.
    const done = await running({} as Resources, ["true"]);
    await waitFor(async () => (await env.d.cri.containerStatus({ containerId: done.containerId })).status?.state === 2, 10_000, "exit");
    const err = await env.d.cri.updateContainerResources({ containerId: done.containerId, linux: { cpuShares: 100n } }).catch((e) => e);
    expect(err.code).toBe(grpc.FAILED_PRECONDITION);
  });

  test("a memory limit below 12 MiB (CRI-O's minimum) and swap below the limit are INVALID_ARGUMENT", async () => {
    let err = await running({ memoryLimitInBytes: 4n * MiB } as Resources).catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    expect(err.details).toContain(`set memory limit ${4n * MiB} too low; should be at least ${12n * MiB} bytes`);
    err = await running({ memoryLimitInBytes: 64n * MiB, memorySwapLimitInBytes: 32n * MiB } as Resources).catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    const { containerId } = await running({ memoryLimitInBytes: 64n * MiB } as Resources);
    err = await env.d.cri.updateContainerResources({ containerId, linux: { memoryLimitInBytes: 1n * MiB } }).catch((e) => e);
    expect(err.code).toBe(grpc.INVALID_ARGUMENT);
    expect(cg("memory", containerId, "memory.limit_in_bytes")).toBe(String(64n * MiB));
  });

  test("oom_score_adj: a positive value is applied; a negative one is raised to the daemon's own, with a warning", async () => {
    const pos = await running({ oomScoreAdj: 500n } as Resources);
    const pidOf = async (id: string) => JSON.parse((await env.d.cri.containerStatus({ containerId: id, verbose: true })).info.info!).pid as number;
    expect(readFileSync(`/proc/${await pidOf(pos.containerId)}/oom_score_adj`, "utf8").trim()).toBe("500");
    const neg = await running({ oomScoreAdj: -500n } as Resources);
    const own = readFileSync(`/proc/${env.d.proc.pid}/oom_score_adj`, "utf8").trim();
    expect(readFileSync(`/proc/${await pidOf(neg.containerId)}/oom_score_adj`, "utf8").trim()).toBe(own);
    await env.d.waitForLog(/oom_score_adj -500 is not allowed for this runtime; using 0/);
  });

  test("hugepage limits and the unified map are ignored on this node, with warnings", async () => {
    const { containerId } = await running({ hugepageLimits: [{ pageSize: "2MB", limit: 4n * MiB }], unified: { "memory.high": "50000000" } } as Resources);
    expect((await env.d.cri.containerStatus({ containerId })).status?.state).toBe(1);
    await env.d.waitForLog(/hugepage limits ignored: the hugetlb cgroup controller is not available/);
    await env.d.waitForLog(/unified cgroup resources ignored: the node does not run cgroup v2/);
  });

  test("ContainerStatus reports the resources asked for, and the update", async () => {
    const { containerId } = await running({ cpuShares: 300n, memoryLimitInBytes: 40n * MiB } as Resources);
    let st = (await env.d.cri.containerStatus({ containerId })).status!;
    expect(st.resources?.linux).toMatchObject({ cpuShares: 300n, memoryLimitInBytes: 40n * MiB });
    await env.d.cri.updateContainerResources({ containerId, linux: { cpuShares: 301n, memoryLimitInBytes: 41n * MiB } });
    st = (await env.d.cri.containerStatus({ containerId })).status!;
    expect(st.resources?.linux).toMatchObject({ cpuShares: 301n, memoryLimitInBytes: 41n * MiB });
  });
});
