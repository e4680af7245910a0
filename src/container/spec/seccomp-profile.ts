import { invalid } from "../../errors.ts";
import type { Seccomp, SeccompArg, SeccompSyscall } from "../../oci/spec-types.ts";

/**
 * A seccomp profile in the Docker/containers-common JSON format (what `Localhost` profiles and
 * `seccomp_profile` files contain): an OCI-like profile plus `archMap`, `name`, `errno` names and
 * `includes`/`excludes` filters on capabilities, architectures and kernel versions.
 */
export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  defaultErrno?: string;
  architectures?: string[];
  archMap?: Array<{ architecture: string; subArchitectures?: string[] | null }> | null;
  flags?: string[] | null;
  listenerPath?: string;
  syscalls?: ProfileSyscall[] | null;
}

/** One rule of a profile. */
export interface ProfileSyscall {
  name?: string;
  names?: string[] | null;
  action: string;
  errnoRet?: number;
  errno?: string;
  args?: SeccompArg[] | null;
  includes?: ProfileFilter;
  excludes?: ProfileFilter;
  comment?: string;
}

/** Conditions of a rule: every listed cap/arch must (includes) or must not (excludes) hold. */
export interface ProfileFilter {
  caps?: string[] | null;
  arches?: string[] | null;
  minKernel?: string;
}

/** What a profile is compiled against: the container's bounding set and the node. */
export interface ProfileTarget {
  /** CAP_ names of the container's bounding set. */
  capabilities: readonly string[];
  /** Go architecture name: amd64, arm64, … */
  arch: string;
  /** Kernel release ("6.1.0-…"); rules with a higher minKernel are dropped. Unknown = keep. */
  kernel?: string;
}

/** Parses profile JSON text; a clear invalid-argument error names the source when it is not a profile. */
export function parseSeccompProfile(text: string, source: string): SeccompProfile {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw invalid(`seccomp profile "${source}" is not valid JSON: ${(e as Error).message}`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw invalid(`seccomp profile "${source}" is not a JSON object`);
  const p = v as SeccompProfile;
  if (typeof p.defaultAction !== "string" || !ACTIONS.has(p.defaultAction))
    throw invalid(`seccomp profile "${source}" has an invalid defaultAction ${JSON.stringify(p.defaultAction)}`);
  if (p.syscalls != null && !Array.isArray(p.syscalls)) throw invalid(`seccomp profile "${source}": syscalls is not a list`);
  for (const s of p.syscalls ?? []) {
    if (!s || typeof s.action !== "string" || !ACTIONS.has(s.action))
      throw invalid(`seccomp profile "${source}" has a rule with an invalid action ${JSON.stringify(s?.action)}`);
    if (!s.name && !(Array.isArray(s.names) && s.names.length > 0)) throw invalid(`seccomp profile "${source}" has a rule without syscall names`);
  }
  return p;
}

/** Compiles a profile to the OCI form for one container, evaluating its filters (moby's setupSeccomp). */
export function compileSeccomp(p: SeccompProfile, t: ProfileTarget): Seccomp {
  const native = ARCH_OF[t.arch];
  let architectures: string[] | undefined = p.architectures?.length ? [...p.architectures] : undefined;
  if (p.archMap?.length) {
    architectures = [];
    for (const a of p.archMap) if (a.architecture === native) architectures.push(a.architecture, ...(a.subArchitectures ?? []));
  }
  const caps = new Set(t.capabilities);
  const syscalls: SeccompSyscall[] = [];
  const seen = new Set<string>(); // a name under an identical action and args is listed once
  for (const s of p.syscalls ?? []) {
    if (!applies(s, caps, t)) continue;
    const key = `${s.action}/${s.errnoRet ?? s.errno ?? ""}/${JSON.stringify(s.args ?? [])}/`;
    const names = [...(s.name ? [s.name] : []), ...(s.names ?? [])].filter((n) => !seen.has(key + n));
    if (names.length === 0) continue;
    for (const n of names) seen.add(key + n);
    const rule: SeccompSyscall = { names, action: s.action };
    const errnoRet = s.errnoRet ?? (s.errno ? ERRNO[s.errno] : undefined);
    if (errnoRet !== undefined && (s.action === "SCMP_ACT_ERRNO" || s.action === "SCMP_ACT_TRACE")) rule.errnoRet = errnoRet;
    if (s.args?.length)
      rule.args = s.args.map((a) => ({ index: a.index, value: a.value, ...(a.valueTwo !== undefined ? { valueTwo: a.valueTwo } : {}), op: a.op }));
    syscalls.push(rule);
  }
  const out: Seccomp = { defaultAction: p.defaultAction };
  const defaultErrnoRet = p.defaultErrnoRet ?? (p.defaultErrno ? ERRNO[p.defaultErrno] : undefined);
  if (defaultErrnoRet !== undefined && p.defaultAction === "SCMP_ACT_ERRNO") out.defaultErrnoRet = defaultErrnoRet;
  if (architectures?.length) out.architectures = architectures;
  if (p.flags?.length) out.flags = [...p.flags];
  if (p.listenerPath) out.listenerPath = p.listenerPath;
  out.syscalls = syscalls;
  return out;
}

// --- internal ---

// biome-ignore format: a packed table of names, one per line would be hundreds of lines
const ACTIONS = new Set([
  "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
  "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
]);

const ARCH_OF: Record<string, string> = {
  amd64: "SCMP_ARCH_X86_64",
  "386": "SCMP_ARCH_X86",
  arm64: "SCMP_ARCH_AARCH64",
  arm: "SCMP_ARCH_ARM",
  mips64: "SCMP_ARCH_MIPS64",
  mips64le: "SCMP_ARCH_MIPSEL64",
  ppc64le: "SCMP_ARCH_PPC64LE",
  s390x: "SCMP_ARCH_S390X",
  riscv64: "SCMP_ARCH_RISCV64",
};

/** Arch names a profile's filters may use for the node's architecture. */
const ARCH_ALIASES: Record<string, string[]> = {
  amd64: ["amd64", "x86_64", "x32"],
  "386": ["386", "x86"],
  arm64: ["arm64", "aarch64", "arm"],
  arm: ["arm"],
  s390x: ["s390x", "s390"],
  ppc64le: ["ppc64le"],
  riscv64: ["riscv64"],
};

const ERRNO: Record<string, number> = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  ERANGE: 34,
  ENOSYS: 38,
  ENOTSUP: 95,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  EPROTONOSUPPORT: 93,
};

function applies(s: ProfileSyscall, caps: Set<string>, t: ProfileTarget): boolean {
  const arches = ARCH_ALIASES[t.arch] ?? [t.arch];
  const inc = s.includes;
  if (inc?.arches?.length && !inc.arches.some((a) => arches.includes(a))) return false;
  if (inc?.caps?.length && !inc.caps.every((c) => caps.has(c))) return false;
  if (inc?.minKernel && t.kernel && kernelLess(t.kernel, inc.minKernel)) return false;
  const exc = s.excludes;
  if (exc?.arches?.length && exc.arches.some((a) => arches.includes(a))) return false;
  if (exc?.caps?.length && exc.caps.some((c) => caps.has(c))) return false;
  return true;
}

function kernelLess(have: string, want: string): boolean {
  const a = have.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  const b = want.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < 2; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) < (b[i] ?? 0);
  return false;
}
