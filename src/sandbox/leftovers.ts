/**
 * Leftovers of pods that have no sandbox record: a crash (kill -9, power loss) between the first
 * step of RunPodSandbox and its record, or a pod removed while its network teardown kept failing.
 * They are found at recovery (CNI attachment cache entries, pinned namespaces and run directories
 * whose pod id has no record) and remembered at removal, then cleaned in the background: CNI DEL
 * while the network namespace is still pinned (so the plugins can delete the veth and their
 * iptables rules, and host-local its reservation), then the namespaces are unpinned. A failed DEL
 * keeps everything for the next try: retried with backoff, and again at the next start.
 */
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { messageOf } from "../errors.ts";
import type { PinnedNamespaces } from "../sys/namespaces.ts";
import type { SandboxDeps } from "./deps.ts";

/** First and longest wait between cleaning attempts. */
const RETRY_MIN_MS = 2_000;
const RETRY_MAX_MS = 5 * 60_000;

/** Pods without a record whose network or namespaces are still owed a cleanup. */
export class Leftovers {
  readonly #d: SandboxDeps;
  readonly #pending = new Map<string, PinnedNamespaces>();
  #running?: Promise<void>;
  #again = false;
  #timer?: ReturnType<typeof setTimeout>;
  #delayMs = RETRY_MIN_MS;

  constructor(d: SandboxDeps) {
    this.#d = d;
  }

  /** Pod ids still owed a cleanup. */
  get pending(): string[] {
    return [...this.#pending.keys()];
  }

  /**
   * At recovery, before any RPC is served (so no RunPodSandbox is half-way): remembers every pod
   * id that has a CNI attachment or pinned namespaces but is not in `known`, and removes the run
   * directories (shm mount, hostname, resolv.conf) of unknown pods now. Returns the ids found.
   */
  async find(known: ReadonlySet<string>): Promise<string[]> {
    const log = this.#d.log.withTag("sandbox");
    const pins = this.#d.namespaces.list(this.#d.paths.namespaces);
    const ids = new Set<string>();
    for (const id of this.#d.network.attachedPods()) if (!known.has(id)) ids.add(id);
    for (const id of pins.keys()) if (!known.has(id)) ids.add(id);
    for (const id of ids) this.#pending.set(id, pins.get(id) ?? {});
    const runDirs = await readdir(this.#d.paths.sandboxRun).catch(() => [] as string[]);
    for (const id of runDirs) {
      if (known.has(id)) continue;
      ids.add(id);
      const dir = join(this.#d.paths.sandboxRun, id);
      try {
        await this.#d.shm.unmount(join(dir, "shm"));
        await rm(dir, { recursive: true, force: true });
      } catch (e) {
        log.warn(`removing the run directory of unknown pod sandbox ${id}: ${messageOf(e)}`);
      }
    }
    if (ids.size) log.info(`found leftovers of ${ids.size} pod sandbox(es) without a record (crash during RunPodSandbox?): ${[...ids].join(", ")}`);
    return [...ids];
  }

  /** Remembers a removed pod whose network teardown is still owed (its namespaces stay pinned for the DEL) and schedules a try. */
  add(id: string, namespaces: PinnedNamespaces): void {
    this.#pending.set(id, { ...namespaces });
    this.#delayMs = RETRY_MIN_MS;
    this.#schedule();
  }

  /** Tries every pending cleanup once (concurrent calls share the work); failures are logged and retried later. */
  async clean(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return await this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#cleanAll();
      } while (this.#again);
    })();
    try {
      await this.#running;
    } finally {
      this.#running = undefined;
    }
  }

  /** Stops the retry timer. */
  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  // --- internal ---

  async #cleanAll(): Promise<void> {
    const log = this.#d.log.withTag("sandbox");
    let failed = 0;
    for (const [id, ns] of [...this.#pending]) {
      try {
        await this.#d.network.tearDown({ id, name: "", namespace: "", uid: "", netns: ns.net ?? "", portMappings: [] });
      } catch (e) {
        failed++;
        log.warn(`network teardown of removed or unfinished pod sandbox ${id} failed (will be retried): ${messageOf(e)}`);
        continue;
      }
      try {
        await this.#d.namespaces.unpin(ns);
      } catch (e) {
        failed++;
        log.warn(`unpinning the namespaces of removed or unfinished pod sandbox ${id}: ${messageOf(e)}`);
        continue;
      }
      this.#pending.delete(id);
      log.info(`Cleaned up the network and namespaces of pod sandbox ${id}, which has no record`);
    }
    if (failed) {
      this.#schedule();
      this.#delayMs = Math.min(this.#delayMs * 2, RETRY_MAX_MS);
    } else this.#delayMs = RETRY_MIN_MS;
  }

  #schedule(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.clean();
    }, this.#delayMs);
    this.#timer.unref?.();
  }
}
