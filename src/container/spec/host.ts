import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { arch, release } from "node:os";
import { join } from "node:path";
import type { Device } from "../../oci/spec-types.ts";
import { apparmorEnabled, profileLoaded } from "../../sys/apparmor.ts";
import { cgroupFacts, detectCgroupLayout } from "../../sys/cgroup.ts";
import { ALL_CAPABILITIES } from "./security.ts";
import type { SpecHost, SpecIo } from "./types.ts";

/**
 * Reads the node facts the spec builder needs, once at daemon start: the daemon's capability
 * bounding set (/proc/self/status CapBnd), the lowest oom_score_adj it may hand out (its own value
 * unless it holds CAP_SYS_RESOURCE), AppArmor/SELinux/seccomp availability, the cgroup layout.
 */
export function detectSpecHost(o: { rro?: boolean } = {}): SpecHost {
  const status = readOr("/proc/self/status", "");
  const capBnd = capsFromHex(field(status, "CapBnd"));
  const capEff = capsFromHex(field(status, "CapEff"));
  const ownOom = Number.parseInt(readOr("/proc/self/oom_score_adj", "0").trim(), 10) || 0;
  const layout = detectCgroupLayout();
  return {
    capabilities: capBnd,
    minOomScoreAdj: capEff.includes("CAP_SYS_RESOURCE") ? -1000 : ownOom,
    apparmor: apparmorEnabled(),
    selinux: existsSync("/sys/fs/selinux/enforce"),
    seccomp: /^Seccomp:/m.test(status),
    cgroup: cgroupFacts(layout),
    arch: GO_ARCH[arch()] ?? arch(),
    rro: o.rro ?? false,
    extraMaskedPaths: thermalThrottle(),
    kernel: release(),
  };
}

/** The real file system behind SpecIo. */
export const realSpecIo: SpecIo = {
  readFile: (path) => readFileSync(path, "utf8"),
  devicesAt: (path) => {
    const st = statSync(path);
    if (st.isDirectory()) return walkDevices(path, new Set());
    const d = deviceOf(path);
    if (!d) throw new Error(`"${path}" is not a device node`);
    return [d];
  },
  hostDevices: () => walkDevices("/dev", new Set(["/dev/pts", "/dev/shm", "/dev/fd", "/dev/mqueue", "/dev/.lxc", "/dev/.lxd-mounts", "/dev/.udev", "/dev/console"])),
  realpath: (path) => realpathOrUndefined(path),
  apparmorLoaded: (name) => profileLoaded(name),
};

/** Resolves symlinks of a host path; undefined when it does not exist. */
export function realpathOrUndefined(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

/** Capability names of a /proc/<pid>/status capability mask ("000001fffeffffff"). */
export function capsFromHex(hex: string): string[] {
  let mask: bigint;
  try {
    mask = BigInt(`0x${hex || "0"}`);
  } catch {
    return [];
  }
  return ALL_CAPABILITIES.filter((_, i) => (mask >> BigInt(i)) & 1n);
}

// --- internal ---

const GO_ARCH: Record<string, string> = { x64: "amd64", ia32: "386", arm64: "arm64", arm: "arm", s390x: "s390x", ppc64: "ppc64le", riscv64: "riscv64" };

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

function deviceOf(path: string): Device | undefined {
  const st = statSync(path, { bigint: true });
  const type = st.isCharacterDevice() ? "c" : st.isBlockDevice() ? "b" : st.isFIFO() ? "p" : undefined;
  if (!type) return undefined;
  const rdev = st.rdev;
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n));
  return { type, path, major, minor, fileMode: Number(st.mode & 0o777n), uid: Number(st.uid), gid: Number(st.gid) };
}

function walkDevices(dir: string, skip: Set<string>): Device[] {
  const out: Device[] = [];
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
