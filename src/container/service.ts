import type { PodContainers, SandboxView } from "../sandbox/index.ts";
import { IdIndex } from "../store/index.ts";
import { KeyedSerial } from "../util/wait.ts";
import type { PodSandboxConfig } from "../gen/runtime/v1/api_pb.ts";
import type { LinuxContainerResources } from "../gen/runtime/v1/api_pb.ts";
import type { ContainerChange, ContainerCtx, Rec } from "./context.ts";
import { createContainer, type CreateInput } from "./create.ts";
import type { ContainerDeps, ExitInfo } from "./deps.ts";
import { execSync } from "./exec-sync.ts";
import { execProcess, runningContainer, type ExecProcess } from "./exec.ts";
import { ExitWaiters, recordExit } from "./exit.ts";
import { startInfra } from "./infra.ts";
import { filterContainers, type ContainerFilter } from "./list.ts";
import type { ContainerView } from "./record.ts";
import { recoverContainers } from "./recover.ts";
import { removeContainer } from "./remove.ts";
import { reopenLog } from "./reopen-log.ts";
import { startContainer } from "./start.ts";
import { stopContainer } from "./stop.ts";
import { updateResources } from "./update-resources.ts";
import { Watchdog } from "./watchdog.ts";

/**
 * Containers: one method per CRI verb, each delegating to the file of its verb; state lives in
 * records, this is their index.
 */
export class ContainerService implements PodContainers {
  readonly #c: ContainerCtx;
  readonly #index = new IdIndex<Rec>();
  readonly #watchdog: Watchdog;
  /** Observers of state changes (events for GetContainerEvents, metrics). */
  readonly #listeners = new Set<(kind: ContainerChange, c: ContainerView) => void>();

  constructor(d: ContainerDeps) {
    this.#c = { d, index: this.#index, serial: new KeyedSerial(), exits: new ExitWaiters(), emit: (kind, c) => this.#emit(kind, c) };
    this.#watchdog = new Watchdog(this.#c);
  }

  /** Subscribes to container lifecycle changes; returns the unsubscribe function. */
  onChange(fn: (kind: ContainerChange, c: ContainerView) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** CreateContainer. */
  async create(input: CreateInput): Promise<ContainerView> {
    const rec = await createContainer(
      this.#c.d,
      input,
      (id) => this.#index.find(id)?.status.pid,
      (r) => this.#index.add(r.meta.id, r),
    );
    this.#emit("created", rec);
    return rec;
  }

  /** StartContainer: only a CREATED container starts. */
  async start(id: string): Promise<void> {
    await startContainer(this.#c, id);
  }

  /**
   * StopContainer: the stop signal, then SIGKILL after `timeoutS`; returns when the process is
   * gone. Idempotent: an unknown or stopped container is not an error (api.proto).
   */
  async stop(id: string, timeoutS: number): Promise<void> {
    const rec = this.#index.find(id);
    if (!rec) return;
    await stopContainer(this.#c, rec, timeoutS);
  }

  /** RemoveContainer: force-stops a running container, then removes every trace. Idempotent. */
  async remove(id: string): Promise<void> {
    await removeContainer(this.#c, id);
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
    start: (sb: SandboxView, config: PodSandboxConfig, signal?: AbortSignal) => startInfra(this.#c.d, sb, config, signal, (r) => this.#index.add(r.meta.id, r)),
    stop: async (sb: SandboxView) => {
      const rec = this.#index.find(sb.meta.id);
      if (rec?.meta.infra) await stopContainer(this.#c, rec, 0);
    },
    remove: async (sb: SandboxView) => {
      const rec = this.#index.find(sb.meta.id);
      if (rec?.meta.infra) await this.remove(rec.meta.id);
    },
  };

  /** PodContainers: stops every container of a pod (no grace: the pod is going). */
  async stopAll(sandboxId: string): Promise<void> {
    await Promise.all(
      this.ofPod(sandboxId)
        .filter((c) => !c.meta.infra)
        .map((c) => stopContainer(this.#c, c as Rec, 0)),
    );
  }

  /** PodContainers: removes every container of a pod. */
  async removeAll(sandboxId: string): Promise<void> {
    await Promise.all(
      this.ofPod(sandboxId)
        .filter((c) => !c.meta.infra)
        .map((c) => this.remove(c.meta.id)),
    );
  }

  /** ExecSync: runs a command in a running container; output capped at 16 MiB each. */
  async execSync(id: string, cmd: string[], timeoutS: number): Promise<{ exitCode: number; stdout: Uint8Array; stderr: Uint8Array }> {
    return await execSync(this.#c, id, cmd, timeoutS);
  }

  /**
   * Exec (streaming): the running container and the process to run in it, its own with `cmd`
   * (exec.ts). NOT_FOUND for an unknown container, FAILED_PRECONDITION for one not running.
   */
  async execTarget(id: string, cmd: string[], tty: boolean): Promise<{ container: ContainerView; process: ExecProcess }> {
    const container = runningContainer(this.#c, id);
    return { container, process: await execProcess(container, cmd, tty) };
  }

  /** Attach: the running container (NOT_FOUND, or FAILED_PRECONDITION when it is not running). */
  attachTarget(id: string): ContainerView {
    return runningContainer(this.#c, id);
  }

  /** ReopenContainerLog: the monitor reopens the log file (after the kubelet rotated it). */
  async reopenLog(id: string): Promise<void> {
    await reopenLog(this.#c, id);
  }

  /** UpdateContainerResources: `runtime update` on a created or running container. */
  async updateResources(id: string, resources: LinuxContainerResources | undefined, resourcesJson: unknown): Promise<void> {
    await updateResources(this.#c, id, resources, resourcesJson);
  }

  /** Called for each exit the monitor recorded (from the exits directory watcher). */
  async onExit(id: string, info: ExitInfo): Promise<void> {
    await recordExit(this.#c, id, info);
  }

  /** Starts the watchdog of running containers' monitors (watchdog.ts), one pass every `intervalMs`. */
  startWatchdog(intervalMs?: number): void {
    this.#watchdog.start(intervalMs);
  }

  stopWatchdog(): void {
    this.#watchdog.stop();
  }

  /** One pass of the watchdog (startWatchdog). */
  async checkMonitors(): Promise<void> {
    await this.#watchdog.check();
  }

  /** Loads records and reconciles them with the runtime and the exit files written while we were down. */
  async recover(): Promise<void> {
    await recoverContainers(this.#c);
  }

  // --- internal ---

  #emit(kind: ContainerChange, c: ContainerView): void {
    for (const l of this.#listeners) {
      try {
        l(kind, c);
      } catch {}
    }
  }
}
