/**
 * What the node offers the containers' OCI specs, read once at daemon start: this process's
 * capability masks, oom_score_adj and seccomp (/proc/self), SELinux, the CPUs' thermal_throttle
 * dirs (masked in containers, as CRI-O does) and the device nodes under /dev.
 */
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import { kernelRelease } from "./process.ts";

/** The raw facts; container/spec/host.ts turns them into the spec builder's SpecHost. */
export interface HostProbe {
  /** /proc/self/status CapBnd and CapEff, hex masks ("000001ffffffffff"; "" when unreadable). */
  capBnd: string;
  capEff: string;
  /** This process's /proc/self/oom_score_adj (0 when unreadable). */
  oomScoreAdj: number;
  /** The kernel has seccomp (a Seccomp: line in /proc/self/status). */
  seccomp: boolean;
  /** SELinux is mounted (/sys/fs/selinux/enforce exists). */
  selinux: boolean;
  /** /sys/devices/system/cpu/cpu<N>/thermal_throttle dirs that exist. */
  thermalThrottle: string[];
  /** The kernel release ("6.1.0-18-amd64"). */
  kernel: string;
}

/** Reads the facts (each best effort). */
export function probeHost(): HostProbe {
  const status = readOr("/proc/self/status", "");
  return {
    capBnd: field(status, "CapBnd"),
    capEff: field(status, "CapEff"),
    oomScoreAdj: Number.parseInt(readOr("/proc/self/oom_score_adj", "0").trim(), 10) || 0,
    seccomp: /^Seccomp:/m.test(status),
    selinux: existsSync("/sys/fs/selinux/enforce"),
    thermalThrottle: thermalThrottle(),
    kernel: kernelRelease(),
  };
}

/** A device node as the OCI spec lists it (linux.devices). */
export interface DeviceNode {
  type: "c" | "b" | "p";
  path: string;
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

/** The device node at `path` (char, block or fifo); undefined for anything else; throws when it is missing. */
export function deviceOf(path: string): DeviceNode | undefined {
  const st = statSync(path, { bigint: true });
  const type = st.isCharacterDevice() ? "c" : st.isBlockDevice() ? "b" : st.isFIFO() ? "p" : undefined;
  if (!type) return undefined;
  const rdev = st.rdev;
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n));
  return { type, path, major, minor, fileMode: Number(st.mode & 0o777n), uid: Number(st.uid), gid: Number(st.gid) };
}

/** `path`'s device node, or every char and block device below it when it is a directory. */
export function devicesAt(path: string): DeviceNode[] {
  const st = statSync(path);
  if (st.isDirectory()) return walkDevices(path, new Set());
  const d = deviceOf(path);
  if (!d) throw new Error(`"${path}" is not a device node`);
  return [d];
}

/** The host's devices (privileged containers get them all), without the pseudo-terminal and shm dirs. */
export function hostDevices(): DeviceNode[] {
  return walkDevices("/dev", new Set(["/dev/pts", "/dev/shm", "/dev/fd", "/dev/mqueue", "/dev/.lxc", "/dev/.lxd-mounts", "/dev/.udev", "/dev/console"]));
}

/** Resolves symlinks of a host path; undefined when it does not exist. */
export function realpathOrUndefined(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

// --- internal ---

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return fallback;
  }
}

function field(status: string, name: string): string {
  return new RegExp(`^${name}:\\s*([0-9a-f]+)`, "m").exec(status)?.[1] ?? "";
}

function thermalThrottle(): string[] {
  const base = "/sys/devices/system/cpu";
  try {
    return readdirSync(base)
      .filter((n) => /^cpu\d+$/.test(n))
      .map((n) => join(base, n, "thermal_throttle"))
      .filter((p) => existsSync(p));
  } catch {
    return [];
  }
}

function walkDevices(dir: string, skip: Set<string>): DeviceNode[] {
  const out: DeviceNode[] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (skip.has(path)) continue;
    if (e.isDirectory()) out.push(...walkDevices(path, skip));
    else if (e.isCharacterDevice() || e.isBlockDevice()) {
      try {
        const d = deviceOf(path);
        if (d) out.push(d);
      } catch {
        // vanished while walking
      }
    }
  }
  return out;
}
