import type { Capability, SecurityProfile, SELinuxOption } from "../../gen/runtime/v1/api_pb.ts";
import { invalid } from "../../errors.ts";
import type { Capabilities } from "../../oci/spec-types.ts";

/** Every capability the kernel knows, by number (CAP_LAST_CAP = 40 on Linux ≥ 5.9). */
// biome-ignore format: a packed table of names, one per line would be hundreds of lines
export const ALL_CAPABILITIES = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
  "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
  "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
  "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
  "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
] as const;

/** CRI-O's default_capabilities. */
// biome-ignore format: a packed table of names, one per line would be hundreds of lines
export const CRIO_DEFAULT_CAPABILITIES = [
  "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "KILL",
];

/** containers-common's masked paths plus the two CRI-O adds. */
// biome-ignore format: a packed table of names, one per line would be hundreds of lines
export const DEFAULT_MASKED_PATHS = [
  "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
  "/proc/sched_debug", "/proc/scsi", "/proc/timer_list", "/proc/timer_stats", "/sys/devices/virtual/powercap",
  "/sys/firmware", "/sys/fs/selinux",
];

/** The runtime-tools default read-only paths. */
export const DEFAULT_READONLY_PATHS = ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/** Normalises "chown", "CAP_CHOWN", "cap_chown" to "CAP_CHOWN". */
export function capName(c: string): string {
  const u = c.trim().toUpperCase();
  return u.startsWith("CAP_") ? u : `CAP_${u}`;
}

/** Options of containerCapabilities. */
export interface CapabilityInput {
  caps?: Capability;
  defaults: readonly string[];
  /** What the daemon holds (its bounding set): nothing beyond it can be granted. */
  host: readonly string[];
  addInheritable: boolean;
  privileged: boolean;
}

/**
 * CRI-O's SpecSetupCapabilities: the default set unless add or drop says "ALL"; "ALL" in add means
 * every capability, "ALL" in drop clears everything first; then individual adds and drops. Ambient
 * capabilities come only from add_ambient_capabilities (they are also made inheritable). Privileged
 * containers get everything the daemon holds. Capabilities the daemon lacks are left out with a
 * warning, as asking for them would make the runtime fail.
 */
export function containerCapabilities(c: CapabilityInput): { capabilities: Capabilities; warnings: string[] } {
  const warnings: string[] = [];
  const host = new Set(c.host.map(capName));
  const order = (s: Set<string>) => ALL_CAPABILITIES.filter((x) => s.has(x));
  if (c.privileged) {
    const all = order(host);
    return { capabilities: { bounding: all, effective: all, inheritable: all, permitted: all, ambient: all }, warnings };
  }
  const add = c.caps?.addCapabilities ?? [];
  const drop = c.caps?.dropCapabilities ?? [];
  const isAll = (x: string) => x.trim().toUpperCase() === "ALL";
  const addAll = add.some(isAll);
  const dropAll = drop.some(isAll);
  const set = new Set<string>();
  if (addAll) for (const x of ALL_CAPABILITIES) set.add(x);
  const wanted = [...add.filter((x) => !isAll(x))];
  if (!addAll && !dropAll) wanted.push(...c.defaults);
  for (const raw of wanted) set.add(known(raw, "add"));
  for (const raw of drop) if (!isAll(raw)) set.delete(known(raw, "drop"));
  for (const x of [...set]) {
    if (host.has(x)) continue;
    set.delete(x);
    if (!addAll) warnings.push(`capability ${x} is not held by the runtime and was not granted`);
  }
  const granted = order(set);
  const ambient = new Set<string>();
  for (const raw of c.caps?.addAmbientCapabilities ?? []) {
    const x = known(raw, "add as ambient");
    if (set.has(x)) ambient.add(x);
    else warnings.push(`ambient capability ${x} is not in the container's permitted set and was ignored`);
  }
  const inheritable = c.addInheritable ? granted : order(ambient);
  return {
    capabilities: { bounding: granted, effective: granted, inheritable, permitted: granted, ambient: order(ambient) },
    warnings,
  };
}

/**
 * Masked paths as CRI-O sets them: none when privileged, and none when the CRI lists none — the
 * kubelet sends its defaults for ProcMount Default and an empty list for Unmasked (nested
 * containers need a fully visible /proc); otherwise the defaults merged with the CRI's list
 * (sorted, deduplicated).
 */
export function maskedPaths(cri: readonly string[], privileged: boolean, extra: readonly string[] = []): string[] {
  if (privileged || cri.length === 0) return [];
  return [...new Set([...DEFAULT_MASKED_PATHS, ...extra, ...cri])].sort();
}

/** Read-only paths: the CRI's list (the kubelet sends the defaults, or none for Unmasked); none when privileged. */
export function readonlyPaths(cri: readonly string[], privileged: boolean): string[] {
  if (privileged) return [];
  return [...new Set(cri)];
}

/**
 * The AppArmor profile name, or undefined when AppArmor is off or the container is privileged.
 * RuntimeDefault (and nothing set, or the deprecated "runtime/default") = the configured default
 * profile; Localhost = its ref without "localhost/"; a bare name in the deprecated field is that
 * profile. As in CRI-O, every profile but "unconfined" must be loaded in the kernel: with `loaded`
 * given, a missing one is invalid-argument "apparmor profile <name> not loaded".
 */
export function apparmorProfile(
  p: SecurityProfile | undefined,
  deprecated: string,
  o: { enabled: boolean; privileged: boolean; defaultProfile: string; loaded?: (name: string) => boolean },
): string | undefined {
  if (!o.enabled || o.privileged) return undefined;
  let name: string;
  if (p) {
    if (p.profileType === 1) return "unconfined";
    if (p.profileType === 2) {
      name = p.localhostRef.replace(/^localhost\//, "");
      if (!name) throw invalid("apparmor profile type Localhost requires a localhost_ref");
    } else name = o.defaultProfile;
  } else if (deprecated === "unconfined") return "unconfined";
  else if (deprecated.startsWith("localhost/")) {
    name = deprecated.slice("localhost/".length);
    if (!name) throw invalid(`apparmor profile "${deprecated}" names no profile`);
  } else name = deprecated === "" || deprecated === "runtime/default" ? o.defaultProfile : deprecated;
  if (name !== "unconfined" && o.loaded && !o.loaded(name)) throw invalid(`apparmor profile ${name} not loaded`);
  return name;
}

/**
 * The host as the spec builders see it once crio.conf has had its say (CRI-O): SELinux labels only
 * when `selinux = true` AND the kernel has SELinux enabled; AppArmor follows the kernel alone (its
 * profile comes from apparmor_profile, see apparmorProfile).
 */
export function configuredHost<H extends { selinux: boolean }>(detected: H, runtime: { selinux: boolean }): H {
  return { ...detected, selinux: detected.selinux && runtime.selinux };
}

/** SELinux process and mount labels from the CRI options, only when SELinux is enabled. */
export function selinuxLabels(o: SELinuxOption | undefined, enabled: boolean, privileged: boolean): { process?: string; mount?: string } {
  if (!enabled || !o || privileged) return {};
  if (!o.user && !o.role && !o.type && !o.level) return {};
  const level = o.level || "s0";
  return {
    process: `${o.user || "system_u"}:${o.role || "system_r"}:${o.type || "container_t"}:${level}`,
    mount: `${o.user || "system_u"}:object_r:container_file_t:${level}`,
  };
}

// --- internal ---

function known(raw: string, what: string): string {
  const x = capName(raw);
  if (!(ALL_CAPABILITIES as readonly string[]).includes(x)) throw invalid(`unknown capability "${x}" to ${what}`);
  return x;
}
