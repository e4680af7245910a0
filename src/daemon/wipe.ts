import { existsSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { socketAnswers } from "../sys/unix-socket.ts";
import { dirname } from "node:path";
import type { Config } from "../config/schema.ts";
import { RuntimeError, messageOf } from "../errors.ts";
import type { Logger } from "../log/index.ts";
import { pathsOf } from "../paths.ts";
import { writeFileAtomic } from "../store/index.ts";
import { VERSION } from "../version.ts";
import { buildServices, type Built } from "./services.ts";
import { releaseIdlePinDir } from "../sys/namespaces.ts";

/**
 * `crio wipe` (CRI-O's): removes containers and pods when version_file says the node rebooted
 * (the file lives on tmpfs) or the runtime's major.minor version changed, and images too when
 * version_file_persist says the version changed; `force` wipes both unconditionally. The
 * daemon writes both files once it serves (writeVersionFiles).
 */

/** What a wipe will remove, and why. */
export interface WipePlan {
  containers: boolean;
  images: boolean;
  reasons: string[];
}

/** What a wipe removed. */
export interface WipeResult extends WipePlan {
  removedPods: number;
  removedContainers: number;
  removedImages: number;
  /** Objects that could not be removed (each logged). */
  failures: number;
}

/** Decides what to wipe from the version files (CRI-O's ShouldCrioWipe, per file). */
export function planWipe(c: Config, force: boolean, version = VERSION): WipePlan {
  if (force) return { containers: true, images: true, reasons: ["forced"] };
  const reasons: string[] = [];
  const ctr = versionChange(c.crio.versionFile, version);
  if (ctr) reasons.push(`${ctr}: wiping containers`);
  // An unset version_file_persist never wipes images: there is no record of an upgrade.
  const img = c.crio.versionFilePersist ? versionChange(c.crio.versionFilePersist, version) : undefined;
  if (img) reasons.push(`${img}: wiping images`);
  // Images are never wiped without the containers that use them (CRI-O's rule).
  return { containers: !!ctr, images: !!ctr && !!img, reasons };
}

/**
 * Wipes per the plan. Refuses (failed-precondition) while a daemon answers on the CRI socket:
 * the records belong to it then. Containers are stopped and removed through the same services
 * the daemon uses (runtime delete, rootfs, monitor files, network teardown, namespaces).
 */
export async function runWipe(c: Config, force: boolean, log: Logger): Promise<WipeResult> {
  if (await socketAnswers(c.api.listen)) throw new RuntimeError("failed-precondition", `a crio daemon is running on "${c.api.listen}": stop it before wiping`);
  const plan = planWipe(c, force);
  const result: WipeResult = { ...plan, removedPods: 0, removedContainers: 0, removedImages: 0, failures: 0 };
  for (const r of plan.reasons) log.info(r);
  if (!plan.containers) {
    log.info("version unchanged and node not rebooted; no wipe needed");
    return result;
  }
  const paths = pathsOf(c);
  if (!existsSync(c.crio.root)) {
    log.info(`nothing to wipe: "${c.crio.root}" does not exist`);
    return result;
  }
  const cgroup = c.runtime.cgroupManager === "systemd" && existsSync("/run/systemd/system") ? "systemd" : "cgroupfs";
  const built = await buildServices(() => c, paths, cgroup, log);
  const exits = built.handlers.monitorFiles.watchExits((id, exit) => void built.containers.onExit(id, exit).catch(() => {}));
  try {
    await built.sandboxes.recover();
    await built.containers.recover();
    await exits.start();
    await wipeObjects(built, plan, log, result);
    // pods with no record (a daemon killed during RunPodSandbox): their network and pinned
    // namespaces, found by recover(), are torn down now, not left to a daemon's background retry
    await built.sandboxes.retryPendingTeardowns();
    for (const id of built.sandboxes.pendingLeftovers()) {
      log.error(`unable to remove the network and namespaces of pod sandbox ${id}, which has no record`);
      result.failures++;
    }
  } finally {
    exits.close();
    built.close();
    // With every pod gone, the namespaces dir's own bind mount goes too: a wipe leaves no mount.
    await releaseIdlePinDir(paths.namespaces).catch((e) => log.warn(`releasing the namespaces dir mount: ${messageOf(e)}`));
    // and the idmapped staging dir's (user-namespaced pods), once nothing is staged in it
    await releaseIdlePinDir(paths.idmap).catch((e) => log.warn(`releasing the idmap staging dir mount: ${messageOf(e)}`));
  }
  log.info(`wiped ${result.removedPods} pods, ${result.removedContainers} containers and ${result.removedImages} images`);
  return result;
}

/**
 * Removes every pod (with its containers), then any container left, and with `plan.images` every
 * image, through the services the daemon uses; counts into `result`, logging each failure.
 * `crio wipe` and the daemon's internal_wipe share it.
 */
export async function wipeObjects(built: Built, plan: WipePlan, log: Logger, result: WipeResult): Promise<void> {
  const attempt = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
      return true;
    } catch (e) {
      log.error(`unable to remove ${what}: ${messageOf(e)}`);
      result.failures++;
      return false;
    }
  };
  for (const sb of built.sandboxes.list()) {
    const n = built.containers.ofPod(sb.meta.id).filter((x) => !x.meta.infra).length;
    if (await attempt(`pod sandbox ${sb.meta.id}`, () => built.sandboxes.remove(sb.meta.id))) {
      result.removedPods++;
      result.removedContainers += n;
    }
  }
  for (const ctr of built.containers.list()) {
    if (await attempt(`container ${ctr.meta.id}`, () => built.containers.remove(ctr.meta.id))) result.removedContainers++;
  }
  if (plan.images) {
    for (const img of built.images.list()) {
      if (await attempt(`image ${img.id}`, () => built.images.remove(img.id, () => false))) result.removedImages++;
    }
  }
}

/** Writes version_file (and version_file_persist when set) with this build's version, as CRI-O does once it serves. */
export async function writeVersionFiles(c: Config, version = VERSION): Promise<void> {
  for (const f of [c.crio.versionFile, c.crio.versionFilePersist]) {
    if (!f) continue;
    await mkdir(dirname(f), { recursive: true, mode: 0o755 });
    await writeFileAtomic(f, JSON.stringify(version), 0o644);
  }
}

// --- internal ---

/** Why `path` calls for a wipe, or undefined when it does not. */
function versionChange(path: string, version: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return `version file "${path}" not found (node rebooted or first start)`;
  }
  let old: unknown;
  try {
    old = JSON.parse(text);
  } catch {
    old = text.trim();
  }
  const was = majorMinor(String(old));
  if (!was) return `version file "${path}" holds no version`;
  return was === majorMinor(version) ? undefined : `version file "${path}" says ${String(old)}, this is ${version}`;
}

function majorMinor(v: string): string | undefined {
  return /^v?(\d+)\.(\d+)(?:\.|$|-)/.exec(v.trim())?.slice(1, 3).join(".");
}
