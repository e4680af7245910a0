import type { SecurityProfile } from "../../gen/runtime/v1/api_pb.ts";
import { invalid, messageOf, precondition } from "../../errors.ts";
import type { Seccomp } from "../../oci/spec-types.ts";
import { DEFAULT_SECCOMP_PROFILE } from "./seccomp-default.ts";
import { compileSeccomp, parseSeccompProfile, type SeccompProfile } from "./seccomp-profile.ts";

/** Options of containerSeccomp. */
export interface SeccompInput {
  profile?: SecurityProfile;
  /** The deprecated seccomp_profile_path ("runtime/default", "unconfined", "localhost/<path>"). */
  deprecatedPath: string;
  privileged: boolean;
  /** The kernel and the runtime support seccomp. */
  enabled: boolean;
  /** The container's bounding set (cap-conditional rules are decided on it). */
  capabilities: readonly string[];
  arch: string;
  kernel?: string;
  /** Replaces the built-in RuntimeDefault profile (seccomp_profile of the configuration). */
  defaultProfile?: SeccompProfile;
  /** seccomp_use_default_when_empty: a container that names no profile gets RuntimeDefault. */
  useDefaultWhenEmpty?: boolean;
  readFile: (path: string) => string;
}

/**
 * The container's seccomp filter and its reference ("RuntimeDefault", "Unconfined" or the
 * localhost path): none for privileged containers, for Unconfined and for an absent profile (the
 * CRI's "unset" means unconfined, which critest checks) unless seccomp_use_default_when_empty;
 * RuntimeDefault = our default profile;
 * Localhost = the file at localhost_ref, read and parsed here (invalid-argument when it is
 * missing or is not a profile).
 */
export function containerSeccomp(s: SeccompInput): { seccomp?: Seccomp; ref: string } {
  if (s.privileged) return { ref: "Unconfined" };
  const want = !s.profile && !s.deprecatedPath && s.useDefaultWhenEmpty ? ({ kind: "default" } as const) : selectProfile(s.profile, s.deprecatedPath);
  if (want.kind === "unconfined") return { ref: "Unconfined" };
  if (!s.enabled) {
    if (want.kind === "localhost") throw precondition("seccomp is not enabled, cannot run with a custom profile");
    return { ref: "Unconfined" };
  }
  const target = { capabilities: s.capabilities, arch: s.arch, kernel: s.kernel };
  if (want.kind === "default") return { seccomp: compileSeccomp(s.defaultProfile ?? DEFAULT_SECCOMP_PROFILE, target), ref: "RuntimeDefault" };
  let text: string;
  try {
    text = s.readFile(want.path);
  } catch (e) {
    throw invalid(`unable to load local seccomp profile "${want.path}": ${messageOf(e)}`);
  }
  return { seccomp: compileSeccomp(parseSeccompProfile(text, want.path), target), ref: want.path };
}

// --- internal ---

type Want = { kind: "unconfined" } | { kind: "default" } | { kind: "localhost"; path: string };

function selectProfile(p: SecurityProfile | undefined, deprecated: string): Want {
  if (p) {
    if (p.profileType === 1) return { kind: "unconfined" };
    if (p.profileType === 2) {
      const path = p.localhostRef.replace(/^localhost\//, "");
      if (!path.startsWith("/")) throw invalid(`seccomp localhost_ref "${p.localhostRef}" is not an absolute path`);
      return { kind: "localhost", path };
    }
    return { kind: "default" };
  }
  if (deprecated === "" || deprecated === "unconfined") return { kind: "unconfined" };
  if (deprecated === "runtime/default" || deprecated === "docker/default") return { kind: "default" };
  if (deprecated.startsWith("localhost/")) return selectProfile({ profileType: 2, localhostRef: deprecated } as SecurityProfile, "");
  throw invalid(`unknown seccomp profile path "${deprecated}": expected runtime/default, docker/default, unconfined or localhost/<path>`);
}
