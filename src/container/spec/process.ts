import type { KeyValue } from "../../gen/runtime/v1/api_pb.ts";
import { invalid } from "../../errors.ts";
import { RLIM_INFINITY, type Rlimit } from "../../oci/spec-types.ts";
import type { ImageConfig } from "./types.ts";

/** PATH given to a container whose image and CRI config set none. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The kubelet/CRI-O merge of command and args with the image: a CRI command replaces the image's
 * Entrypoint and drops its Cmd; CRI args alone replace Cmd and keep Entrypoint; with neither, it is
 * Entrypoint + Cmd. Nothing at all is invalid-argument "no command specified".
 */
export function processArgs(command: readonly string[], args: readonly string[], image: ImageConfig): string[] {
  let cmd: readonly string[] = command;
  let rest: readonly string[] = args;
  if (cmd.length === 0) {
    if (rest.length === 0) rest = image.Cmd ?? [];
    cmd = image.Entrypoint ?? [];
  }
  const argv = [...cmd, ...rest];
  if (argv.length === 0) throw invalid("no command specified");
  // The kernel cannot run these (ENAMETOOLONG, E2BIG), and the runtime's error would echo an
  // executable name of any size back through the container's stderr pipe before it exits.
  const exe = UTF8_BYTES.encode(argv[0]!).length;
  if (exe >= PATH_MAX) throw invalid(`the command's executable is ${exe} bytes long: a path must be shorter than ${PATH_MAX} bytes`);
  const long = argv.findIndex((a) => UTF8_BYTES.encode(a).length >= MAX_ARG_STRLEN);
  if (long >= 0) throw invalid(`argument ${long} of the command is longer than the kernel takes (${MAX_ARG_STRLEN} bytes)`);
  return argv;
}

/** Linux's PATH_MAX (with its NUL) and MAX_ARG_STRLEN (one argument or environment string, with its NUL). */
const PATH_MAX = 4096;
const MAX_ARG_STRLEN = 131072;
const UTF8_BYTES = new TextEncoder();

/** Inputs of processEnv. */
export interface EnvInput {
  tty: boolean;
  hostname: string;
  defaults: readonly string[];
  image: readonly string[];
  cri: readonly KeyValue[];
}

/**
 * The container's environment, in CRI-O's order and precedence: TERM=xterm (tty), HOSTNAME, the
 * node's default_env, then the image's env overridden by the CRI env (keys keep their first
 * position). PATH is kept from the image; the standard PATH is added when nothing set one.
 */
export function processEnv(e: EnvInput): string[] {
  const env = new Map<string, string>();
  const set = (kv: string) => {
    const i = kv.indexOf("=");
    const k = i < 0 ? kv : kv.slice(0, i);
    if (k === "") return;
    env.set(k, i < 0 ? "" : kv.slice(i + 1));
  };
  if (e.tty) set("TERM=xterm");
  set(`HOSTNAME=${e.hostname}`);
  e.defaults.forEach(set);
  const criKeys = new Set(e.cri.filter((kv) => kv.key !== "").map((kv) => kv.key));
  for (const kv of e.cri) if (kv.key !== "") set(`${kv.key}=${UTF8.decode(kv.value)}`);
  for (const kv of e.image) {
    const k = kv.split("=", 1)[0] ?? "";
    if (!criKeys.has(k)) set(kv);
  }
  if (!env.has("PATH")) env.set("PATH", DEFAULT_PATH);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

/** The working directory: the CRI's, else the image's, else "/"; it must be absolute. */
export function processCwd(criWorkingDir: string, image: ImageConfig): string {
  const cwd = criWorkingDir || image.WorkingDir || "/";
  if (!cwd.startsWith("/")) throw invalid(`working directory "${cwd.slice(0, 200)}" is not an absolute path`);
  if (UTF8_BYTES.encode(cwd).length >= PATH_MAX) throw invalid(`the working directory is longer than a path can be (${PATH_MAX} bytes)`);
  return cwd;
}

/** Parses default_ulimits entries ("nofile=1024:2048", "nproc=4096") into OCI rlimits. */
export function parseUlimits(entries: readonly string[]): Rlimit[] {
  const out: Rlimit[] = [];
  for (const entry of entries) {
    const m = /^([a-z_]+)=(-?\d+)(?::(-?\d+))?$/.exec(entry.trim());
    if (!m) throw invalid(`invalid ulimit "${entry}": expected name=soft[:hard]`);
    const name = m[1] as string;
    const type = ULIMITS[name];
    if (!type) throw invalid(`invalid ulimit "${entry}": unknown resource "${name}"`);
    const soft = toLimit(m[2] as string);
    const hard = m[3] === undefined ? soft : toLimit(m[3]);
    if (soft > hard) throw invalid(`invalid ulimit "${entry}": soft limit exceeds the hard limit`);
    out.push({ type, soft, hard });
  }
  return out;
}

/** Parses a stop signal ("SIGTERM", "TERM", "15", "SIGRTMIN+3") into its canonical name. */
export function stopSignalName(criSignal: number, imageSignal: string | undefined): string {
  if (criSignal > 0) {
    const n = CRI_SIGNALS[criSignal];
    if (n) return n;
  }
  if (imageSignal) {
    const s = imageSignal.trim().toUpperCase();
    if (/^\d+$/.test(s)) return NUMBERED[Number(s)] ?? "SIGTERM";
    return s.startsWith("SIG") ? s : `SIG${s}`;
  }
  return "SIGTERM";
}

// --- internal ---

const UTF8 = new TextDecoder();

const ULIMITS: Record<string, string> = {
  core: "RLIMIT_CORE",
  cpu: "RLIMIT_CPU",
  data: "RLIMIT_DATA",
  fsize: "RLIMIT_FSIZE",
  locks: "RLIMIT_LOCKS",
  memlock: "RLIMIT_MEMLOCK",
  msgqueue: "RLIMIT_MSGQUEUE",
  nice: "RLIMIT_NICE",
  nofile: "RLIMIT_NOFILE",
  nproc: "RLIMIT_NPROC",
  rss: "RLIMIT_RSS",
  rtprio: "RLIMIT_RTPRIO",
  rttime: "RLIMIT_RTTIME",
  sigpending: "RLIMIT_SIGPENDING",
  stack: "RLIMIT_STACK",
  as: "RLIMIT_AS",
};

function toLimit(s: string): number {
  const n = Number(s);
  // -1 means unlimited; the bundle writer turns the marker into 2^64-1 (JSON numbers cannot carry it).
  return n < 0 ? RLIM_INFINITY : n;
}

/** CRI Signal enum value → name (api.proto enum Signal). */
const CRI_SIGNALS: Record<number, string> = {
  1: "SIGABRT",
  2: "SIGALRM",
  3: "SIGBUS",
  4: "SIGCHLD",
  5: "SIGCLD",
  6: "SIGCONT",
  7: "SIGFPE",
  8: "SIGHUP",
  9: "SIGILL",
  10: "SIGINT",
  11: "SIGIO",
  12: "SIGIOT",
  13: "SIGKILL",
  14: "SIGPIPE",
  15: "SIGPOLL",
  16: "SIGPROF",
  17: "SIGPWR",
  18: "SIGQUIT",
  19: "SIGSEGV",
  20: "SIGSTKFLT",
  21: "SIGSTOP",
  22: "SIGSYS",
  23: "SIGTERM",
  24: "SIGTRAP",
  25: "SIGTSTP",
  26: "SIGTTIN",
  27: "SIGTTOU",
  28: "SIGURG",
  29: "SIGUSR1",
  30: "SIGUSR2",
  31: "SIGVTALRM",
  32: "SIGWINCH",
  33: "SIGXCPU",
  34: "SIGXFSZ",
  35: "SIGRTMIN",
  ...Object.fromEntries(Array.from({ length: 15 }, (_, i) => [36 + i, `SIGRTMIN+${i + 1}`])),
  ...Object.fromEntries(Array.from({ length: 14 }, (_, i) => [51 + i, `SIGRTMAX-${14 - i}`])),
  65: "SIGRTMAX",
};

const NUMBERED: Record<number, string> = {
  1: "SIGHUP",
  2: "SIGINT",
  3: "SIGQUIT",
  4: "SIGILL",
  5: "SIGTRAP",
  6: "SIGABRT",
  7: "SIGBUS",
  8: "SIGFPE",
  9: "SIGKILL",
  10: "SIGUSR1",
  11: "SIGSEGV",
  12: "SIGUSR2",
  13: "SIGPIPE",
  14: "SIGALRM",
  15: "SIGTERM",
  17: "SIGCHLD",
  18: "SIGCONT",
  19: "SIGSTOP",
  20: "SIGTSTP",
  21: "SIGTTIN",
  22: "SIGTTOU",
  28: "SIGWINCH",
};
