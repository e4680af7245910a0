/**
 * Leftovers of containers with no committed record: a crash (kill -9, power loss) during
 * CreateContainer or RunPodSandbox's infra container, between its first step and its record.
 * Such a container is in none of the lists, so nothing else would ever remove it; found at
 * recovery (before any RPC is served, so no create is half-way) by its traces: a root filesystem
 * (overlay `merged` mount, image volumes), a bundle, a monitor dir (and a live monitor holding a
 * `runc init`), an exit file, or a container the OCI runtime knows. Each is undone in the
 * order that frees the next: monitor killed, runtime container deleted (its init and cgroup),
 * monitor files and cgroup, root filesystem, bundle; and logged.
 */
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { messageOf } from "../errors.ts";
import { pidsNaming } from "../sys/process.ts";
import type { ContainerDeps } from "./deps.ts";

/** Container ids are 64 hex digits (util/id.ts); anything else below our dirs is not ours to remove. */
const ID = /^[0-9a-f]{64}$/;

/**
 * Removes every trace of containers whose id is not in `known` (ids with a committed record);
 * returns the ids cleaned. Failures are logged and do not stop the others.
 */
export async function removeContainerLeftovers(
  d: ContainerDeps,
  known: ReadonlySet<string>,
  /** The processes whose command line names a container id (sys/process.ts; tests give a fake). */
  naming: (id: string) => number[] = pidsNaming,
): Promise<string[]> {
  const log = d.log.withTag("container");
  const found = new Map<string, string[]>();
  const note = (id: string, what: string) => {
    if (!ID.test(id) || known.has(id)) return;
    found.set(id, [...(found.get(id) ?? []), what]);
  };
  for (const id of await names(d.paths.storage)) note(id, "root filesystem");
  for (const id of await names(join(d.paths.runroot, "containers"))) note(id, "bundle");
  for (const id of await names(d.paths.monitors)) note(id, "monitor dir");
  for (const id of await names(d.paths.exits)) note(id, "exit file");
  const handlers = d.settings().runtimeHandlers ?? [];
  const inRuntime = new Map<string, string[]>();
  const listed: string[] = [];
  for (const h of handlers) {
    // a handler whose runtime is not installed (crun in the default table) has no containers to list
    const ids = await Promise.resolve()
      .then(() => d.handlers.get(h).runtime.list())
      .then((l) => l.map((s) => s.id))
      .catch((e) => {
        log.warn(`listing the containers of runtime handler "${h}": ${messageOf(e)}`);
        return undefined;
      });
    if (ids) listed.push(h);
    for (const id of ids ?? []) {
      if (!ID.test(id) || known.has(id)) continue;
      note(id, `${h} container`);
      inRuntime.set(id, [...(inRuntime.get(id) ?? []), h]);
    }
  }
  for (const [id, traces] of found) {
    const failures: string[] = [];
    const step = async (what: string, fn: () => Promise<unknown> | unknown) => {
      try {
        await fn();
      } catch (e) {
        failures.push(`${what}: ${messageOf(e)}`);
      }
    };
    // The monitor first: it would otherwise see its container die and write an exit file after us.
    await step("kill monitor", () => d.monitors.abandon(id));
    for (const h of inRuntime.get(id) ?? []) await step(`delete ${h} container`, () => d.handlers.get(h).runtime.delete(id, true));
    // a monitor left alive (not provably this container's) ends with its container: let it write its exit first
    for (const end = Date.now() + 3000; (await d.monitors.alive(id)) && Date.now() < end; ) await Bun.sleep(20);
    // The monitor's `runc create` outlives it (only the monitor is killed): one still running when
    // the runtime was listed may have made the container since. Once no process names the id (≤ 5 s),
    // ask each runtime that listed fine and did not have it then.
    const unlisted = listed.filter((h) => !inRuntime.get(id)?.includes(h));
    if (unlisted.length) {
      for (const end = Date.now() + 5000; naming(id).length && Date.now() < end; ) await Bun.sleep(20);
      for (const h of unlisted)
        await step(`delete ${h} container`, async () => {
          const rt = d.handlers.get(h).runtime;
          if (await rt.state(id)) await rt.delete(id, true);
        });
    }
    await step("remove monitor files", () => d.monitors.remove(id));
    await step("remove root filesystem", () => d.rootfs.remove(id));
    await step("remove bundle", () => rm(join(d.paths.runroot, "containers", id), { recursive: true, force: true }));
    if (failures.length) log.warn(`leftovers of container ${id} (no record: crash during its creation?) not all removed: ${failures.join("; ")}`, { id });
    else log.info(`removed leftovers of container ${id}, which has no record (crash during its creation): ${traces.join(", ")}`, { id });
  }
  return [...found.keys()];
}

// --- internal ---

async function names(dir: string): Promise<string[]> {
  return await readdir(dir).catch(() => [] as string[]);
}

/**
 * A StartContainer whose runtime call failed may still have started the process (runc killed
 * after its `start` took effect, or a start that timed out): the failure is made true before it
 * is reported. The container is killed (a created init too) and waited for until the runtime
 * says it is stopped or gone (≤ `waitMs`); returns what the runtime said last, so the caller
 * records EXITED only once nothing runs (a container left running is listed as running).
 */
export async function endFailedStart(d: Pick<ContainerDeps, "handlers" | "log">, handler: string, id: string, waitMs = 10_000): Promise<"stopped" | "running"> {
  const rt = d.handlers.get(handler).runtime;
  const end = Date.now() + waitMs;
  for (let first = true; ; first = false) {
    const st = await rt.state(id).catch(() => undefined);
    if (!st || st.status === "stopped") return "stopped";
    if (first) d.log.withTag("container").warn(`container ${id} is ${st.status} although its start failed: killing it`, { id });
    if (Date.now() > end) return "running";
    await rt.kill(id, "KILL", st.status !== "created").catch(() => {});
    await Bun.sleep(100);
  }
}
