// The serial operations of critest -benchmark that trailed containerd (issue #20), measured the
// way critest v1.26 issues them, ours beside CRI-O 1.26.4 and containerd 1.6 in one invocation:
//   - image lifecycle: PullImage → ImageStatus (verbose off) → RemoveImage of one small image,
//     each timed (critest's "basic operations on Image");
//   - ListImages with no filter (critest's "listing Image");
//   - CreatePod: RunPodSandbox of a pod on the bridge network whose PID namespace is the CRI
//     default (POD, as critest's pods: every runtime starts an infra container), then
//     StopPodSandbox and RemovePodSandbox (timed too);
//   - CreateContainer + StartContainer of a busybox `sleep` in a running pod.
// The three runtimes are up at once and take turns sample by sample, so the machine's load falls
// on all alike. The client is grpc-js with `:authority` set to the socket path, as critest's
// grpc-go sends it (ours takes any authority: cri/h2-connection.ts). Usage (root, after `bun run build`):
//   bun bench/serial-ops.ts [--n 30] [--no-write]      BENCH_RUNTIMES=ours,crio,containerd
import { mkdirSync } from "node:fs";
import { parseArgs } from "node:util";
import { criClient, type CriClient } from "../test/support/cri-client.ts";
import { busyboxImage, hostileImage, imageRef, pauseImage, pushImage } from "../test/support/images.ts";
import { ctrConfig, podConfig } from "../test/support/pods.ts";
import { startRegistry } from "../test/support/registry.ts";
import {
  fmt,
  loadavg,
  machine,
  median,
  quantile,
  RUNTIME_LABEL,
  startRuntime,
  wantedRuntimes,
  writeSection,
  type BenchRuntime,
  type RuntimeName,
} from "./lib.ts";

const { values: args } = parseArgs({ options: { n: { type: "string", default: "30" }, "no-write": { type: "boolean", default: false } } });
const N = Number(args.n);
const OPS = [
  "PullImage",
  "StatusImage",
  "RemoveImage",
  "ListImages",
  "CreatePod",
  "StopPod",
  "RemovePod",
  "CreateContainer",
  "StartContainer",
  "CreateContainer + StartContainer",
] as const;
type Op = (typeof OPS)[number];

const { names, skipped } = wantedRuntimes();
const load0 = loadavg();
const reg = await startRegistry();
const up: Array<{ rt: BenchRuntime; cri: CriClient; t: Record<Op, number[]>; lifecycleImage: string }> = [];
try {
  await pushImage(reg, await busyboxImage());
  await pushImage(reg, await pauseImage());
  // the image lifecycle's image: the busybox layer and a small one of its own (an image of its own
  // id, so that removing it leaves busybox in place, and a layer that goes with it)
  const own = [{ name: "etc/serial-ops", data: "lifecycle\n", mode: 0o644, uid: 0, gid: 0 }];
  await pushImage(reg, await hostileImage(own, { name: "serial-ops", tag: "1.35.0-glibc", base: true }), { name: "library/busybox", tag: "1.35.0-glibc" });
  const lifecycleImage = imageRef(reg, "library/busybox", "1.35.0-glibc");
  for (const n of names) {
    const rt = await startRuntime(n, reg);
    up.push({
      rt,
      cri: criClient(rt.socket, { authority: rt.socket }),
      t: Object.fromEntries(OPS.map((o) => [o, []])) as unknown as Record<Op, number[]>,
      lifecycleImage,
    });
  }
  const time = async <T>(xs: number[], f: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    const r = await f();
    xs.push(performance.now() - t);
    return r;
  };
  // warm-up: one of each, untimed
  for (let i = -1; i < N; i++) {
    const order = i % 2 === 0 ? up : [...up].reverse();
    for (const u of order) {
      const t = i < 0 ? (Object.fromEntries(OPS.map((o) => [o, []])) as unknown as Record<Op, number[]>) : u.t;
      const spec = { image: u.lifecycleImage };
      await time(t.PullImage, () => u.cri.pullImage({ image: spec }));
      await time(t.StatusImage, () => u.cri.imageStatus({ image: spec, verbose: false }));
      await time(t.RemoveImage, () => u.cri.removeImage({ image: spec }));
      await time(t.ListImages, () => u.cri.listImages({}));
      // CRI-O 1.26 cannot run an infra container on this machine (it sets oom_score_adj -998, which is refused here)
      const p = podConfig(`serial-${i + 1}`, u.rt.dir, { hostNetwork: false, sharedPid: u.rt.name !== "crio" });
      mkdirSync(p.logDirectory!, { recursive: true });
      const { podSandboxId } = await time(t.CreatePod, () => u.cri.runPodSandbox({ config: p }));
      const t0 = performance.now();
      const { containerId } = await time(t.CreateContainer, () =>
        u.cri.createContainer({ podSandboxId, config: ctrConfig("c", u.rt.busybox, ["sleep", "3600"], {}, p), sandboxConfig: p }),
      );
      await time(t.StartContainer, () => u.cri.startContainer({ containerId }));
      t["CreateContainer + StartContainer"].push(performance.now() - t0);
      await u.cri.stopContainer({ containerId, timeout: 0n });
      await u.cri.removeContainer({ containerId });
      await time(t.StopPod, () => u.cri.stopPodSandbox({ podSandboxId }));
      await time(t.RemovePod, () => u.cri.removePodSandbox({ podSandboxId }));
    }
  }
} finally {
  for (const u of up) {
    u.cri.close();
    await u.rt.stop().catch((e) => console.error(`stopping ${u.rt.name}: ${e}`));
  }
  await reg.stop();
}
const load1 = loadavg();

const labels = Object.fromEntries(up.map((u) => [u.rt.name, u.rt.label])) as Record<RuntimeName, string>;
const cols = up.map((u) => u.rt.name);
const peers = cols.filter((n) => n !== "ours");
const med = (n: RuntimeName, op: Op) => median(up.find((u) => u.rt.name === n)!.t[op]);
const p90 = (n: RuntimeName, op: Op) => quantile(up.find((u) => u.rt.name === n)!.t[op], 0.9);
const lines: string[] = [];
lines.push(`## Serial operations as critest -benchmark issues them — \`bun bench/serial-ops.ts\``, "");
lines.push(
  `${machine()}; N = ${N} of each per runtime (after one untimed round), the runtimes taking turns sample by sample; load average ${load0} at the start, ${load1} at the end (shared machine: medians).`,
);
if (skipped.length) lines.push(`Skipped: ${skipped.join("; ")}.`);
lines.push("");
lines.push(
  `| operation (ms) | ${cols.map((n) => `${labels[n] ?? RUNTIME_LABEL[n]} median / p90`).join(" | ")} | ${peers.map((p) => `ours / ${RUNTIME_LABEL[p]}`).join(" | ")} |`,
);
lines.push(`|---|${cols.map(() => "--:").join("|")}|${peers.map(() => "--:").join("|")}|`);
for (const op of OPS) {
  const ratio = (p: RuntimeName) => (cols.includes("ours") ? fmt(med("ours", op) / med(p, op), 2) : "—");
  lines.push(`| ${op} | ${cols.map((n) => `${fmt(med(n, op), 2)} / ${fmt(p90(n, op), 2)}`).join(" | ")} | ${peers.map(ratio).join(" | ")} |`);
}
lines.push("");
lines.push(
  "Pods: bridge network (each runtime its own bridge, the same conflist shape), PID namespace POD as critest's (ours starts an infra container for it despite drop_infra_ctr = true; containerd always runs one), " +
    "except CRI-O's: CRI-O 1.26 gives its infra container oom_score_adj -998, which this machine refuses, so its pods keep the PID namespace per container and run no infra container (its CreatePod/StopPod are not comparable). " +
    "Images from a loopback registry (Debian's docker-registry); the lifecycle image is the busybox layer plus a small one of its own (its own id: removing it leaves busybox, and its own layer goes with it). Ratios: ours / the peer's median, below 1 is better.",
);
const md = lines.join("\n");
console.log(md);
if (!args["no-write"]) writeSection("serial-ops", md);
