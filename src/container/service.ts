import { rm } from "node:fs/promises";
import { RuntimeError, messageOf, precondition, wrap } from "../errors.ts";
import type { PodContainers } from "../sandbox/index.ts";
import { IdIndex, type StoredRecord } from "../store/index.ts";
import { KeyedSerial } from "../util/wait.ts";
import { createContainer, type CreateInput } from "./create.ts";
import type { ContainerDeps, ExitInfo } from "./deps.ts";
import { filterContainers, type ContainerFilter } from "./list.ts";
import type { ContainerMeta, ContainerRunState, ContainerView } from "./record.ts";
import { can } from "./state.ts";
import { containerResources } from "./spec/resources.ts";
import { readBundle } from "../oci/index.ts";
import { startInfra } from "./infra.ts";
import { removeContainerLeftovers } from "./leftovers.ts";
import type { SandboxView } from "../sandbox/index.ts";
import type { PodSandboxConfig } from "../gen/runtime/v1/api_pb.ts";
import type { LinuxContainerResources } from "../gen/runtime/v1/api_pb.ts";
import { traced } from "../log/trace.ts";

type Rec = StoredRecord<ContainerMeta, ContainerRunState>;

/** Containers: one method per CRI verb; state lives in records, this is their index. */
export class ContainerService implements PodContainers {
  readonly #d: ContainerDeps;
  readonly #index = new IdIndex<Rec>();
  readonly #serial = new KeyedSerial();
  readonly #exitWaiters = new Map<string, Set<() => void>>();
  #watchdog: ReturnType<typeof setInterval> | undefined;
  /** Running containers already reported as running without their monitor. */
  readonly #unmonitored = new Set<string>();
  /** Observers of state changes (events for GetContainerEvents, metrics). */
  readonly #listeners = new Set<(kind: "created" | "started" | "stopped" | "deleted", c: ContainerView) => void>();

  constructor(d: ContainerDeps) {
    this.#d = d;
  }

  /** Subscribes to container lifecycle changes; returns the unsubscribe function. */
  onChange(fn: (kind: "created" | "started" | "stopped" | "deleted", c: ContainerView) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** CreateContainer. */
  async create(input: CreateInput): Promise<ContainerView> {
    const rec = await createContainer(this.#d, input, (id) => this.#index.find(id)?.status.pid, (r) => this.#index.add(r.meta.id, r));
    this.#emit("created", rec);
    return rec;
  }

  /** StartContainer: only a CREATED container starts. */
  async start(id: string): Promise<void> {
    const rec = this.#index.get("container", id);
    await this.#serial.run(rec.meta.id, async () => {
      if (!can.start(rec.status.state)) throw precondition(`container "${rec.meta.id}" is ${rec.status.state}, not created`);
      const rt = this.#d.runtime(rec.meta.runtimeHandler);
      // Taken before `runtime start`: a process that exits at once must not end before it began.
      const startedAt = Date.now();
      try {
        await traced("runtime.start", () => rt.start(rec.meta.id), { kind: "client", attrs: { "container.id": rec.meta.id, runtime: rt.name } });
      } catch (e) {
        await rec.update((s) => ({ ...s, state: "exited", finishedAt: Date.now(), exitCode: s.exitCode ?? 128, message: messageOf(e) }));
        throw wrap(e, `start container "${rec.meta.id}"`);
      }
      // An exit noticed meanwhile (a process that ended at once) wins over RUNNING.
      await rec.update((s) => (s.state === "created" ? { ...s, state: "running", startedAt } : { ...s, startedAt: s.startedAt ?? startedAt }));
      this.#d.log.withTag("container").info(`Started container ${rec.meta.id}`, { id: rec.meta.id });
    });
    this.#emit("started", rec);
  }

  /**
   * StopContainer: the stop signal, then SIGKILL after `timeoutS`; returns when the process is
   * gone. Idempotent: an unknown or stopped container is not an error (api.proto).
   */
  async stop(id: string, timeoutS: number): Promise<void> {
    const rec = this.#index.find(id);
    if (!rec) return;
    await this.#stop(rec, timeoutS);
  }

  /** RemoveContainer: force-stops a running container, then removes every trace. Idempotent. */
  async remove(id: string): Promise<void> {
    const rec = this.#index.find(id);
    // RemoveContainer is idempotent (api.proto, rpc RemoveContainer).
    if (!rec) return;
    await this.#stop(rec, 0);
    await this.#serial.run(rec.meta.id, async () => {
      const rt = this.#d.runtime(rec.meta.runtimeHandler);
      await rt.delete(rec.meta.id, true).catch((e) => {
        if (!(e instanceof RuntimeError && e.kind === "not-found")) throw wrap(e, `runtime delete "${rec.meta.id}"`);
      });
      await this.#d.rootfs.remove(rec.meta.id);
      await this.#d.monitor.cleanup(rec.meta.id);
      await rm(rec.meta.bundle, { recursive: true, force: true });
      await this.#d.records.remove(rec.meta.id);
      this.#index.delete(rec.meta.id);
      this.#d.names.release(rec.meta.name, rec.meta.id);
      this.#d.log.withTag("container").info(`Removed container ${rec.meta.id}`, { id: rec.meta.id });
    });
    this.#emit("deleted", rec);
  }

  /** The container with this id or unique prefix; NOT_FOUND otherwise. */
  get(id: string): ContainerView {
    return this.#index.get("container", id);
  }

  /** ListContainers. */
  list(filter?: ContainerFilter): ContainerView[] {
    return filterContainers(this.#index.values(), filter);
  }

  /** True when a container (in any state) was created from the image: RemoveImage refuses it. */
  usesImage(imageId: string): boolean {
    // its own image, or one it mounts as a volume (the mount holds the image's layers)
    for (const c of this.#index.values()) if (c.meta.image.id === imageId || c.meta.mounts.some((m) => m.imageId === imageId)) return true;
    return false;
  }

  /** Every container of a pod, infra included. */
  ofPod(sandboxId: string): ContainerView[] {
    return [...this.#index.values()].filter((c) => c.meta.sandboxId === sandboxId);
  }

  /** InfraPort: the pod's pause container. */
  readonly infra = {
    start: (sb: SandboxView, config: PodSandboxConfig, signal?: AbortSignal) => startInfra(this.#d, sb, config, signal, (r) => this.#index.add(r.meta.id, r)),
    stop: async (sb: SandboxView) => {
      const rec = this.#index.find(sb.meta.id);
      if (rec?.meta.infra) await this.#stop(rec, 0);
    },
    remove: async (sb: SandboxView) => {
      const rec = this.#index.find(sb.meta.id);
      if (rec?.meta.infra) await this.remove(rec.meta.id);
    },
  };

  /** PodContainers: stops every container of a pod (no grace: the pod is going). */
  async stopAll(sandboxId: string): Promise<void> {
    await Promise.all(this.ofPod(sandboxId).filter((c) => !c.meta.infra).map((c) => this.#stop(c as Rec, 0)));
  }

  /** PodContainers: removes every container of a pod. */
  async removeAll(sandboxId: string): Promise<void> {
    await Promise.all(this.ofPod(sandboxId).filter((c) => !c.meta.infra).map((c) => this.remove(c.meta.id)));
  }

  /** ExecSync: runs a command in a running container; output capped at 16 MiB each. */
  async execSync(id: string, cmd: string[], timeoutS: number): Promise<{ exitCode: number; stdout: Uint8Array; stderr: Uint8Array }> {
    const rec = this.#index.get("container", id);
    if (!can.exec(rec.status.state)) throw precondition(`container "${rec.meta.id}" is not running`);
    if (cmd.length === 0) throw new RuntimeError("invalid-argument", "ExecSync needs a command");
    const rt = this.#d.runtime(rec.meta.runtimeHandler);
    // The exec'd process runs as the container's own: its user, env, cwd, capabilities, rlimits.
    const spec = await readBundle(rec.meta.bundle).catch((e) => { throw wrap(e, `read bundle of "${rec.meta.id}"`); });
    const { consoleSize: _c, ...base } = (spec.process ?? {}) as { consoleSize?: unknown } & Record<string, unknown>;
    const process = { ...base, args: cmd, terminal: false };
    const r = await this.#d.monitor.execSync({ id: rec.meta.id, runtime: rt, process, timeoutMs: timeoutS > 0 ? timeoutS * 1000 : 0, terminal: false });
    if (r.timedOut) throw new RuntimeError("deadline-exceeded", `command ${JSON.stringify(cmd)} timed out after ${timeoutS}s`);
    return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  }

  /** ReopenContainerLog: the monitor reopens the log file (after the kubelet rotated it). */
  async reopenLog(id: string): Promise<void> {
    const rec = this.#index.get("container", id);
    if (!can.reopenLog(rec.status.state)) throw precondition(`container "${rec.meta.id}" is not running`);
    await this.#d.monitor.reopenLog(rec.meta.id);
  }

  /** UpdateContainerResources: `runtime update` on a created or running container. */
  async updateResources(id: string, resources: LinuxContainerResources | undefined, resourcesJson: unknown): Promise<void> {
    const rec = this.#index.get("container", id);
    if (!can.update(rec.status.state)) throw precondition(`container "${rec.meta.id}" is ${rec.status.state}: only created or running containers can be updated`);
    const st = this.#d.settings();
    const oci = containerResources({ resources, minMemory: st.defaults.containerMinMemory, minOomScoreAdj: this.#d.host.minOomScoreAdj, cgroup: this.#d.host.cgroup, pidsLimit: st.defaults.pidsLimit });
    for (const w of oci.warnings) this.#d.log.withTag("container").warn(w, { id: rec.meta.id });
    await this.#d.runtime(rec.meta.runtimeHandler).update(rec.meta.id, oci.resources);
    await rec.update((s) => ({ ...s, resources: resourcesJson }));
  }

  /** Called for each exit the monitor recorded (from the exits directory watcher). */
  async onExit(id: string, info: ExitInfo): Promise<void> {
    const rec = this.#index.find(id);
    if (!rec || rec.status.state === "exited") {
      this.#wake(id);
      return;
    }
    await rec.update((s) => ({ ...s, state: "exited", finishedAt: info.exitedAt, exitCode: info.exitCode, oomKilled: info.oomKilled }));
    this.#d.log.withTag("container").info(`Container ${id} exited with code ${info.exitCode}${info.oomKilled ? " (OOM killed)" : ""}`, { id });
    this.#wake(id);
    this.#emit("stopped", rec);
  }

  /**
   * Watches for running containers whose monitor died (killed, OOM-killed, crashed): nothing
   * would record their exit. Every `intervalMs` each running container's monitor is checked;
   * when it is gone, an exit file it left wins; else a container the runtime reports stopped
   * (or no longer knows) is EXITED with code 255 and a message saying why; one still running is
   * logged once (its output is no longer logged) and checked again until it ends.
   */
  startWatchdog(intervalMs = WATCHDOG_MS): void {
    this.stopWatchdog();
    this.#watchdog = setInterval(() => void this.checkMonitors().catch((e) => this.#d.log.withTag("container").warn(`monitor check failed: ${messageOf(e)}`)), intervalMs);
    this.#watchdog.unref();
  }

  stopWatchdog(): void {
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }

  /** One pass of the watchdog (startWatchdog). */
  async checkMonitors(): Promise<void> {
    const log = this.#d.log.withTag("container");
    for (const rec of [...this.#index.values()]) {
      if (rec.status.state !== "running" || (await this.#d.monitor.alive(rec.meta.id))) {
        this.#unmonitored.delete(rec.meta.id);
        continue;
      }
      const exit = await this.#d.monitor.readExit(rec.meta.id).catch(() => undefined);
      if (exit) {
        await this.onExit(rec.meta.id, exit);
        continue;
      }
      const st = await this.#d.runtime(rec.meta.runtimeHandler).state(rec.meta.id).catch(() => undefined);
      if (rec.status.state !== "running") continue; // ended meanwhile through the usual path
      if (!st || st.status === "stopped") {
        log.warn(`container ${rec.meta.id} exited after its monitor died: exit code unknown, reporting 255`, { id: rec.meta.id });
        await rec.update((s) => ({ ...s, state: "exited", finishedAt: Date.now(), exitCode: 255, message: "the container's monitor died before the container exited: its exit code is unknown" }));
        this.#unmonitored.delete(rec.meta.id);
        this.#wake(rec.meta.id);
        this.#emit("stopped", rec);
      } else if (!this.#unmonitored.has(rec.meta.id)) {
        this.#unmonitored.add(rec.meta.id);
        log.warn(`container ${rec.meta.id} is running without its monitor (it died): its output is no longer logged and its exit code will be unknown`, { id: rec.meta.id });
      }
    }
  }

  /** Loads records and reconciles them with the runtime and the exit files written while we were down. */
  async recover(): Promise<void> {
    const log = this.#d.log.withTag("container");
    // idmapped mounts staged by a creation the daemon did not live to finish
    try {
      this.#d.idmap?.clearAll();
    } catch (e) {
      log.warn(`detaching leftover idmapped mounts: ${messageOf(e)}`);
    }
    const loaded = await this.#d.records.loadAll((id, why) => log.warn(`removing unfinished container record ${id}: ${why}`));
    // A record whose pod has none (a crash between the infra container's record and its pod's) is
    // half-made work: undone with the other leftovers, never listed.
    const recs: typeof loaded = [];
    for (const rec of loaded) {
      if (this.#d.sandboxes.find(rec.meta.sandboxId)) recs.push(rec);
      else {
        log.info(`container ${rec.meta.id} belongs to pod sandbox ${rec.meta.sandboxId}, which has no record: removing it`, { id: rec.meta.id });
        await this.#d.records.remove(rec.meta.id);
      }
    }
    await removeContainerLeftovers(this.#d, new Set(recs.map((r) => r.meta.id)));
    for (const rec of recs) {
      this.#index.add(rec.meta.id, rec);
      this.#d.names.reserve(rec.meta.name, rec.meta.id);
      if (rec.status.state === "exited") continue;
      const exit = await this.#d.monitor.readExit(rec.meta.id).catch(() => undefined);
      if (exit) {
        await this.onExit(rec.meta.id, exit);
        continue;
      }
      const st = await this.#d.runtime(rec.meta.runtimeHandler).state(rec.meta.id).catch(() => undefined);
      if (!st || st.status === "stopped") {
        // Gone without an exit file (reboot, or the monitor was killed): EXITED, code unknown.
        await rec.update((s) => ({ ...s, state: "exited", finishedAt: s.finishedAt ?? Date.now(), exitCode: s.exitCode ?? 255, message: "the container was not found after a restart of the runtime" }));
      } else if (st.status === "running" && rec.status.state === "created") {
        await rec.update((s) => ({ ...s, state: "running", startedAt: s.startedAt ?? Date.now() }));
      }
    }
  }

  // --- internal ---

  async #stop(rec: Rec, timeoutS: number): Promise<void> {
    if (!can.signal(rec.status.state) && rec.status.state !== "created") return;
    const rt = this.#d.runtime(rec.meta.runtimeHandler);
    const log = this.#d.log.withTag("container");
    if (rec.status.state === "created") {
      // Never started: nothing to signal; kill the created init (runc waits in it) and mark it exited.
      await rt.kill(rec.meta.id, "KILL").catch(() => {});
      await this.#waitExit(rec, 10_000);
      if (rec.status.state === "created") await rec.update((s) => ({ ...s, state: "exited", finishedAt: Date.now(), exitCode: 137 }));
      return;
    }
    if (timeoutS > 0) {
      await rt.kill(rec.meta.id, rec.meta.stopSignal).catch((e) => log.debug(`stop signal to ${rec.meta.id}: ${messageOf(e)}`));
      if (await this.#waitExit(rec, timeoutS * 1000)) return;
      log.info(`Stopping container ${rec.meta.id} with SIGKILL: it did not stop within ${timeoutS}s`, { id: rec.meta.id });
    }
    await rt.kill(rec.meta.id, "KILL", true).catch((e) => log.debug(`SIGKILL to ${rec.meta.id}: ${messageOf(e)}`));
    const floor = Math.max(this.#d.settings().ctrStopTimeoutS, 30) * 1000;
    const end = Date.now() + floor;
    if (await this.#waitExit(rec, Math.min(floor, KILL_ALL_GRACE_MS))) return;
    // `kill --all` signals the processes its cgroup lists; a container whose processes are no
    // longer listed there (moved out of the cgroup runc recorded) is not reached by it, and would
    // run on with its runtime reporting it running. SIGKILL to its init process itself (`kill`
    // without --all: the runtime also thaws a frozen one) ends it, and with it every process of its
    // PID namespace; repeated until it is gone or the floor has passed.
    while (Date.now() < end) {
      const st = await rt.state(rec.meta.id).catch(() => undefined);
      if (isExited(rec)) return;
      // gone, or stopped without its exit recorded yet: #waitExit concludes within seconds
      if (!st || st.status === "stopped") {
        if (await this.#waitExit(rec, end - Date.now())) return;
        break;
      }
      log.warn(`container ${rec.meta.id} is still ${st?.status ?? "there"} after SIGKILL to the processes of its cgroup: sending SIGKILL to its init process${st?.pid ? ` (pid ${st.pid})` : ""}`, { id: rec.meta.id });
      await rt.kill(rec.meta.id, "KILL", false).catch((e) => log.debug(`SIGKILL to the init of ${rec.meta.id}: ${messageOf(e)}`));
      if (await this.#waitExit(rec, Math.min(end - Date.now(), KILL_INIT_RETRY_MS))) return;
    }
    throw new RuntimeError("deadline-exceeded", `container "${rec.meta.id}" did not exit after SIGKILL within ${floor / 1000}s`);
  }

  /** Waits until the container is EXITED (exit notification, or the runtime says it is gone). */
  async #waitExit(rec: Rec, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    const rt = this.#d.runtime(rec.meta.runtimeHandler);
    let stoppedSince: number | undefined;
    while (rec.status.state !== "exited") {
      const left = end - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const set = this.#exitWaiters.get(rec.meta.id) ?? new Set();
        this.#exitWaiters.set(rec.meta.id, set);
        const done = () => {
          clearTimeout(t);
          set.delete(done);
          resolve();
        };
        const t = setTimeout(done, Math.min(left, 1000));
        set.add(done);
      });
      if (isExited(rec)) break;
      // Safety net: an exit file may be there without a notification yet.
      const exit = await this.#d.monitor.readExit(rec.meta.id).catch(() => undefined);
      if (exit) {
        await this.onExit(rec.meta.id, exit);
        continue;
      }
      // No exit file: when the runtime no longer knows the process, or has reported it stopped for
      // a few seconds (its monitor died without writing one), the container is gone all the same.
      const st = await rt.state(rec.meta.id).catch(() => undefined);
      if (st?.status === "stopped") stoppedSince ??= Date.now();
      if (!isExited(rec) && (st === undefined || (stoppedSince !== undefined && Date.now() - stoppedSince > 3000))) {
        this.#d.log.withTag("container").warn(`container ${rec.meta.id} is gone but its monitor recorded no exit; reporting exit code 137`, { id: rec.meta.id });
        await this.onExit(rec.meta.id, { exitCode: 137, exitedAt: Date.now(), oomKilled: false });
      }
    }
    return true;
  }

  #wake(id: string): void {
    for (const w of this.#exitWaiters.get(id) ?? []) w();
  }

  #emit(kind: "created" | "started" | "stopped" | "deleted", c: ContainerView): void {
    for (const l of this.#listeners) {
      try {
        l(kind, c);
      } catch {}
    }
  }
}

/** How long a container may take to die after `kill --all KILL` before its init is killed directly. */
const KILL_ALL_GRACE_MS = 2000;
/** How often SIGKILL to the init process is repeated while the container lives on. */
const KILL_INIT_RETRY_MS = 5000;

/** How often the watchdog checks the monitors of running containers. */
const WATCHDOG_MS = 5000;

function isExited(rec: { status: { state: string } }): boolean {
  return rec.status.state === "exited";
}
