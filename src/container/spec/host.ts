import { readFileSync } from "node:fs";
import { arch } from "node:os";
import { apparmorEnabled, profileLoaded } from "../../sys/apparmor.ts";
import { cgroupFacts, detectCgroupLayout } from "../../sys/cgroup.ts";
import { devicesAt, hostDevices, probeHost, realpathOrUndefined } from "../../sys/host-probe.ts";
import { ALL_CAPABILITIES } from "./security.ts";
import type { SpecHost, SpecIo } from "./types.ts";

/**
 * The node facts the spec builder needs, once at daemon start (read by sys/host-probe.ts): the
 * daemon's capability bounding set, the lowest oom_score_adj it may hand out (its own value
 * unless it holds CAP_SYS_RESOURCE), AppArmor/SELinux/seccomp availability, the cgroup layout.
 */
export function detectSpecHost(o: { rro?: boolean } = {}): SpecHost {
  const p = probeHost();
  const layout = detectCgroupLayout();
  return {
    capabilities: capsFromHex(p.capBnd),
    minOomScoreAdj: capsFromHex(p.capEff).includes("CAP_SYS_RESOURCE") ? -1000 : p.oomScoreAdj,
    apparmor: apparmorEnabled(),
    selinux: p.selinux,
    seccomp: p.seccomp,
    cgroup: cgroupFacts(layout),
    arch: GO_ARCH[arch()] ?? arch(),
    rro: o.rro ?? false,
    extraMaskedPaths: p.thermalThrottle,
    kernel: p.kernel,
  };
}

/** The real file system behind SpecIo. */
export const realSpecIo: SpecIo = {
  readFile: (path) => readFileSync(path, "utf8"),
  devicesAt,
  hostDevices,
  realpath: realpathOrUndefined,
  apparmorLoaded: (name) => profileLoaded(name),
};

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
