/**
 * AppArmor on the node: is the LSM on, is a profile loaded, and loading our default profile
 * ("crio-default") with apparmor_parser, as CRI-O does at start-up. The kernel interface is
 * sysfs/securityfs text files; loading goes through sys/exec.ts. Every function takes the sysfs
 * root (and the runner) as a parameter so tests use a fake directory and a fake runner.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RuntimeError } from "../errors.ts";
import { ExecError, run as execRun } from "./exec.ts";
import { lookPath } from "./look-path.ts";

/** The name of our RuntimeDefault profile (CRI-O's). */
export const DEFAULT_APPARMOR_PROFILE = "crio-default";

/** Runs argv to completion and returns stdout, throwing ExecError on failure (sys/exec.ts run). */
export type Runner = (argv: string[]) => Promise<string>;

/** True when the kernel has AppArmor on: `<sys>/module/apparmor/parameters/enabled` reads "Y". */
export function apparmorEnabled(sys = "/sys"): boolean {
  return readOr(join(sys, "module/apparmor/parameters/enabled")).trim() === "Y";
}

/** Names of the profiles the kernel holds (`<sys>/kernel/security/apparmor/profiles`, "name (mode)" lines). */
export function loadedProfiles(sys = "/sys"): Set<string> {
  const out = new Set<string>();
  for (const raw of readOr(join(sys, "kernel/security/apparmor/profiles")).split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const mode = line.lastIndexOf(" (");
    out.add(mode > 0 && line.endsWith(")") ? line.slice(0, mode) : line);
  }
  return out;
}

/** True when the kernel holds a profile of this name (false when securityfs is not readable). */
export function profileLoaded(name: string, sys = "/sys"): boolean {
  return loadedProfiles(sys).has(name);
}

/**
 * Our default container profile, in AppArmor policy language. Same strength as the profile CRI-O
 * loads from containers-common: everything a normal workload needs (network, capabilities the
 * OCI spec grants, files, umount, signals and ptrace among its own processes and from the
 * runtime) while writes to the kernel's tunables under /proc and /sys, mount, and access to
 * firmware, kcore, sysrq and securityfs are refused.
 */
export function defaultProfileText(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new RuntimeError("invalid-argument", `invalid apparmor profile name "${name}"`);
  return `#include <tunables/global>

# ${name}: default AppArmor profile of containers run by this CRI runtime (RuntimeDefault).
profile ${name} flags=(attach_disconnected,mediate_deleted) {
  #include <abstractions/base>

  # What a container normally does. Capabilities are limited by the OCI spec, not here.
  network,
  capability,
  file,
  umount,

  # Signals: among the container's own processes, from unconfined (privileged) callers and from
  # the OCI runtimes that start and stop it.
  signal (send,receive) peer=${name},
  signal (receive) peer=unconfined,
  signal (receive) peer={runc,crun*},

  # ptrace only among the container's own processes (ps, gdb inside it); none from outside.
  ptrace (trace,read,tracedby,readby) peer=${name},

  # No mounts inside the container (umount stays allowed).
  deny mount,

  # /proc: no writes to files directly in /proc, nor below anything that is not a pid directory
  # or /proc/sys; below /proc/sys only kernel/shm* stays writable.
  deny @{PROC}/* w,
  deny @{PROC}/{[^1-9],[^1-9][^0-9],[^1-9s][^0-9y][^0-9s],[^1-9][^0-9][^0-9][^0-9/]*}/** w,
  deny @{PROC}/sys/[^k]** w,
  deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,
  deny @{PROC}/sysrq-trigger rwklx,
  deny @{PROC}/kcore rwklx,

  # /sys: read-only except the cgroup tree; firmware and securityfs not even readable.
  deny /sys/[^f]*/** wklx,
  deny /sys/f[^s]*/** wklx,
  deny /sys/fs/[^c]*/** wklx,
  deny /sys/fs/c[^g]*/** wklx,
  deny /sys/fs/cg[^r]*/** wklx,
  deny /sys/firmware/** rwklx,
  deny /sys/kernel/security/** rwklx,
}
`;
}

/**
 * Loads (or replaces) a profile in the kernel: writes `text` to a private temporary file and
 * runs `apparmor_parser -Kr <file>` through `run`. Throws failed-precondition naming
 * apparmor_parser when it is missing (package apparmor) and internal with its stderr when it fails.
 */
export async function installProfile(name: string, text: string, run: Runner = execRun, parser = findParser()): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "crio-apparmor-"));
  try {
    const file = join(dir, name);
    writeFileSync(file, text, { mode: 0o600 });
    await run([parser, "-Kr", file]);
  } catch (e) {
    if (e instanceof ExecError && e.exitCode === null) {
      throw new RuntimeError(
        "failed-precondition",
        `installing apparmor profile ${name}: apparmor_parser not found (install the apparmor package): ${e.stderr}`,
        { cause: e },
      );
    }
    const detail = e instanceof ExecError ? e.stderr.trim() || `exit ${e.exitCode}` : e instanceof Error ? e.message : String(e);
    throw new RuntimeError("internal", `installing apparmor profile ${name}: apparmor_parser failed: ${detail}`, { cause: e });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Options of ensureDefaultProfile (all injectable for tests). */
export interface EnsureOptions {
  /** AppArmor is on (default: apparmorEnabled(sys)). */
  enabled?: boolean;
  sys?: string;
  run?: Runner;
  parser?: string;
  log?: { info(msg: string): void };
}

/**
 * CRI-O's LoadProfile for the configured apparmor_profile: when AppArmor is on and the profile
 * is our default ("" counts as the default) and the kernel does not hold it yet, logs
 * `installing default apparmor profile: <name>` and installs it. Other names are used as they
 * are (validated at CreateContainer). Returns true when it installed; throws installProfile's errors.
 */
export async function ensureDefaultProfile(configured: string, o: EnsureOptions = {}): Promise<boolean> {
  const sys = o.sys ?? "/sys";
  if (!(o.enabled ?? apparmorEnabled(sys))) return false;
  const name = configured || DEFAULT_APPARMOR_PROFILE;
  if (name === "unconfined") {
    o.log?.info("AppArmor profile is unconfined which basically disables it");
    return false;
  }
  if (name !== DEFAULT_APPARMOR_PROFILE) {
    o.log?.info(`Using default AppArmor profile: ${name}`);
    return false;
  }
  if (profileLoaded(name, sys)) return false;
  o.log?.info(`installing default apparmor profile: ${name}`);
  await installProfile(name, defaultProfileText(name), o.run, o.parser);
  return true;
}

/** apparmor_parser's path: /sbin, /usr/sbin, then $PATH; the bare name when none has it (the spawn then fails). */
export function findParser(): string {
  return lookPath("apparmor_parser", ["/sbin", "/usr/sbin", process.env.PATH ?? ""].join(":")) ?? "apparmor_parser";
}

// --- internal ---

function readOr(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
