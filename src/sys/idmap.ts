/**
 * Idmapped mounts (Linux ≥ 5.12, overlay over idmapped layers ≥ 5.19): a detached copy of a
 * directory or file tree (open_tree OPEN_TREE_CLONE) whose owners are shown through a user
 * namespace's mapping (mount_setattr MOUNT_ATTR_IDMAP), attached at a staging path (move_mount).
 * With a pod's user namespace (0 → host base B), a file owned by host root reads as owned by B,
 * which is root inside the pod, and what the pod's root writes lands on disk as host root: no
 * image or volume is copied or chowned. runc 1.1 cannot make these itself; the daemon makes them
 * before `runtime create` (runc binds the staging paths into the container, keeping the idmap)
 * and detaches them afterwards. Overlay keeps private copies of its layers, so idmapped lower
 * layers need no mount point at all where the kernel takes detached ones (≥ 6.15), and are
 * detached as soon as the overlay is mounted elsewhere.
 *
 * The three syscalls have no glibc wrappers: syscall(2) through bun:ffi, with the generic numbers
 * (the same on x86_64 and aarch64).
 */
import { ptr, type Pointer } from "bun:ffi";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { RuntimeError } from "../errors.ts";
import { cstr, daemonLibc, errno, errnoName, listDir } from "./libc.ts";
import { readMountinfo, unmount } from "./mount.ts";
import { ensurePrivateMount, requireTools } from "./namespaces.ts";
import { withTempUserns } from "./userns.ts";

/** One range of a user namespace mapping: container ids [containerId, containerId+length) are host ids [hostId, …). */
export interface IdMap {
  containerId: number;
  hostId: number;
  length: number;
}

/** Options of idmappedMount. */
export interface IdmapOptions {
  /** Clone the whole tree below `source` (AT_RECURSIVE), not only its top mount. */
  recursive?: boolean;
  /** Make the copy a slave of the source's peer group (host-to-container propagation). */
  slave?: boolean;
}

/**
 * Attaches an idmapped copy of `source` at `target` (created: a directory, or an empty file for a
 * file source). `usernsFd` is an open user namespace file (a pinned one, or /proc/<pid>/ns/user).
 * Throws a RuntimeError naming the step and errno; nothing is attached then.
 */
export function idmappedMount(source: string, target: string, usernsFd: number, o: IdmapOptions = {}): void {
  const st = statSync(source);
  if (st.isDirectory()) mkdirSync(target, { recursive: true, mode: 0o700 });
  else if (!existsSync(target)) writeFileSync(target, "", { mode: 0o600 });
  const fd = openIdmapped(source, usernsFd, o);
  try {
    if (Number(syscall(SYS.move_mount, fd, ptr(EMPTY), AT_FDCWD, ptr(cstr(target)), MOVE_MOUNT_F_EMPTY_PATH, 0)) < 0) throw fail("move_mount", target);
  } finally {
    closeSync(fd);
  }
}

/** A detached idmapped copy of `source`, as an fd (the copy goes with the fd's last close). */
export function openIdmapped(source: string, usernsFd: number, o: IdmapOptions = {}): number {
  const flags = OPEN_TREE_CLONE | O_CLOEXEC | (o.recursive ? AT_RECURSIVE : 0);
  const fd = Number(syscall(SYS.open_tree, AT_FDCWD, ptr(cstr(source)), flags, 0, 0, 0));
  if (fd < 0) throw fail("open_tree", source);
  const attr = new BigUint64Array([MOUNT_ATTR_IDMAP, 0n, o.slave ? MS_SLAVE : 0n, BigInt(usernsFd)]);
  if (Number(syscall(SYS.mount_setattr, fd, ptr(EMPTY), AT_EMPTY_PATH | (o.recursive ? AT_RECURSIVE : 0), ptr(attr), attr.byteLength, 0)) < 0) {
    const e = fail("mount_setattr MOUNT_ATTR_IDMAP", source);
    closeSync(fd);
    throw e;
  }
  return fd;
}

/**
 * Runs `use` with idmapped views of `dirs` (through the user namespace at `usernsPath`) for an
 * overlay's lower dirs: detached copies named by /proc/self/fd/N, which kernels ≥ 6.15 accept as
 * overlay layers (no mount point, nothing to detach); when the overlay refuses them (EINVAL, an
 * older kernel), copies staged in `base` as group `key` (stageIdmapped), detached afterwards.
 * `use` must be done with the paths when it returns (overlay keeps its own copies).
 */
export async function withIdmappedLayers<T>(
  base: string,
  key: string,
  usernsPath: string,
  dirs: readonly string[],
  use: (paths: string[]) => Promise<T>,
): Promise<T> {
  if (detachedLayers !== false) {
    const ufd = openUserns(usernsPath);
    const fds: number[] = [];
    try {
      for (const d of dirs) fds.push(openIdmapped(d, ufd));
      const r = await use(fds.map((fd) => `/proc/self/fd/${fd}`));
      detachedLayers = true;
      return r;
    } catch (e) {
      const msg = e instanceof RuntimeError ? e.message : "";
      if (/E2BIG/.test(msg)) {
        // too many layers for one page: the attached, short-linked way, this time
      } else if (detachedLayers === undefined && /EINVAL/.test(msg))
        detachedLayers = false; // staged from now on
      else throw e;
    } finally {
      for (const fd of fds) closeSync(fd);
      closeSync(ufd);
    }
  }
  try {
    return await use(
      await stageIdmapped(
        base,
        key,
        usernsPath,
        dirs.map((source) => ({ source })),
      ),
    );
  } finally {
    releaseStaged(base, key);
  }
}

/** One source to stage by stageIdmapped. */
export interface StageItem {
  source: string;
  /** Mappings of its own (CRI Mount uid/gid mappings), instead of the pod's user namespace. */
  maps?: { uids: readonly IdMap[]; gids: readonly IdMap[] };
  recursive?: boolean;
  slave?: boolean;
}

/**
 * Attaches an idmapped copy of each item's source at a mount point of `base` (made a private
 * mount, so nothing propagates) through the user namespace at `usernsPath`, or a temporary one
 * with the item's own mappings; the group is named `key`. Returns the staging paths, in order.
 * Mount points (`<base>/d<n>` directories, `<base>/f<n>` empty files) are reused from group to
 * group, never created or removed per container. On failure the group is released.
 */
export async function stageIdmapped(base: string, key: string, usernsPath: string, items: readonly StageItem[]): Promise<string[]> {
  if (groups.has(`${base}\0${key}`)) throw new RuntimeError("already-exists", `idmapped mounts "${key}" are already staged`);
  const pool = poolOf(base);
  if (!pool.ready) {
    mkdirSync(base, { recursive: true, mode: 0o711 });
    await ensurePrivateMount(base);
    // the pod's root (an "other" user here) may have to reach the copies: o+x up to / (CRI-O's makeAccessible)
    for (let d = base; d !== "/" && d !== "."; d = dirname(d)) {
      const mode = statSync(d).mode & 0o7777;
      if ((mode & 0o001) === 0) chmodSync(d, mode | 0o001);
    }
    pool.ready = true;
  }
  const held: string[] = [];
  groups.set(`${base}\0${key}`, held);
  const fd = openUserns(usernsPath);
  try {
    for (const it of items) {
      const dir = statSync(it.source).isDirectory();
      const target = take(base, pool, dir);
      const o = { recursive: it.recursive, slave: it.slave };
      if (it.maps) await withTempUserns(requireTools(["unshare"]).unshare!, it.maps.uids, it.maps.gids, (ufd) => idmappedMount(it.source, target, ufd, o));
      else idmappedMount(it.source, target, fd, o);
      held.push(target);
    }
    return [...held];
  } catch (e) {
    try {
      releaseStaged(base, key);
    } catch {
      // left mounted: detached by clearStaging at the next start
    }
    throw e;
  } finally {
    closeSync(fd);
  }
}

/** Detaches group `key`'s staged copies and gives their mount points back to the pool. Idempotent. */
export function releaseStaged(base: string, key: string): void {
  const held = groups.get(`${base}\0${key}`);
  if (!held) return;
  const pool = poolOf(base);
  const failed: string[] = [];
  for (const p of held) {
    try {
      unmount(p, { detach: true }); // false when nothing was attached there (a failed stage)
      (p.startsWith(join(base, "d")) ? pool.dirs : pool.files).push(p);
    } catch (e) {
      failed.push(`${p}: ${(e as Error).message}`); // not reused
    }
  }
  groups.delete(`${base}\0${key}`);
  if (failed.length) throw new RuntimeError("internal", `detach idmapped mounts: ${failed.join("; ")}`);
}

/**
 * Detaches every mount below `base` (at start-up: copies staged by a creation the process did not
 * live to finish; no creation is in flight then). The mount points stay, for reuse.
 */
export function clearStaging(base: string): void {
  // nothing can be mounted below an empty (or missing) dir: no need to read the mount table
  if (!(listDir(base)?.length ?? 0)) return;
  const under = readMountinfo()
    .filter((m) => m.mountPoint.startsWith(base + "/"))
    .map((m) => m.mountPoint);
  // deepest first, so a mount is never detached from under another one it holds
  for (const mp of under.sort((a, b) => b.length - a.length)) unmount(mp, { detach: true });
}

/** Whether the filesystem of `dir` accepts an idmapped mount with this user namespace (nothing is attached). */
export function canIdmap(dir: string, usernsFd: number): string | undefined {
  const fd = Number(syscall(SYS.open_tree, AT_FDCWD, ptr(cstr(dir)), OPEN_TREE_CLONE | O_CLOEXEC, 0, 0, 0));
  if (fd < 0) return fail("open_tree", dir).message;
  try {
    const attr = new BigUint64Array([MOUNT_ATTR_IDMAP, 0n, 0n, BigInt(usernsFd)]);
    if (Number(syscall(SYS.mount_setattr, fd, ptr(EMPTY), AT_EMPTY_PATH, ptr(attr), attr.byteLength, 0)) < 0)
      return fail("mount_setattr MOUNT_ATTR_IDMAP", dir).message;
    return undefined;
  } finally {
    closeSync(fd); // the detached copy goes with its last fd
  }
}

/** Opens a user namespace file (pinned, or /proc/<pid>/ns/user) for idmappedMount; close it with closeSync. */
export function openUserns(path: string): number {
  try {
    return openSync(path, "r");
  } catch (e) {
    throw new RuntimeError("internal", `open user namespace ${path}: ${(e as Error).message}`, { cause: e });
  }
}

// --- internal ---

/** Generic syscall numbers (include/uapi/asm-generic/unistd.h; x86_64 uses the same for these). */
const SYS = { open_tree: 428, move_mount: 429, mount_setattr: 442 } as const;
const AT_FDCWD = -100;
const AT_EMPTY_PATH = 0x1000;
const AT_RECURSIVE = 0x8000;
const OPEN_TREE_CLONE = 1;
const O_CLOEXEC = 0o2000000;
const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
const MOUNT_ATTR_IDMAP = 0x00100000n;
const MS_SLAVE = 0x80000n;
const EMPTY = Buffer.from("\0");
/** Staging mount points free for reuse, per base directory. */
interface Pool {
  ready: boolean;
  dirs: string[];
  files: string[];
  next: number;
}
const pools = new Map<string, Pool>();
/** Staged groups: base + NUL + key → their mount points. */
const groups = new Map<string, string[]>();

function poolOf(base: string): Pool {
  let p = pools.get(base);
  if (!p) pools.set(base, (p = { ready: false, dirs: [], files: [], next: 0 }));
  return p;
}

/** A free mount point of the pool (made on first use; an existing one from an earlier run is reused). */
function take(base: string, pool: Pool, dir: boolean): string {
  const free = dir ? pool.dirs : pool.files;
  const reused = free.pop();
  if (reused) return reused;
  const p = join(base, `${dir ? "d" : "f"}${pool.next++}`);
  if (dir) mkdirSync(p, { recursive: true, mode: 0o711 });
  else if (!existsSync(p)) writeFileSync(p, "", { mode: 0o600 });
  return p;
}

/** Whether overlay takes detached layers (/proc/self/fd/N) on this kernel; undefined until tried. */
let detachedLayers: boolean | undefined;

/** syscall(2) with the generic numbers (a pointer argument as its address). */
function syscall(nr: number, a: number, b: number | Pointer, c: number, d: number | Pointer, e: number, f: number): bigint | number {
  return daemonLibc().syscall(nr, a, b as number, c, d as number, e, f);
}

function fail(op: string, path: string): RuntimeError {
  const n = errno();
  const hint = n === 38 ? " (kernel without the new mount API)" : n === 22 || n === 95 ? " (filesystem or kernel without idmapped mounts)" : "";
  return new RuntimeError("internal", `${op} "${path}": ${errnoName(n)}${hint}`);
}
