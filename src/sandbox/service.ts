import { rm } from "node:fs/promises";
import { join } from "node:path";
import { RuntimeError, messageOf, precondition, wrap } from "../errors.ts";
import { IdIndex, type StoredRecord } from "../store/index.ts";
import { KeyedSerial } from "../util/wait.ts";
import type { PodContainers, SandboxDeps } from "./deps.ts";
import { Leftovers } from "./leftovers.ts";
import { filterSandboxes, type SandboxFilter } from "./list.ts";
import { sandboxName, type SandboxMeta, type SandboxState, type SandboxView } from "./record.ts";
import { podNet, runSandbox, type RunSandboxInput } from "./run.ts";
import { withoutDisallowed } from "./annotations.ts";
import { can } from "./state.ts";
import { IdRanges } from "./userns.ts";

type Rec = StoredRecord<SandboxMeta, SandboxState>;

/** Pod sandboxes: one method per CRI verb; state lives in records, this is their index. */
export class SandboxService {
  readonly #d: SandboxDeps;
  readonly #index = new IdIndex<Rec>();
  readonly #serial = new KeyedSerial();
  /** Creations in flight by reserved name, so a kubelet retry waits for the first attempt. */
  readonly #inFlight = new Map<string, Promise<SandboxView>>();
  /** Pods whose creation finished after the caller gave up: a retry gets them back (CRI-O's resource store). */
  readonly #orphans = new Map<string, string>();
  #containers?: PodContainers;
  /** Pods without a record still owed a network teardown or an unpin (crash mid-run, failed teardown at removal). */
  readonly #leftovers: Leftovers;
  /** Host id ranges of the pods with a user namespace of their own (held until the pod is removed). */
  readonly #ranges = new IdRanges();

  constructor(d: SandboxDeps) {
    this.#d = d;
    this.#leftovers = new Leftovers(d);
  }

  /** Wires the containers of pods (they depend on the sandbox service, so this comes later). */
  setContainers(c: PodContainers): void {
    this.#containers = c;
  }

  /** RunPodSandbox. A retry of a creation in flight, or of one whose caller gave up, gets the same pod. */
  async run(input: RunSandboxInput, signal: AbortSignal): Promise<SandboxView> {
    const md = input.config.metadata;
    const name = md ? sandboxName(md) : "";
    const orphan = this.#orphans.get(name);
    if (orphan && this.#index.find(orphan)) {
      this.#orphans.delete(name);
      return this.#view(this.#index.get("pod sandbox", orphan));
    }
    const pending = this.#inFlight.get(name);
    if (pending) {
      this.#d.log.info(`Creation of sandbox ${name} not yet finished; waiting for it`);
      return await Promise.race([pending, abortPromise(signal)]);
    }
    // The creation runs to its end even when the caller gives up; a retry then gets the pod.
    const p = runSandbox(
      this.#d,
      this.#pods(),
      input,
      new AbortController().signal,
      (rec) => this.#index.add(rec.meta.id, rec),
      (id, ns) => this.#leftovers.add(id, ns),
      this.#ranges,
    );
    if (name) this.#inFlight.set(name, p);
    try {
      const view = await Promise.race([p, abortPromise(signal)]);
      return view;
    } catch (e) {
      if (signal.aborted)
        p.then(
          (v) => this.#orphans.set(name, v.meta.id),
          () => {},
        );
      throw e;
    } finally {
      p.finally(() => this.#inFlight.delete(name)).catch(() => {});
    }
  }

  /**
   * A container's own annotations, without the experimental ones its pod's runtime handler does
   * not allow (CRI-O filters CreateContainer's annotations by the pod's handler); `owner` names
   * the container in the debug line said for each one dropped.
   */
  allowedAnnotations(handler: string, annotations: Record<string, string>, owner: string): Record<string, string> {
    const { kept, dropped } = withoutDisallowed(annotations, this.#d.settings().handlerAnnotations?.[handler]?.disallowed ?? []);
    for (const k of dropped)
      this.#d.log.withTag("container").debug(`Annotation "${k}" of container ${owner} is not in runtime handler "${handler}"'s allowed_annotations; ignored`);
    return kept;
  }

  /** StopPodSandbox: containers, infra container, network, shm, namespaces. Idempotent. */
  async stop(id: string): Promise<void> {
    const rec = this.#index.find(id);
    // StopPodSandbox is idempotent: an unknown pod is not an error (api.proto, rpc StopPodSandbox).
    if (!rec) return;
    await this.#serial.run(rec.meta.id, () => this.#stop(rec));
  }

  /** RemovePodSandbox: stops it when needed, then removes every trace. Idempotent. */
  async remove(id: string): Promise<void> {
    const rec = this.#index.find(id);
    // RemovePodSandbox is idempotent (api.proto, rpc RemovePodSandbox).
    if (!rec) return;
    await this.#serial.run(rec.meta.id, async () => {
      await this.#stop(rec, true);
      await this.#containers?.removeAll(rec.meta.id);
      await this.#containers?.infra.remove(this.#view(rec));
      await rm(join(this.#d.paths.sandboxRun, rec.meta.id), { recursive: true, force: true });
      await this.#d.records.remove(rec.meta.id);
      this.#index.delete(rec.meta.id);
      this.#d.names.release(rec.meta.name, rec.meta.id);
      this.#ranges.release(rec.meta.id);
      this.#d.log.withTag("sandbox").info(`Removed pod sandbox ${rec.meta.id}`, { pod: `${rec.meta.metadata.namespace}/${rec.meta.metadata.name}` });
      // A teardown that failed during removal stays owed: retried in the background, the namespaces kept for it.
      if (rec.status.networkPending) this.#leftovers.add(rec.meta.id, rec.status.namespaces);
    });
  }

  /** The pod with this id or unique id prefix; NOT_FOUND otherwise. */
  get(id: string): SandboxView {
    return this.#view(this.#index.get("pod sandbox", id));
  }

  /**
   * The pod a container is created in: NOT_FOUND for an unknown pod, FAILED_PRECONDITION for one
   * that is not ready.
   */
  forNewContainer(id: string): SandboxView {
    const sb = this.get(id);
    if (!can.createContainer(sb.status.state)) throw precondition(`pod sandbox "${sb.meta.id}" is not ready`);
    return sb;
  }

  /**
   * PortForward's target in a ready pod (NOT_FOUND, or FAILED_PRECONDITION when it is not ready):
   * its network namespace, or none for a host-network pod, whose localhost is the node's.
   */
  portForwardTarget(id: string): { netns?: string } {
    const sb = this.get(id);
    if (!can.portForward(sb.status.state)) throw precondition(`pod sandbox "${sb.meta.id}" is not ready`);
    return { netns: sb.status.namespaces.net };
  }

  /** Like get, but undefined when unknown. */
  find(id: string): SandboxView | undefined {
    const r = this.#index.find(id);
    return r ? this.#view(r) : undefined;
  }

  /** ListPodSandbox. */
  list(filter?: SandboxFilter): SandboxView[] {
    return filterSandboxes(
      [...this.#index.values()].map((r) => this.#view(r)),
      filter,
    );
  }

  /**
   * Loads the records at start. A pod whose namespaces are gone (reboot: empty runroot) comes
   * back NOTREADY; a network teardown still owed is retried. CNI attachments, pinned namespaces
   * and run directories of pods without a record (a crash during RunPodSandbox) are collected for
   * cleaning by retryPendingTeardowns().
   */
  async recover(): Promise<void> {
    const log = this.#d.log.withTag("sandbox");
    const recs = await this.#d.records.loadAll((id, why) => log.warn(`removing unfinished sandbox record ${id}: ${why}`));
    const isPinned = this.#d.namespaces.pinCheck();
    for (const rec of recs) {
      this.#index.add(rec.meta.id, rec);
      this.#d.names.reserve(rec.meta.name, rec.meta.id);
      if (rec.meta.userns) {
        try {
          this.#ranges.reserve(rec.meta.id, rec.meta.userns);
        } catch (e) {
          log.warn(`pod sandbox ${rec.meta.id}: ${messageOf(e)}`);
        }
      }
      const ns = rec.status.namespaces;
      const lost = [ns.net, ns.ipc, ns.uts, ns.user].some((p) => p !== undefined && !isPinned(p));
      if (rec.status.state === "ready" && lost) {
        log.info(`pod sandbox ${rec.meta.id} lost its namespaces (reboot?): marking it NOTREADY`);
        // Some may still be pinned (a daemon killed half-way through a stop's unpin: net gone, ipc
        // and uts still mounted): unpin what remains, or keep them recorded for the stop to retry.
        let kept: typeof ns = {};
        try {
          await this.#d.namespaces.unpin(ns);
        } catch (e) {
          log.warn(`unpinning what remains of the namespaces of pod sandbox ${rec.meta.id}: ${messageOf(e)}`);
          kept = ns;
        }
        await rec.update((s) => ({ ...s, state: "notready", namespaces: kept, stoppedAt: Date.now() }));
      }
    }
    await this.#leftovers.find(new Set(recs.map((r) => r.meta.id)));
  }

  /** Retries owed network teardowns, and cleans up after pods without a record (after recovery, in the background). */
  async retryPendingTeardowns(): Promise<void> {
    await this.#leftovers.clean();
    for (const rec of this.#index.values()) {
      if (!rec.status.networkPending) continue;
      await this.#serial.run(rec.meta.id, () => this.#teardownNetwork(rec)).catch(() => {});
    }
  }

  /** Pod ids without a record whose cleanup is still owed (see retryPendingTeardowns). */
  pendingLeftovers(): string[] {
    return this.#leftovers.pending;
  }

  // --- internal ---

  #pods(): PodContainers {
    if (!this.#containers) throw new RuntimeError("internal", "the sandbox service has no container service (setContainers)");
    return this.#containers;
  }

  async #stop(rec: Rec, forRemoval = false): Promise<void> {
    const log = this.#d.log.withTag("sandbox");
    await this.#containers?.stopAll(rec.meta.id);
    await this.#containers?.infra.stop(this.#view(rec));
    let netErr: unknown;
    if (rec.status.state === "ready" || rec.status.networkPending) {
      try {
        await this.#teardownNetwork(rec);
      } catch (e) {
        netErr = e;
      }
    }
    if (rec.status.shmPath && rec.status.shmPath !== "/dev/shm")
      await this.#d.shm.unmount(rec.status.shmPath).catch((e) => log.warn(`unmount shm of ${rec.meta.id}: ${messageOf(e)}`));
    if (Object.keys(rec.status.namespaces).length) {
      if (!rec.status.networkPending) {
        await this.#d.namespaces.unpin(rec.status.namespaces);
        await rec.update((s) => ({ ...s, namespaces: {} }));
      }
    }
    if (rec.status.state === "ready") {
      await rec.update((s) => ({ ...s, state: "notready", stoppedAt: Date.now() }));
      log.info(`Stopped pod sandbox ${rec.meta.id}`, { pod: `${rec.meta.metadata.namespace}/${rec.meta.metadata.name}` });
    }
    if (netErr) {
      if (!forRemoval) throw wrap(netErr, `stop pod sandbox "${rec.meta.id}": network teardown (will be retried)`);
      // Pod deletion is never blocked forever by a dead plugin: the pod goes, the failure is logged,
      // and remove() hands the teardown (with the still-pinned namespaces) to the leftovers.
      log.warn(
        `network teardown of pod sandbox ${rec.meta.id} failed; removing the pod anyway (the teardown is retried in the background): ${messageOf(netErr)}`,
      );
    }
  }

  async #teardownNetwork(rec: Rec): Promise<void> {
    const hostNet = rec.meta.namespaceOptions.network === 2;
    if (hostNet) return;
    try {
      await this.#d.network.tearDown(podNet(rec.meta, rec.status));
      if (rec.status.networkPending) await rec.update((s) => ({ ...s, networkPending: false }));
    } catch (e) {
      if (!rec.status.networkPending) await rec.update((s) => ({ ...s, networkPending: true }));
      throw e;
    }
  }

  #view(r: Rec): SandboxView {
    return r;
  }
}

function abortPromise(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason ?? new RuntimeError("canceled", "the call was cancelled"));
    signal.addEventListener("abort", () => reject(signal.reason ?? new RuntimeError("canceled", "the call was cancelled")), { once: true });
  });
}
