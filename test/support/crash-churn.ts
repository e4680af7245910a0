// Crash consistency by injection (issue #17), shared by test/e2e/robust-crash.test.ts (CI, ≥ 10
// kills) and bench/crash.ts (the long run): concurrent clients churn pods, containers, execs and
// image pulls/removals while the daemon is killed with SIGKILL at random instants; after each
// restart the invariants are checked: what the clients saw created and not removed is listed,
// with a truthful state; exit codes kept; nothing removed comes back; no orphan mount, pin,
// process, cgroup, IPAM lease, iptables rule, monitor dir or temp file; every image complete.
import { existsSync, readFileSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { ContainerState, PodSandboxState } from "../../src/gen/runtime/v1/api_pb.ts";
import { startDaemon, type TestDaemon } from "../harness.ts";
import { imageRef, multilayerImage, pushImage } from "./images.ts";
import { ctrConfig, podConfig, startEnv, type Env } from "./pods.ts";
import { cleanupNet, rulesMentioning, testNet } from "./network.ts";

export interface ChurnOptions {
  kills: number;
  clients?: number;
  /** Time the daemon runs between kills: uniform in [minUpMs, maxUpMs]. */
  minUpMs?: number;
  maxUpMs?: number;
  /** Also SIGKILL a random monitor or a runc process now and then. */
  killHelpers?: boolean;
  /** Every `powerCutEvery` kills, also kill every monitor and container and empty the runroot (a reboot). */
  powerCutEvery?: number;
  log?: (line: string) => void;
}

export interface ChurnResult {
  kills: number;
  powerCuts: number;
  helperKills: number;
  ops: Record<string, number>;
  /** Half-made work the restarted daemons undid (log lines "removed leftovers …"). */
  leftoversUndone: number;
  /** Invariant violations, each with the kill it followed. */
  violations: string[];
  recoveryMs: number[];
}

/** Runs the churn; never throws for a violation (they are returned), only for a broken set-up. */
export async function crashChurn(o: ChurnOptions): Promise<ChurnResult> {
  const say = o.log ?? (() => {});
  const net = testNet({ dualStack: false });
  const logLevel = process.env.CRASH_LOGLEVEL ?? "info";
  const env = await startEnv({ cniConf: net.conflist, logLevel });
  const extra = await pushImage(env.reg, await multilayerImage(), { name: "churn-extra" });
  const extraRef = imageRef(env.reg, "churn-extra", extra.tag);
  let d: TestDaemon = env.d;
  const res: ChurnResult = { kills: 0, powerCuts: 0, helperKills: 0, ops: {}, leftoversUndone: 0, violations: [], recoveryMs: [] };
  const model = new Model();
  const m = model;
  let up = true;
  const upWaiters: Array<() => void> = [];
  const waitUp = () => (up ? Promise.resolve() : new Promise<void>((r) => upWaiters.push(r)));
  let stopping = false;
  const count = (k: string) => (res.ops[k] = (res.ops[k] ?? 0) + 1);
  try {
    await d.cri.pullImage({ image: { image: env.busybox } });
    const clients = Array.from({ length: o.clients ?? 4 }, (_, i) =>
      client(
        i,
        () => d,
        env,
        extraRef,
        model,
        () => stopping,
        waitUp,
        count,
      ).catch((e) => res.violations.push(`client ${i} crashed: ${String(e)}`)),
    );
    for (let k = 1; k <= o.kills; k++) {
      await Bun.sleep(rand(o.minUpMs ?? 300, o.maxUpMs ?? 2500));
      if (o.killHelpers && Math.random() < 0.5) {
        const hit = killHelper(d);
        if (hit) {
          res.helperKills++;
          // a container whose monitor or runc died may end (SIGPIPE on its output, runc's kill): its state is whatever is true
          const c = m.ctrs.get(hit);
          if (c && c.stopped === "no") c.stopped = "maybe";
          if (c && c.started === "no") c.started = "maybe";
          say(`killed a helper of ${hit}`);
        }
      }
      up = false;
      d.proc.kill("SIGKILL");
      await d.proc.exited;
      if (process.env.CRASH_LOGDIR) await Bun.write(join(process.env.CRASH_LOGDIR, `daemon-${k}.log`), d.logs());
      d.cri.close();
      res.kills++;
      let powerCut = false;
      if (o.powerCutEvery && k % o.powerCutEvery === 0) {
        powerCut = true;
        res.powerCuts++;
        powerCutNow(d, net.ipamDir, net.name);
        model.rebooted();
      }
      model.settle(); // every op in flight at the kill is now uncertain
      await Bun.sleep(rand(0, 300)); // monitors may write exits while the daemon is down
      const t0 = performance.now();
      d = await startDaemon({ dir: env.d.dir, logLevel });
      res.recoveryMs.push(Math.round(performance.now() - t0));
      res.leftoversUndone += (d.logs().match(/removed leftovers of container/g) ?? []).length;
      for (const v of await checkInvariants(d, model, net.ipamDir, powerCut)) res.violations.push(`after kill ${k}${powerCut ? " (power cut)" : ""}: ${v}`);
      say(`kill ${k}: recovered in ${res.recoveryMs.at(-1)} ms, ${model.summary()}, violations so far ${res.violations.length}`);
      up = true;
      for (const w of upWaiters.splice(0)) w();
    }
    stopping = true;
    await Promise.all(clients);
    // the end: remove everything, stop cleanly; nothing may remain
    const { items } = await d.cri.listPodSandbox({});
    for (const p of items) await d.cri.removePodSandbox({ podSandboxId: p.id }).catch((e) => res.violations.push(`final remove of pod ${p.id}: ${String(e)}`));
    for (const p of model.pods.values()) p.exists = "no";
    for (const c of model.ctrs.values()) c.exists = "no";
    for (const v of await checkInvariants(d, model, net.ipamDir, false)) res.violations.push(`at the end: ${v}`);
    d.cri.close();
    await d.stop("SIGTERM");
    if (process.env.CRASH_LOGDIR) await Bun.write(join(process.env.CRASH_LOGDIR, "daemon-final.log"), d.logs());
    for (const v of leftoversAfterStop(d, net.ipamDir)) res.violations.push(`after the final stop: ${v}`);
    for (const r of await rulesMentioning([net.name, net.bridge])) if (/id: /.test(r)) res.violations.push(`after the final stop: iptables rule left: ${r}`);
  } finally {
    stopping = true;
    up = true;
    for (const w of upWaiters.splice(0)) w();
    await finalCleanup(env, d);
    await cleanupNet(net);
  }
  return res;
}

// --- the clients' model of what must be true ---

type Known = "yes" | "no" | "maybe";
interface PodInfo {
  exists: Known;
  client: number;
  /** False after a power cut: the pod is NOTREADY; its client removes it (as the kubelet would). */
  ready?: boolean;
}
interface CtrInfo {
  pod: string;
  exists: Known;
  /** "exit7" exits with 7 by itself; "sleep" runs until stopped. */
  kind: "exit7" | "sleep";
  started: Known;
  stopped: Known;
}

class Model {
  pods = new Map<string, PodInfo>();
  ctrs = new Map<string, CtrInfo>();
  /** Ops in flight: their outcome becomes "maybe" at a kill. */
  inflight = new Set<() => void>();

  settle(): void {
    for (const f of this.inflight) f();
    this.inflight.clear();
  }

  /** After a reboot, every container has stopped; exit codes are unknown. */
  rebooted(): void {
    for (const c of this.ctrs.values()) if (c.exists !== "no") c.stopped = "yes";
    for (const p of this.pods.values()) p.ready = false;
  }

  summary(): string {
    const live = [...this.pods.values()].filter((p) => p.exists === "yes").length;
    const ctrs = [...this.ctrs.values()].filter((c) => c.exists === "yes").length;
    return `${live} pods, ${ctrs} containers known`;
  }
}

async function client(
  i: number,
  daemon: () => TestDaemon,
  env: Env,
  extraRef: string,
  m: Model,
  stopping: () => boolean,
  waitUp: () => Promise<void>,
  count: (k: string) => void,
): Promise<void> {
  /** Runs an op; while in flight its effect is `maybe`; returns undefined when the daemon died under it. */
  const op = async <T>(name: string, fn: (d: TestDaemon) => Promise<T>, onMaybe: () => void): Promise<T | undefined> => {
    await waitUp();
    const d = daemon();
    m.inflight.add(onMaybe);
    try {
      const r = await fn(d);
      count(name);
      return r;
    } catch (e) {
      const code = (e as { code?: number }).code;
      // 14 UNAVAILABLE, 1 CANCELLED, 4 DEADLINE: the daemon died (or was restarting) under the call.
      if (d !== daemon() || d.proc.exitCode !== null || d.proc.signalCode !== null || code === 14 || code === 1) {
        onMaybe(); // the call may have taken effect before the daemon died
        return undefined;
      }
      count(`${name} failed`);
      onMaybe(); // a failure (e.g. NOT_FOUND after a power cut) leaves the outcome unknown to the client
      return undefined;
    } finally {
      m.inflight.delete(onMaybe);
    }
  };
  const mine = () => [...m.pods].filter(([, p]) => p.client === i && p.exists === "yes" && p.ready !== false).map(([id]) => id);
  while (!stopping()) {
    const stale = [...m.pods].find(([, p]) => p.client === i && p.exists !== "no" && p.ready === false);
    if (stale) {
      const [podId, p] = stale;
      const maybe = () => {
        p.exists = "maybe";
        for (const x of m.ctrs.values()) if (x.pod === podId && x.exists !== "no") x.exists = "maybe";
      };
      const ok = await op("RemovePodSandbox", (d) => d.cri.removePodSandbox({ podSandboxId: podId }, { timeoutMs: 60_000 }), maybe);
      if (ok !== undefined) {
        p.exists = "no";
        for (const x of m.ctrs.values()) if (x.pod === podId) x.exists = "no";
      } else if (p.exists === "maybe") p.ready = true; // unknown: leave it to the final clean-up
      continue;
    }
    const pods = mine();
    const r = Math.random();
    if (pods.length < 2 || r < 0.08) {
      const cfg = podConfig(`churn-${i}`, env.d.dir, { hostNetwork: Math.random() < 0.5 });
      const res = await op(
        "RunPodSandbox",
        (d) => d.cri.runPodSandbox({ config: cfg }, { timeoutMs: 60_000 }),
        () => {},
      );
      if (res) m.pods.set(res.podSandboxId, { exists: "yes", client: i });
      continue;
    }
    const podId = pods[Math.floor(Math.random() * pods.length)]!;
    const ctrs = [...m.ctrs].filter(([, c]) => c.pod === podId && c.exists === "yes");
    if (r < 0.35 || ctrs.length === 0) {
      const kind = Math.random() < 0.3 ? "exit7" : "sleep";
      const cmd = kind === "exit7" ? ["sh", "-c", "echo bye; sleep 0.2; exit 7"] : ["sh", "-c", "while :; do echo tick; sleep 0.5; done"];
      const name = `c${Math.floor(Math.random() * 1e9)}`;
      const res = await op(
        "CreateContainer",
        (d) => d.cri.createContainer({ podSandboxId: podId, config: ctrConfig(name, env.busybox, cmd) }, { timeoutMs: 60_000 }),
        () => {},
      );
      if (!res) continue;
      const c: CtrInfo = { pod: podId, exists: "yes", kind, started: "no", stopped: "no" };
      m.ctrs.set(res.containerId, c);
      const ok = await op(
        "StartContainer",
        (d) => d.cri.startContainer({ containerId: res.containerId }, { timeoutMs: 60_000 }),
        () => (c.started = "maybe"),
      );
      if (ok) c.started = "yes";
      continue;
    }
    const [cid, c] = ctrs[Math.floor(Math.random() * ctrs.length)]!;
    if (r < 0.55) {
      if (c.started === "yes" && c.stopped === "no" && c.kind === "sleep") {
        await op(
          "ExecSync",
          async (d) => {
            const x = await d.cri.execSync({ containerId: cid, cmd: ["echo", "probe"], timeout: 10n }, { timeoutMs: 30_000 });
            if (x.exitCode !== 0 && x.exitCode !== 137) throw new Error(`exec exit ${x.exitCode}`);
          },
          () => {},
        );
      }
    } else if (r < 0.7) {
      const ok = await op(
        "StopContainer",
        (d) => d.cri.stopContainer({ containerId: cid, timeout: 0n }, { timeoutMs: 60_000 }),
        () => (c.stopped = "maybe"),
      );
      if (ok !== undefined) c.stopped = "yes";
    } else if (r < 0.85) {
      // RemoveContainer stops a running container first: cut short, it may leave it stopped and listed
      const ok = await op(
        "RemoveContainer",
        (d) => d.cri.removeContainer({ containerId: cid }, { timeoutMs: 60_000 }),
        () => {
          c.exists = "maybe";
          if (c.stopped === "no") c.stopped = "maybe";
        },
      );
      if (ok !== undefined) c.exists = "no";
    } else if (r < 0.93) {
      const p = m.pods.get(podId)!;
      const gone = () => {
        p.exists = "maybe";
        for (const x of m.ctrs.values()) {
          if (x.pod !== podId || x.exists === "no") continue;
          x.exists = "maybe";
          if (x.stopped === "no") x.stopped = "maybe"; // StopPodSandbox may have stopped it
        }
      };
      const ok = await op(
        "RemovePodSandbox",
        async (d) => {
          await d.cri.stopPodSandbox({ podSandboxId: podId }, { timeoutMs: 60_000 });
          await d.cri.removePodSandbox({ podSandboxId: podId }, { timeoutMs: 60_000 });
          return true;
        },
        gone,
      );
      if (ok) {
        p.exists = "no";
        for (const x of m.ctrs.values()) if (x.pod === podId) x.exists = "no";
      }
    } else if (r < 0.97) {
      await op(
        "PullImage",
        (d) => d.cri.pullImage({ image: { image: extraRef } }, { timeoutMs: 60_000 }),
        () => {},
      );
    } else {
      await op(
        "RemoveImage",
        (d) => d.cri.removeImage({ image: { image: extraRef } }, { timeoutMs: 60_000 }),
        () => {},
      );
    }
  }
}

// --- invariants ---

/**
 * The invariants that need no model of what clients saw (test/e2e/robust-inject.test.ts): every
 * listed container's and pod's state agrees with the runtime, no trace (mount, pin, process,
 * cgroup, lease, rule, monitor dir, temp file) of an id that is not listed, every image complete.
 */
export async function truthAndLeaks(d: TestDaemon, ipamDir: string): Promise<string[]> {
  return await checkInvariants(d, new Model(), ipamDir, false);
}

/** A reboot, as the crash churn does it: every process of ours killed, runroot, runc root, leases, pod rules and cgroups gone. */
export function powerCut(d: TestDaemon, ipamDir: string, netName: string): void {
  powerCutNow(d, ipamDir, netName);
}

/** Processes of this daemon: its monitors and every process whose root is below its storage. */
export function processesOf(d: TestDaemon): Array<{ id: string; what: string }> {
  return ourProcesses(d);
}

const ID = /[0-9a-f]{64}/;

async function checkInvariants(d: TestDaemon, m: Model, ipamDir: string, powerCut: boolean): Promise<string[]> {
  const v: string[] = [];
  const pods = new Map((await d.cri.listPodSandbox({})).items.map((p) => [p.id, p]));
  const ctrs = new Map((await d.cri.listContainers({})).containers.map((c) => [c.id, c]));
  for (const [id, p] of m.pods) {
    if (p.exists === "yes" && !pods.has(id)) v.push(`pod ${id} lost`);
    if (p.exists === "no" && pods.has(id)) v.push(`pod ${id} came back after its removal`);
  }
  for (const [id, c] of m.ctrs) {
    const got = ctrs.get(id);
    if (c.exists === "yes" && !got) v.push(`container ${id} lost`);
    if (c.exists === "no" && got) v.push(`container ${id} came back after its removal`);
    if (!got) continue;
    const st = (await d.cri.containerStatus({ containerId: id })).status!;
    if (c.stopped === "yes" && st.state !== ContainerState.CONTAINER_EXITED) v.push(`container ${id} was stopped but is ${ContainerState[st.state]}`);
    if (c.kind === "sleep" && c.started === "yes" && c.stopped === "no" && !powerCut && st.state !== ContainerState.CONTAINER_RUNNING)
      v.push(`container ${id} should run but is ${ContainerState[st.state]} (exit ${st.exitCode}: ${st.message})`);
    if (c.kind === "exit7" && c.stopped === "no" && st.state === ContainerState.CONTAINER_EXITED && st.exitCode !== 7 && !powerCut)
      v.push(`container ${id} exited 7 but reports ${st.exitCode} (${st.reason}: ${st.message})`);
    if (c.started === "no" && st.state === ContainerState.CONTAINER_RUNNING) v.push(`container ${id} runs although never started`);
  }
  // truthful states: the runtime agrees with what is listed
  const runc = runcStates(d);
  for (const [id, c] of ctrs) {
    const r = runc.get(id);
    if (c.state === ContainerState.CONTAINER_RUNNING && r !== "running") v.push(`container ${id} listed RUNNING, runc says ${r ?? "absent"}`);
    if (c.state === ContainerState.CONTAINER_CREATED && r !== "created") v.push(`container ${id} listed CREATED, runc says ${r ?? "absent"}`);
    if (c.state === ContainerState.CONTAINER_EXITED && (r === "running" || r === "created" || r === "paused"))
      v.push(`container ${id} listed EXITED, runc says ${r}`);
    if (!pods.has(c.podSandboxId)) v.push(`container ${id} listed in pod ${c.podSandboxId}, which is not listed`);
  }
  for (const [id, p] of pods)
    if (p.state === PodSandboxState.SANDBOX_READY && runc.get(id) && runc.get(id) !== "running")
      v.push(`pod ${id} READY, its infra container is ${runc.get(id)}`);
  // no orphans: every trace belongs to a listed container or pod
  const owned = new Set([...pods.keys(), ...ctrs.keys()]);
  for (const id of [...owned, ...m.pods.keys(), ...m.ctrs.keys()]) runIds.add(id);
  // (pods' leftovers — CNI DEL, then unpin — are cleaned in the background once the daemon serves: waited for, ≤ 20 s)
  const orphans = async () => {
    const o: string[] = [];
    for (const t of traces(d, ipamDir)) if (!owned.has(t.id)) o.push(`orphan ${t.what} of ${t.id}`);
    for (const r of await rulesMentioning(["id: "])) {
      const id = ID.exec(r)?.[0];
      if (id && traceOfRun(d, id) && !owned.has(id)) o.push(`orphan iptables rule of ${id}`);
    }
    return o;
  };
  let left = await orphans();
  for (const end = Date.now() + 20_000; left.length && Date.now() < end; left = await orphans()) await Bun.sleep(200);
  v.push(...new Set(left));
  // every listed image is complete: each of its layers unpacked
  const store = JSON.parse(readFileSync(join(d.root, "images", "images.json"), "utf8")) as { images: Record<string, { layers: string[] }> };
  for (const img of (await d.cri.listImages({})).images) {
    const e = store.images[img.id];
    if (!e) v.push(`image ${img.id} listed but not in the index`);
    else for (const l of e.layers) if (!existsSync(join(d.root, "images", "layers", l.replace(/^sha256:/, "")))) v.push(`image ${img.id} lacks layer ${l}`);
  }
  return v;
}

/** Every trace the daemon makes per container or pod, with the id it belongs to. */
function traces(d: TestDaemon, ipamDir: string): Array<{ id: string; what: string }> {
  const out: Array<{ id: string; what: string }> = [];
  const remember = () => {
    for (const t of out) if (ID.test(t.id)) runIds.add(t.id);
  };
  const ls = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
  for (const id of ls(join(d.root, "storage"))) out.push({ id, what: "storage dir" });
  for (const id of ls(join(d.runroot, "containers"))) out.push({ id, what: "bundle" });
  for (const id of ls(join(d.runroot, "monitor"))) out.push({ id, what: "monitor dir" });
  for (const id of ls(join(d.runroot, "exits"))) out.push({ id, what: "exit file" });
  for (const id of ls(d.runcRoot)) out.push({ id, what: "runc container" });
  for (const k of ["net", "ipc", "uts"]) for (const id of ls(join(d.runroot, "ns", k))) out.push({ id, what: `${k} pin` });
  for (const id of ls(join(d.runroot, "sandboxes"))) out.push({ id, what: "pod run dir" });
  for (const mp of mountsBelow([d.root, d.runroot])) {
    const id = ID.exec(mp)?.[0];
    if (id) out.push({ id, what: `mount ${mp}` });
  }
  for (const n of ls(ipamDir).flatMap((net) => ls(join(ipamDir, net)).map((f) => join(ipamDir, net, f)))) {
    if (!/^[0-9.:a-f]+$/.test(n.split("/").at(-1)!)) continue;
    const id = ID.exec(readFileSync(n, "utf8"))?.[0];
    if (id) out.push({ id, what: `IPAM lease ${n.split("/").at(-1)}` });
  }
  for (const p of ourProcesses(d)) out.push(p);
  remember();
  for (const c of cgroupsOf(d)) out.push(c);
  for (const f of tempFiles(d)) out.push({ id: "-", what: `temp file ${f}` });
  return out;
}

/** Monitors (cmdline names our runroot) and every process whose root is below our storage (runc init, container processes). */
function ourProcesses(d: TestDaemon): Array<{ id: string; what: string }> {
  const out: Array<{ id: string; what: string }> = [];
  const storage = join(d.root, "storage");
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      // a standby monitor retitled for its container names no runroot: known by its files open there
      if (cmd.includes("conmon") && (cmd.includes(d.runroot) || opensBelow(pid, d.runroot) || opensBelow(pid, d.dir))) {
        const id = ID.exec(cmd)?.[0];
        if (id) out.push({ id, what: `monitor process ${pid}` });
        continue;
      }
      const where = readlinkSync(`/proc/${pid}/root`);
      if (where.startsWith(storage + "/")) out.push({ id: ID.exec(where)?.[0] ?? "-", what: `process ${pid} (${cmd.split("\0").join(" ").trim()})` });
    } catch {}
  }
  return out;
}

function opensBelow(pid: string, dir: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(dir + "/");
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** Cgroup dirs named after ids this run's daemon made (crio-<id>, crio-conmon-<id>). */
function cgroupsOf(d: TestDaemon): Array<{ id: string; what: string }> {
  const out: Array<{ id: string; what: string }> = [];
  const seen = (id: string) => traceOfRun(d, id);
  const walk = (dir: string, depth: number) => {
    if (depth > 4) return;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      try {
        if (!statSync(p).isDirectory()) continue;
      } catch {
        continue;
      }
      const id = /^crio-(?:conmon-)?([0-9a-f]{64})(?:\.scope)?$/.exec(n)?.[1];
      if (id && seen(id)) out.push({ id, what: `cgroup ${p}` });
      else if (!id) walk(p, depth + 1);
    }
  };
  walk("/sys/fs/cgroup", 0);
  return out;
}

/** Ids this run has used: remembered from every listing and trace (a cgroup of another test's daemon is not ours). */
const runIds = new Set<string>();
function traceOfRun(d: TestDaemon, id: string): boolean {
  if (runIds.has(id)) return true;
  if (d.logs().includes(id)) {
    runIds.add(id);
    return true;
  }
  return false;
}

/** Temp files: image store work dirs and atomic-write leftovers (checked only with no pull in flight: after a restart). */
function tempFiles(d: TestDaemon): string[] {
  const out: string[] = [];
  const tmp = join(d.root, "images", "tmp");
  if (existsSync(tmp)) for (const f of readdirSync(tmp)) out.push(join(tmp, f));
  for (const dir of [join(d.root, "sandboxes"), join(d.root, "containers")]) {
    for (const id of existsSync(dir) ? readdirSync(dir) : [])
      for (const f of readdirSync(join(dir, id))) if (!/^(meta|status)\.json$/.test(f)) out.push(join(dir, id, f));
  }
  for (const f of existsSync(join(d.root, "images")) ? readdirSync(join(d.root, "images")) : []) if (/\.tmp|~$/.test(f)) out.push(join(d.root, "images", f));
  return out;
}

function runcStates(d: TestDaemon): Map<string, string> {
  const r = Bun.spawnSync(["runc", "--root", d.runcRoot, "list", "--format", "json"]);
  const list = JSON.parse(r.stdout.toString().trim() || "null") as Array<{ id: string; status: string }> | null;
  return new Map((list ?? []).map((x) => [x.id, x.status]));
}

function mountsBelow(dirs: string[]): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((mp) => dirs.some((dir) => mp.startsWith(dir + "/")));
}

/** After the final stop with every pod removed: nothing at all. */
function leftoversAfterStop(d: TestDaemon, ipamDir: string): string[] {
  const out = traces(d, ipamDir).map((t) => `${t.what} of ${t.id}`);
  for (const mp of mountsBelow([d.root, d.runroot])) if (!ID.test(mp)) out.push(`mount ${mp}`);
  if (
    readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .some((l) => l.split(" ")[4] === d.runroot)
  )
    out.push(`mount ${d.runroot}`);
  return out;
}

// --- faults ---

/** SIGKILLs one random monitor or runc process of this daemon; returns the container id it served, or "". */
function killHelper(d: TestDaemon): string {
  const targets: Array<{ pid: number; id: string }> = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      const ours =
        (cmd.includes("conmon") && (cmd.includes(d.runroot) || opensBelow(pid, d.runroot) || opensBelow(pid, d.dir))) ||
        (cmd.startsWith("runc\0") && cmd.includes(d.runcRoot));
      const id = ID.exec(cmd)?.[0];
      if (ours && id) targets.push({ pid: Number(pid), id });
    } catch {}
  }
  const t = targets[Math.floor(Math.random() * targets.length)];
  if (!t) return "";
  try {
    process.kill(t.pid, "SIGKILL");
    return t.id;
  } catch {
    return "";
  }
}

/** A power cut: every monitor and container killed, pinned namespaces and the runroot gone, as after a reboot. */
function powerCutNow(d: TestDaemon, ipamDir: string, netName: string): void {
  traces(d, ipamDir); // remembers the ids of this run (those of creates in flight too), whose cgroups go below
  // what a reboot takes with it besides processes and the runroot: host-local's leases (its dataDir
  // is on tmpfs here) and the pods' iptables rules
  Bun.spawnSync(["rm", "-rf", ipamDir]);
  for (const [save, cmd] of [
    ["iptables-save", "iptables"],
    ["ip6tables-save", "ip6tables"],
  ] as const) {
    const lines = Bun.spawnSync([save, "-t", "nat"]).stdout.toString().split("\n");
    const chains = new Set<string>();
    for (const l of lines) {
      if (!l.startsWith("-A ") || !l.includes(`name: \\"${netName}\\"`)) continue;
      Bun.spawnSync(["sh", "-c", `${cmd} -t nat ${l.replace(/^-A /, "-D ")}`]);
      const target = / -j (CNI-[0-9a-f]+)/.exec(l)?.[1];
      if (target) chains.add(target);
    }
    for (const c of chains) {
      Bun.spawnSync([cmd, "-t", "nat", "-F", c]);
      Bun.spawnSync([cmd, "-t", "nat", "-X", c]);
    }
  }
  for (const p of ourProcesses(d)) {
    const pid = Number(/process (\d+)/.exec(p.what)?.[1]);
    if (pid)
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
  }
  for (const [id] of runcStates(d)) Bun.spawnSync(["runc", "--root", d.runcRoot, "delete", "--force", id]);
  // cgroupfs is memory only: a reboot empties it (the monitors' cgroups included)
  for (const c of cgroupsOf(d)) {
    const dir = c.what.replace(/^cgroup /, "");
    for (let i = 0; i < 50; i++) {
      const r = Bun.spawnSync(["rmdir", dir]);
      if (r.exitCode === 0 || !existsSync(dir)) break;
      Bun.sleepSync(20);
    }
  }
  for (const mp of mountsBelow([d.root, d.runroot]).sort((a, b) => b.length - a.length)) Bun.spawnSync(["umount", "-l", mp]);
  Bun.spawnSync(["umount", "-l", d.runroot]);
  Bun.spawnSync(["rm", "-rf", d.runroot, d.runcRoot]);
}

async function finalCleanup(env: Env, d: TestDaemon): Promise<void> {
  try {
    if (d.proc.exitCode === null && d.proc.signalCode === null) {
      const { items } = await d.cri.listPodSandbox({}, { timeoutMs: 10_000 });
      for (const p of items) await d.cri.removePodSandbox({ podSandboxId: p.id }, { timeoutMs: 60_000 }).catch(() => {});
      await d[Symbol.asyncDispose]();
    }
  } catch {}
  for (const [id] of runcStates(d)) Bun.spawnSync(["runc", "--root", d.runcRoot, "delete", "--force", id]);
  await env[Symbol.asyncDispose]().catch(() => {});
}

function rand(a: number, b: number): number {
  return a + Math.random() * (b - a);
}
