import { readFileSync } from "node:fs";
import { lstat, mkdir, readFile } from "node:fs/promises";
import { RuntimeError } from "../errors.ts";
import { run, syscallOffThread, type Syscall } from "./exec.ts";
import { cstr, daemonLibc, errno, errnoName } from "./libc.ts";
import { parseMountinfo, type MountInfo } from "./mountinfo.ts";

/**
 * mount(2) and umount2(2) through bun:ffi, /proc/self/mountinfo parsing, and the two mounts the
 * runtime makes itself: a pod's /dev/shm tmpfs and a container's overlay root filesystem.
 */

/** mount(2) flags. */
export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  REMOUNT: 0x20,
  BIND: 0x1000,
  MOVE: 0x2000,
  REC: 0x4000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
  SHARED: 0x100000,
} as const;

/** umount2(2) flags. */
export const MNT_FORCE = 0x1;
export const MNT_DETACH = 0x2;

/** The pod /dev/shm size when the pod asks for none: 64 MiB. */
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

/** A failed mount-related syscall, with its errno name ("EBUSY"). */
export class MountError extends RuntimeError {
  constructor(
    readonly op: string,
    readonly path: string,
    readonly code: string,
  ) {
    super(code === "ENOSPC" ? "resource-exhausted" : code === "EPERM" || code === "EACCES" ? "permission-denied" : "internal", `${op} "${path}": ${code}`);
  }
}

/**
 * A blocking mount syscall on the spawner thread once the daemon offloads (sys/exec.ts), else on
 * this one: returns 0, or the errno it failed with.
 */
async function blocking(call: Syscall): Promise<number> {
  const off = syscallOffThread(call);
  if (off) return (await off).errno;
  const rc =
    call.sys === "umount2"
      ? daemonLibc().umount2(cstr(call.target), call.flags)
      : daemonLibc().mount(cstr(call.source), cstr(call.target), cstr(call.fstype), call.flags, call.data === undefined ? null : cstr(call.data));
  return rc === 0 ? 0 : errno();
}

/** umount2(2) off the event loop (see blocking): 0 or the errno. */
export function umount2Async(target: string, flags: number): Promise<number> {
  return blocking({ sys: "umount2", target, flags });
}

/** mount off the event loop: the request paths' (pod shm, container rootfs). Throws MountError. */
export async function mountAsync(source: string, target: string, fstype: string, flags: number, data?: string): Promise<void> {
  const e = await blocking({ sys: "mount", source, target, fstype, flags, data });
  if (e !== 0) throw new MountError(`mount ${fstype}`, target, errnoName(e));
}

/** unmount off the event loop: the request paths' (pod stop and removal). */
export async function unmountAsync(target: string, o: { detach?: boolean } = {}): Promise<boolean> {
  const e = await umount2Async(target, o.detach ? MNT_DETACH : 0);
  if (e === 0) return true;
  const code = errnoName(e);
  if (code === "EINVAL" || code === "ENOENT") return false;
  if (code === "EBUSY" && !o.detach) return unmountAsync(target, { detach: true });
  throw new MountError("unmount", target, code);
}

/** Mounts `source` on `target` (mount(2)); throws MountError. */
export function mount(source: string, target: string, fstype: string, flags: number, data?: string): void {
  const rc = daemonLibc().mount(cstr(source), cstr(target), cstr(fstype), flags, data === undefined ? null : cstr(data));
  if (rc !== 0) throw new MountError(`mount ${fstype}`, target, errnoName(errno()));
}

/**
 * Unmounts `target`; returns false when nothing was mounted there (EINVAL/ENOENT). With `detach`
 * (or when the mount is busy) it falls back to a lazy MNT_DETACH unmount.
 */
export function unmount(target: string, o: { detach?: boolean } = {}): boolean {
  if (daemonLibc().umount2(cstr(target), o.detach ? MNT_DETACH : 0) === 0) return true;
  const code = errnoName(errno());
  if (code === "EINVAL" || code === "ENOENT") return false;
  if (code === "EBUSY" && !o.detach) return unmount(target, { detach: true });
  throw new MountError("unmount", target, code);
}

export { parseMountinfo, type MountInfo } from "./mountinfo.ts";

/** Reads this process's mount table. */
export function readMountinfo(): MountInfo[] {
  return parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8"));
}

/**
 * Reads this process's mount table on the thread pool: the kernel renders mountinfo under the
 * namespace lock, in time growing with the mounts (several per pod), so request paths use this.
 */
export async function readMountinfoAsync(): Promise<MountInfo[]> {
  return parseMountinfo(await readFile("/proc/self/mountinfo", "utf8"));
}

/** True when something is mounted exactly at `path` (per /proc/self/mountinfo). */
export function isMounted(path: string, table: MountInfo[] = readMountinfo()): boolean {
  const p = path.length > 1 ? path.replace(/\/+$/, "") : path;
  return table.some((m) => m.mountPoint === p);
}

/**
 * Creates `path` and mounts a tmpfs of `sizeBytes` on it (nosuid, nodev, noexec, mode 1777) for a
 * pod's /dev/shm; `owner` (a pod in its own user namespace: the host ids of its root) owns its root.
 * The mount table is read on the thread pool (it grows with the node's pods).
 */
export async function mountShm(path: string, sizeBytes = DEFAULT_SHM_SIZE, owner?: { uid: number; gid: number }): Promise<void> {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) throw new RuntimeError("invalid-argument", `invalid shm size ${sizeBytes}`);
  // a path that did not exist cannot be a mount point: the table is read only for one that did
  const existed = await exists(path);
  await mkdir(path, { recursive: true, mode: 0o755 });
  if (existed && isMounted(path, await readMountinfoAsync())) return;
  const ids = owner ? `,uid=${owner.uid},gid=${owner.gid}` : "";
  await mountAsync("shm", path, "tmpfs", MS.NOSUID | MS.NODEV | MS.NOEXEC, `mode=1777,size=${sizeBytes}${ids}`);
}

/** Options of mountOverlay. */
export interface OverlayMount {
  /** Lower directories, highest (topmost) first, as overlayfs wants them. */
  lower: string[];
  upper: string;
  work: string;
  /** Extra mount options ("nodev", "metacopy=on", …). */
  options?: string[];
  /**
   * For option strings longer than a page: a directory against which `relativeLower` resolves;
   * the mount then runs util-linux mount(8) with that working directory.
   */
  cwd?: string;
  relativeLower?: string[];
}

/** The kernel copies at most one page of mount data. */
export const MAX_MOUNT_DATA = 4095;

/** Mounts an overlay at `target`; falls back to relative lower paths when the option string is too long. */
export async function mountOverlay(target: string, o: OverlayMount): Promise<void> {
  const extra = o.options?.length ? `,${o.options.join(",")}` : "";
  // generic options (nodev, noatime, …) are mount(2) flags; the rest is overlayfs data
  let flags = 0;
  const own: string[] = [];
  for (const opt of o.options ?? []) {
    const f = GENERIC_FLAGS[opt];
    if (f === undefined) own.push(opt);
    else flags |= f;
  }
  const data = `lowerdir=${o.lower.join(":")},upperdir=${o.upper},workdir=${o.work}${own.length ? `,${own.join(",")}` : ""}`;
  if (data.length <= MAX_MOUNT_DATA) {
    await mountAsync("overlay", target, "overlay", flags, data);
    return;
  }
  if (!o.cwd || !o.relativeLower) throw new MountError("mount overlay", target, "E2BIG");
  const rel = `lowerdir=${o.relativeLower.join(":")},upperdir=${o.upper},workdir=${o.work}${extra}`;
  if (rel.length > MAX_MOUNT_DATA) throw new MountError("mount overlay", target, "E2BIG");
  await run(["mount", "-t", "overlay", "overlay", "-o", rel, target], { cwd: o.cwd });
}

// --- internal ---

/** True when `path` exists (on the thread pool; a dangling symlink counts as existing). */
async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Mount options that are mount(2) flags rather than filesystem data (mount(8)'s generic ones). */
const GENERIC_FLAGS: Record<string, number> = {
  ro: MS.RDONLY,
  nosuid: MS.NOSUID,
  nodev: MS.NODEV,
  noexec: MS.NOEXEC,
  sync: 0x10,
  dirsync: 0x80,
  noatime: 0x400,
  nodiratime: 0x800,
  relatime: 0x200000,
  strictatime: 0x1000000,
  rw: 0,
  suid: 0,
  dev: 0,
  exec: 0,
  async: 0,
};
