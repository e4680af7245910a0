/**
 * Pinned pod namespaces (net, ipc, uts, and user for pods with `hostUsers: false`): namespaces bind-mounted onto files so they outlive every
 * process, as CRI-O's `pinns` helper does. The daemon never unshares itself (a Bun process is
 * multi-threaded; see DESIGN.md), so ONE child process does all the work:
 *
 *   unshare --net=<dir>/netns/<id> --ipc=<dir>/ipcns/<id> --uts=<dir>/utsns/<id> -- /bin/sh -c SCRIPT …
 *
 * (CRI-O's pinns layout: `<namespaces_dir>/<kind>ns/<id>`.)
 *
 * util-linux `unshare` creates the namespaces and bind-mounts them onto the files; the shell, which
 * already lives inside them, brings `lo` up (`ip link set lo up`), writes the hostname to
 * /proc/sys/kernel/hostname and the sysctls to /proc/sys/… (/proc/sys/net, kernel/shm*, kernel/msg*,
 * kernel/sem, fs/mqueue and kernel/hostname reflect the namespaces of the writing process).
 *
 * The pin directory is made a private bind mount of itself first, so the nsfs mounts do not
 * propagate into (and are not kept alive by) mount namespaces that copy the host's tree.
 * Unpinning is umount2(MNT_DETACH) through bun:ffi plus unlink, and is idempotent.
 *
 * With a user namespace the one unshare(2) creates it first, so the net, ipc and uts namespaces
 * are owned by it (sysfs, mqueue and sysctls inside the pod need that). Its mappings are written
 * by the daemon (userns.ts), and since a process inside has no capabilities once it is not root
 * there, lo, the hostname and the sysctls are then set by `nsenter` from the initial user
 * namespace (root there may act in every namespace below it), IPC sysctls as the pod's root (the
 * kernel lets only that user write them). `--mount` makes unshare bind the files from a child forked before the unshare (a
 * process already in the new user namespace may not mount on the host); that mount namespace
 * dies with the helper.
 */
import { mkdirSync, readdirSync, realpathSync, writeFileSync, existsSync } from "node:fs";
import { mkdir, realpath, stat, unlink, writeFile } from "node:fs/promises";
import { dirname, join, delimiter } from "node:path";
import { RuntimeError, invalid } from "../errors.ts";
import { run, runRaw, ExecError } from "./exec.ts";
import { cstr, daemonLibc, errno } from "./libc.ts";
import { lookPathCached } from "./look-path.ts";
import { readMountinfo, readMountinfoAsync, umount2Async } from "./mount.ts";
import { spawnInUserns, type IdMap } from "./userns.ts";

/** Which namespaces to pin, and what to set inside them. */
export interface PinOptions {
  net?: boolean;
  ipc?: boolean;
  uts?: boolean;
  /** Set in the new UTS namespace (requires uts). */
  hostname?: string;
  /** Namespaced sysctls ("net.ipv4.ip_unprivileged_port_start" → "0"); each needs its namespace pinned. */
  sysctls?: Record<string, string>;
  /** A user namespace with exactly these mappings, owning the other pinned namespaces. */
  user?: { uids: readonly IdMap[]; gids: readonly IdMap[] };
}

/** Paths of the pinned namespace files (only the kinds that were asked for). */
export interface PinnedNamespaces {
  net?: string;
  ipc?: string;
  uts?: string;
  user?: string;
}

/** The kinds of pinned namespace, in the order they are listed and removed. */
export const PIN_KINDS = ["net", "ipc", "uts", "user"] as const;

/** Pins new net/ipc/uts (and user) namespaces under `dir` (<dir>/<kind>ns/<id>, CRI-O's layout); undone on failure. */
export async function pinNamespaces(dir: string, id: string, o: PinOptions): Promise<PinnedNamespaces> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id)) throw invalid(`invalid namespace pin id "${id}"`);
  if (o.user) return pinWithUserns(dir, id, o, o.user);
  const kinds = (["net", "ipc", "uts"] as const).filter((k) => o[k]);
  if (kinds.length === 0) return {};
  if (o.hostname !== undefined && !o.uts) throw invalid("a hostname needs a pinned uts namespace");
  if (o.hostname !== undefined && (o.hostname.length > 64 || !/^[^\x00-\x20/]*$/.test(o.hostname))) throw invalid(`invalid hostname "${o.hostname}"`);
  const sysctls = Object.entries(o.sysctls ?? {}).map(([k, v]) => [k, sysctlPath(k, o), String(v)] as const);

  const tools = requireTools(o.net ? ["unshare", "ip"] : ["unshare"]);
  await mkdir(dir, { recursive: true, mode: 0o711 });
  dir = await realpath(dir); // mountinfo shows resolved paths
  await ensurePrivateMount(dir);
  const paths: PinnedNamespaces = {};
  // a pin file that does not exist is no mount point: the table is read only when one exists
  const existing = kinds.map((k) => join(dir, pinDir(k), id)).filter((p) => existsSync(p));
  const mounted = existing.length ? await mountPointsAsync() : new Set<string>();
  for (const k of kinds) {
    const p = join(dir, pinDir(k), id);
    if (mounted.has(p)) throw new RuntimeError("already-exists", `${k} namespace for "${id}" is already pinned at ${p}`);
  }
  for (const k of kinds) {
    await mkdir(join(dir, pinDir(k)), { recursive: true, mode: 0o711 });
    await writeFile((paths[k] = join(dir, pinDir(k), id)), "", { mode: 0o444 });
  }
  const argv = [tools.unshare!, ...kinds.map((k) => `--${k}=${paths[k]}`), "--", "/bin/sh", "-c", SCRIPT, "pin"];
  argv.push(o.net ? tools.ip! : "", o.hostname ?? "");
  for (const t of sysctls) argv.push(...t);
  const r = await runRaw(argv, { timeoutMs: 30_000 });
  if (r.code !== 0) {
    const undo = await undoPins(paths);
    throw new RuntimeError("internal", `pin namespaces of "${id}": ${tools.unshare} failed (exit ${r.code ?? "?"}): ${r.stderr.trim().slice(-2000)}${undo}`);
  }
  return paths;
}

/**
 * Unmounts (MNT_DETACH) and removes pinned namespace files; missing or unmounted files are fine.
 * The unmount is tried without reading the mount table (EINVAL: not a mount point, ENOENT: no
 * file) and runs off the event loop (sys/mount.ts umount2Async).
 */
export async function unpinNamespaces(paths: PinnedNamespaces): Promise<void> {
  const failures: string[] = [];
  for (const p of PIN_KINDS.map((k) => paths[k])) {
    if (!p) continue;
    const err = await umount2Async(p, MNT_DETACH);
    if (err !== 0 && err !== EINVAL && err !== ENOENT && isMountPoint(p)) {
      failures.push(`umount ${p}: errno ${err}`);
      continue;
    }
    try {
      await unlink(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") failures.push(`remove ${p}: ${(e as Error).message}`);
    }
  }
  if (failures.length) throw new RuntimeError("internal", `unpin namespaces: ${failures.join("; ")}`);
}

/**
 * Undoes a failed pin; returns "" or, when the undo failed too, a sentence for the caller's error
 * (what is left mounted is named there, not lost: sys/ does not log).
 */
async function undoPins(paths: PinnedNamespaces): Promise<string> {
  return unpinNamespaces(paths).then(
    () => "",
    (e: unknown) => `; undoing it failed too, left behind: ${(e as Error).message}`,
  );
}

/** True when `path` is a live pinned namespace (a mount point, as nsfs bind mounts are). */
export function isNamespacePinned(path: string): boolean {
  return existsSync(path) && isMountPoint(path);
}

/**
 * isNamespacePinned for many paths with the mount table read once (recovery of a node's pods:
 * reading it per path cost ~0.65 s of CPU with 110 pods), and only when a path exists: a node
 * with no pods (or none pinned) does not read it at all.
 */
export function namespacePinCheck(): (path: string) => boolean {
  let mounts: Set<string> | undefined;
  return (path) => existsSync(path) && (mounts ??= mountPoints()).has(path);
}

/**
 * isNamespacePinned for pod teardown, without the mount table: a pin file with a namespace
 * mounted on it is an nsfs inode, on another device than its directory (both stat'ed on the
 * thread pool).
 */
export async function isNamespacePinnedAsync(path: string): Promise<boolean> {
  try {
    const [file, parent] = await Promise.all([stat(path), stat(dirname(path))]);
    return file.dev !== parent.dev;
  } catch {
    return false;
  }
}

/** The namespace files under `dir` (as pinNamespaces lays them out), by id; mounted or not. */
export function listPinned(dir: string): Map<string, PinnedNamespaces> {
  const out = new Map<string, PinnedNamespaces>();
  let real: string;
  try {
    real = realpathSync(dir); // the paths pinNamespaces recorded (and mountinfo shows)
  } catch {
    return out;
  }
  // <kind>ns/ (CRI-O's layout), and <kind>/ as earlier versions of this runtime laid pins out
  for (const k of PIN_KINDS)
    for (const sub of [pinDir(k), k]) {
      let ids: string[];
      try {
        ids = readdirSync(join(real, sub));
      } catch {
        continue;
      }
      for (const id of ids) out.set(id, { ...out.get(id), [k]: join(real, sub, id) });
    }
  return out;
}

/** Undoes the private bind mount of a pin directory (tests, uninstall); pins inside are detached too. */
export async function releasePinDir(dir: string): Promise<void> {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return;
  }
  privateDirs.delete(real);
  if (!isMountPoint(real) || daemonLibc().umount2(cstr(real), MNT_DETACH) === 0) return;
  const err = errno();
  if (isMountPoint(real)) throw new RuntimeError("internal", `umount ${real}: errno ${err}`);
}

/**
 * Undoes the private bind mount of a pin directory when no namespace is pinned below it (daemon
 * stop, wipe): a stopped daemon leaves no mount of its own, while pods that outlive it keep theirs
 * (and the directory's mount, which holds them). Returns false when pins remain.
 */
export async function releaseIdlePinDir(dir: string): Promise<boolean> {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return true;
  }
  for (const m of mountPoints()) if (m.startsWith(real + "/")) return false;
  await releasePinDir(real);
  return true;
}

/** argv that runs `argv` inside the given pinned namespaces (nsenter from util-linux). */
export function nsenterCommand(ns: PinnedNamespaces, argv: string[]): string[] {
  const { nsenter } = requireTools(["nsenter"]);
  const flags = (["net", "ipc", "uts"] as const).filter((k) => ns[k]).map((k) => `--${k}=${ns[k]}`);
  return [nsenter!, ...flags, "--", ...argv];
}

/** Resolves the helper binaries by name; throws failed-precondition naming the package when one is missing. */
export function requireTools(names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const missing: string[] = [];
  for (const n of names) {
    const p = which(n);
    if (p) out[n] = p;
    else missing.push(`${n} (${PACKAGE_OF[n] ?? n})`);
  }
  if (missing.length) throw new RuntimeError("failed-precondition", `pod namespaces need ${missing.join(", ")}: not found in PATH or ${SBIN.join(":")}`);
  return out;
}

// --- internal ---

/** The subdirectory of a namespace kind: "netns", "ipcns", "utsns" (pinns's names). */
function pinDir(kind: string): string {
  return `${kind}ns`;
}

/** pinNamespaces with a user namespace: unshare + mappings, then nsenter for lo, hostname and sysctls. */
async function pinWithUserns(dir: string, id: string, o: PinOptions, user: NonNullable<PinOptions["user"]>): Promise<PinnedNamespaces> {
  const kinds = (["net", "ipc", "uts", "user"] as const).filter((k) => k === "user" || o[k]);
  if (o.hostname !== undefined && !o.uts) throw invalid("a hostname needs a pinned uts namespace");
  if (o.hostname !== undefined && (o.hostname.length > 64 || !/^[^\x00-\x20/]*$/.test(o.hostname))) throw invalid(`invalid hostname "${o.hostname}"`);
  const sysctls = Object.entries(o.sysctls ?? {}).map(([k, v]) => [k, sysctlPath(k, o), String(v)] as const);
  const tools = requireTools(["unshare", "nsenter", ...(o.net ? ["ip"] : [])]);
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  dir = realpathSync(dir);
  await ensurePrivateMount(dir);
  const mounted = mountPoints();
  const paths: PinnedNamespaces = {};
  for (const k of kinds) {
    const p = join(dir, pinDir(k), id);
    if (mounted.has(p)) throw new RuntimeError("already-exists", `${k} namespace for "${id}" is already pinned at ${p}`);
  }
  for (const k of kinds) {
    mkdirSync(join(dir, pinDir(k)), { recursive: true, mode: 0o711 });
    writeFileSync((paths[k] = join(dir, pinDir(k), id)), "", { mode: 0o444 });
  }
  try {
    const child = await spawnInUserns(tools.unshare!, ["--mount", ...kinds.map((k) => `--${k}=${paths[k]}`)], user.uids, user.gids);
    await child.finish();
    // IPC (and mqueue) sysctls of a namespace owned by another user namespace are writable by
    // that namespace's root only; /proc/sys/kernel/hostname by host root only: two passes.
    const ipcOnly = (t: readonly [string, string, string]) => /^(kernel\/(shm|msg|sem)|fs\/mqueue\/)/.test(t[1]);
    const passes = [
      { ns: kinds.filter((k) => k !== "user"), ip: o.net ? tools.ip! : "", hostname: o.hostname ?? "", sysctls: sysctls.filter((t) => !ipcOnly(t)) },
      { ns: kinds.filter((k) => k === "user" || k === "ipc"), ip: "", hostname: "", sysctls: sysctls.filter(ipcOnly) },
    ];
    for (const pass of passes) {
      if (!pass.ip && !pass.hostname && pass.sysctls.length === 0) continue;
      const argv = [tools.nsenter!, ...pass.ns.map((k) => `--${k}=${paths[k]}`), "--", "/bin/sh", "-c", SCRIPT, "pin", pass.ip, pass.hostname];
      for (const t of pass.sysctls) argv.push(...t);
      const r = await runRaw(argv, { timeoutMs: 30_000 });
      if (r.code !== 0)
        throw new RuntimeError("internal", `set up namespaces of "${id}": ${tools.nsenter} failed (exit ${r.code ?? "?"}): ${r.stderr.trim().slice(-2000)}`);
    }
  } catch (e) {
    const undo = await undoPins(paths);
    if (e instanceof RuntimeError) throw undo ? new RuntimeError(e.kind, `${e.message}${undo}`, { cause: e }) : e;
    throw new RuntimeError("internal", `pin namespaces of "${id}": ${(e as Error).message}${undo}`, { cause: e });
  }
  return paths;
}

// $1 = path of ip (bring lo up) or "", $2 = hostname or "", then triples: sysctl name, /proc/sys path, value.
const SCRIPT = `ip=$1; h=$2; shift 2
if [ -n "$ip" ]; then "$ip" link set lo up || exit 1; fi
if [ -n "$h" ]; then printf %s "$h" > /proc/sys/kernel/hostname || exit 1; fi
while [ $# -gt 2 ]; do
  [ -e "/proc/sys/$2" ] || { echo "sysctl $1 does not exist" >&2; exit 1; }
  { printf %s "$3" > "/proc/sys/$2"; } 2>/dev/null || { echo "sysctl $1: the kernel refused the value '$3'" >&2; exit 1; }
  shift 3
done`;

const PACKAGE_OF: Record<string, string> = { unshare: "util-linux", nsenter: "util-linux", ip: "iproute2", mount: "util-linux" };
const SBIN = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];
const MNT_DETACH = 2;
const ENOENT = 2;
const EINVAL = 22;
const privateDirs = new Map<string, Promise<void>>();

/** A tool in $PATH, then the sbin directories (a daemon started without them in $PATH still finds them). */
function which(name: string): string | undefined {
  return lookPathCached(name, [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...SBIN].join(delimiter));
}

/** Maps a sysctl name to its /proc/sys path and checks it belongs to a pinned namespace (as runc does). */
function sysctlPath(key: string, o: PinOptions): string {
  if (!/^[A-Za-z0-9_\-./]+$/.test(key) || key.includes("..") || key.startsWith(".") || key.startsWith("/")) throw invalid(`invalid sysctl name "${key}"`);
  // Kubernetes' convention: "." separates levels and "/" stands for a literal dot (net.ipv4.conf.eth0/100.forwarding).
  const path = key.replace(/[./]/g, (c) => (c === "." ? "/" : "."));
  const dotted = path.replace(/\//g, ".");
  const ipc = dotted === "kernel.sem" || /^kernel\.(shm|msg)/.test(dotted) || dotted.startsWith("fs.mqueue.");
  const uts = dotted === "kernel.hostname" || dotted === "kernel.domainname";
  if (dotted.startsWith("net.")) {
    if (!o.net) throw invalid(`sysctl "${key}" needs a pod network namespace (host network pods cannot set it)`);
  } else if (ipc) {
    if (!o.ipc) throw invalid(`sysctl "${key}" needs a pod ipc namespace (host ipc pods cannot set it)`);
  } else if (uts) {
    if (!o.uts) throw invalid(`sysctl "${key}" needs a pod uts namespace`);
  } else throw invalid(`sysctl "${key}" is not namespaced and cannot be set for a pod`);
  return path;
}

/** Makes `dir` a private bind mount of itself, once per process (concurrent callers share the work): mounts below it do not propagate. */
export function ensurePrivateMount(dir: string): Promise<void> {
  let p = privateDirs.get(dir);
  if (!p) {
    p = (async () => {
      const { mount } = requireTools(["mount"]);
      try {
        if (!isMountPoint(dir)) await run([mount!, "--bind", dir, dir]);
        await run([mount!, "--make-private", dir]);
      } catch (e) {
        privateDirs.delete(dir);
        const msg = e instanceof ExecError ? e.message : String(e);
        throw new RuntimeError("internal", `make ${dir} a private mount: ${msg}`, { cause: e });
      }
    })();
    privateDirs.set(dir, p);
  }
  return p;
}

/** True when `path` is a mount point in our mount namespace. */
function isMountPoint(path: string): boolean {
  return mountPoints().has(path);
}

/** Every mount point of our mount namespace (/proc/self/mountinfo). */
function mountPoints(): Set<string> {
  try {
    return new Set(readMountinfo().map((m) => m.mountPoint));
  } catch {
    return new Set();
  }
}

/** The same, read on the thread pool (pod start and stop: the table grows with the pods). */
async function mountPointsAsync(): Promise<Set<string>> {
  try {
    return new Set((await readMountinfoAsync()).map((m) => m.mountPoint));
  } catch {
    return new Set();
  }
}
