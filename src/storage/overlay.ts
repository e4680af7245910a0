import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync } from "node:fs";
import { chmod, chown, lstat, mkdir, readdir, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { invalid, RuntimeError, wrap } from "../errors.ts";
import { log } from "../log/index.ts";
import { isMounted, MAX_MOUNT_DATA, mount, mountOverlay, MountError, MS, readMountinfoAsync, unmount, unmountAsync } from "../sys/mount.ts";
import { run } from "../sys/exec.ts";
import { withIdmappedLayers } from "../sys/idmap.ts";
import { hostIdOf, type IdMap } from "../sys/userns.ts";

/**
 * Container root filesystems: one overlay mount per container over the image's unpacked layers.
 *
 *   <storage>/<id>/upper/   the writable layer (survives restarts; what diskUsage measures)
 *   <storage>/<id>/work/    overlayfs work dir
 *   <storage>/<id>/merged/  the mount point = the container's rootfs
 *   <storage>/<id>/l/<n>    short links to the lower dirs, used when the option string exceeds a page
 *   <storage>/<id>/empty/   the only lower dir of an image without layers
 *   <storage>/<id>/image-volumes/<n>/  read-only overlays of the images the container mounts
 *                           as volumes (CRI Mount.image, KEP-4639)
 *
 * A container of a pod with its own user namespace gets the same overlay over idmapped copies of
 * the layers (sys/idmap.ts): the image's root-owned files read as owned by the pod's root, and
 * nothing is copied or chowned. The upper layer is not idmapped: what the container writes is
 * owned on disk by its host ids (the pod's range), as with a chowned image; only the upper dir
 * itself is made, owned by the host ids of the top layer root's owner.
 */

const l = log.withTag("storage");

/** Options of createRootfs. */
export interface RootfsOptions {
  /** Extra overlay mount options (e.g. "nodev", "metacopy=on"). */
  mountOptions?: string[];
  /** Show the layers through this user namespace (a pod with its own); see the file comment. */
  idmap?: LayerIdmap;
}

/** A user namespace to show image layers through. */
export interface LayerIdmap {
  /** The pinned user namespace file. */
  usernsPath: string;
  uids: readonly IdMap[];
  gids: readonly IdMap[];
  /** Private staging directory (paths.idmap) and the name of this mount's group in it (kernels without detached layers). */
  stagingBase: string;
  stagingKey: string;
}

/** The paths of a container's root filesystem. */
export interface RootfsPaths {
  dir: string;
  upper: string;
  work: string;
  merged: string;
}

/** Where a container's rootfs lives (nothing is created). */
export function rootfsPaths(storageDir: string, id: string): RootfsPaths {
  checkId(id);
  const dir = join(storageDir, id);
  return { dir, upper: join(dir, "upper"), work: join(dir, "work"), merged: join(dir, "merged") };
}

/**
 * Mounts the container's overlay rootfs and returns the merged path. `lowerDirs` are the image's
 * unpacked layers, lowest (base) first; none means an empty rootfs. Idempotent: an existing
 * writable layer is kept and an existing mount is reused (restart recovery). On failure, what this
 * call created is removed.
 */
export async function createRootfs(storageDir: string, id: string, lowerDirs: string[], opts: RootfsOptions = {}): Promise<string> {
  const p = rootfsPaths(storageDir, id);
  // a new container's rootfs (no merged dir yet) is mounted nowhere: the table is read only for an existing one
  if (existsSync(p.merged) && isMounted(p.merged, await readMountinfoAsync())) return p.merged;
  const fresh = !existsSync(p.dir);
  try {
    for (const d of [p.work, p.merged]) await mkdir(d, { recursive: true, mode: 0o700 });
    let lower = [...lowerDirs].reverse(); // overlayfs lists the topmost layer first
    if (lower.length === 0) {
      const empty = join(p.dir, "empty");
      mkdirSync(empty, { recursive: true, mode: 0o755 });
      lower = [empty];
    }
    for (const d of lower) if (!existsSync(d)) throw invalid(`layer directory "${d}" does not exist`);
    if (!existsSync(p.upper)) {
      // The merged root takes the upper dir's owner and mode: copy them from the top layer's root
      // (a 0700 root would lock every non-root container user out of "/").
      // (on the thread pool: a burst of container creations must not hold the event loop)
      const top = await stat(lower[0] as string);
      await mkdir(p.upper, { mode: 0o755 });
      await chmod(p.upper, top.mode & 0o7777);
      const m = opts.idmap;
      await chown(p.upper, m ? mapped(m.uids, top.uid) : top.uid, m ? mapped(m.gids, top.gid) : top.gid);
    }
    if (opts.idmap) {
      // runc's init, root of the pod's user namespace (an "other" user on the host), must reach
      // the merged dir: every directory above it gets o+x, as CRI-O's makeAccessible does
      chmodSync(p.merged, 0o711);
      makeTraversable(p.dir);
      const m = opts.idmap;
      await withIdmappedLayers(m.stagingBase, m.stagingKey, m.usernsPath, lower, (idmapped) => mountMerged(p, idmapped, opts.mountOptions));
    } else await mountMerged(p, lower, opts.mountOptions);
    return p.merged;
  } catch (e) {
    if (fresh && !isMounted(p.merged)) rmSync(p.dir, { recursive: true, force: true });
    throw wrap(e, `mount rootfs of container "${id}"`);
  }
}

/** The overlay of a container's rootfs; a short-link directory when the option string exceeds a page. */
async function mountMerged(p: RootfsPaths, lower: string[], options: string[] | undefined): Promise<void> {
  {
    const data = `lowerdir=${lower.join(":")},upperdir=${p.upper},workdir=${p.work}${options?.length ? "," + options.join(",") : ""}`;
    if (data.length <= MAX_MOUNT_DATA) {
      await mountOverlay(p.merged, { lower, upper: p.upper, work: p.work, options });
    } else {
      // mount(8) could not see our fds: withIdmappedLayers then attaches the layers instead
      if (lower.some((l) => l.startsWith("/proc/self/fd/"))) throw new MountError("mount overlay", p.merged, "E2BIG");
      const links = join(p.dir, "l");
      rmSync(links, { recursive: true, force: true });
      mkdirSync(links, { mode: 0o700 });
      const relativeLower = lower.map((target, i) => {
        symlinkSync(target, join(links, String(i)));
        return `l/${i}`;
      });
      await mountOverlay(p.merged, { lower, upper: p.upper, work: p.work, options, cwd: p.dir, relativeLower });
    }
  }
}

/**
 * Mounts image `lowerDirs` (an image's unpacked layers, base first) read-only, nosuid and nodev
 * as the container's image volume `n`, and returns the mount point. Nothing there is writable:
 * the overlay has no upper dir (an empty dir below the layers makes the two lower dirs a
 * read-only overlay needs). Idempotent; on failure nothing of it is left.
 */
export async function mountImageVolume(storageDir: string, id: string, n: number, lowerDirs: string[], idmap?: LayerIdmap): Promise<string> {
  if (!Number.isInteger(n) || n < 0) throw invalid(`invalid image volume index ${n}`);
  const p = rootfsPaths(storageDir, id);
  const base = join(p.dir, "image-volumes");
  const target = join(base, String(n));
  if (isMounted(target)) return target;
  const empty = join(base, "empty");
  try {
    for (const d of [target, empty]) mkdirSync(d, { recursive: true, mode: 0o755 });
    const lower = [...[...lowerDirs].reverse(), empty]; // topmost first
    for (const d of lower) if (!existsSync(d)) throw invalid(`layer directory "${d}" does not exist`);
    const mountRo = async (layers: string[]) => {
      const data = `lowerdir=${layers.join(":")}`;
      const flags = MS.RDONLY | MS.NOSUID | MS.NODEV;
      if (data.length <= MAX_MOUNT_DATA) return mount("overlay", target, "overlay", flags, data);
      if (layers.some((l) => l.startsWith("/proc/self/fd/"))) throw new MountError("mount overlay", target, "E2BIG");
      // too long for one page: short links, resolved against the dir mount(8) runs in
      const links = join(base, `l${n}`);
      rmSync(links, { recursive: true, force: true });
      mkdirSync(links, { mode: 0o700 });
      const rel = layers.map((t, i) => (symlinkSync(t, join(links, String(i))), `l${n}/${i}`));
      await run(["mount", "-t", "overlay", "overlay", "-o", `ro,nosuid,nodev,lowerdir=${rel.join(":")}`, target], { cwd: base });
    };
    if (idmap) {
      chmodSync(target, 0o711);
      makeTraversable(base);
      await withIdmappedLayers(idmap.stagingBase, idmap.stagingKey, idmap.usernsPath, lower, mountRo);
    } else await mountRo(lower);
    return target;
  } catch (e) {
    if (!isMounted(target)) rmSync(target, { recursive: true, force: true });
    throw wrap(e, `mount image volume ${n} of container "${id}"`);
  }
}

/**
 * Unmounts (lazily when busy) and deletes the container's rootfs, image volumes and writable
 * layer. Idempotent: a missing rootfs is not an error.
 */
export async function removeRootfs(storageDir: string, id: string): Promise<void> {
  const p = rootfsPaths(storageDir, id);
  if (!existsSync(p.dir)) return;
  // Image volumes first (<dir>/image-volumes/<n>), then the rootfs: each unmounted (off the event
  // loop) until the kernel answers that nothing is mounted there, up to 8 times (a mount stacked
  // on itself after a crash); a busy one, or one with mounts below it, is detached. The mount
  // table (which the kernel renders in time growing with the node's mounts, several per pod) is
  // read only when 8 were not enough.
  const volumesDir = join(p.dir, "image-volumes");
  const volumes = (await readdir(volumesDir).catch(() => [] as string[])).filter((n) => /^\d+$/.test(n)).map((n) => join(volumesDir, n));
  for (const [which, targets] of [
    ["image volume", volumes],
    ["rootfs", [p.merged]],
  ] as const) {
    for (const t of targets) {
      let n = 0;
      while (n < 8 && (await unmountAsync(t))) n++;
      if (which === "rootfs" && n > 0) l.debug("unmounted rootfs", { id });
      if (n === 8 && isMounted(t, await readMountinfoAsync()))
        throw new RuntimeError("failed-precondition", `${which} of container "${id}" is still mounted at "${t}"`);
    }
  }
  await rm(p.dir, { recursive: true, force: true });
}

/** Unmounts the container's rootfs and keeps its writable layer (container stopped, or shutdown). */
export function unmountRootfs(storageDir: string, id: string): void {
  const p = rootfsPaths(storageDir, id);
  // A second mount on the same point (e.g. after a crash) is unmounted too.
  for (let i = 0; i < 8 && isMounted(p.merged); i++) {
    if (!unmount(p.merged)) break;
    l.debug("unmounted rootfs", { id });
  }
}

/**
 * Bytes and inodes used by the container's writable layer (hard links counted once). The first
 * SYNC_WALK_OPS directory reads and lstats are synchronous, the rest go to the thread pool: most
 * writable layers hold a handful of entries (a node's stats measure every container's each 10 s,
 * and 110 walks of ~10 thread-pool round trips each kept the event loop busy with their
 * callbacks), while a layer of many files still never holds the event loop for long.
 */
export async function diskUsage(storageDir: string, id: string): Promise<{ bytes: number; inodes: number }> {
  const p = rootfsPaths(storageDir, id);
  const seen = new Set<string>();
  let bytes = 0;
  let inodes = 0;
  let syncOps = SYNC_WALK_OPS;
  const list = async (dir: string): Promise<string[]> => {
    try {
      return syncOps-- > 0 ? readdirSync(dir) : await readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
  };
  const stat = async (path: string) => {
    if (syncOps-- > 0) {
      try {
        return lstatSync(path);
      } catch {
        return undefined;
      }
    }
    return await lstat(path).catch(() => undefined);
  };
  const walk = async (dir: string): Promise<void> => {
    for (const name of await list(dir)) {
      const path = join(dir, name);
      const st = await stat(path);
      if (!st) continue;
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inodes++;
      if (st.isDirectory()) await walk(path);
      else bytes += st.size;
    }
  };
  if (!existsSync(p.upper)) throw new RuntimeError("not-found", `writable layer of container "${id}" not found`);
  await walk(p.upper);
  return { bytes, inodes: inodes + 1 };
}

/** Synchronous file system calls a writable-layer walk makes before it moves to the thread pool. */
const SYNC_WALK_OPS = 64;

// --- internal ---

/** Adds o+x to `dir` and each directory above it that lacks it (nothing else changes). */
function makeTraversable(dir: string): void {
  for (let d = dir; d !== "/" && d !== "."; d = dirname(d)) {
    if (traversable.has(d)) return;
    const mode = statSync(d).mode & 0o7777;
    if ((mode & 0o001) === 0) chmodSync(d, mode | 0o001);
    if (d !== dir) traversable.add(d); // parents stay so; a container's own dir goes with it
  }
}
const traversable = new Set<string>();

/** The host id of on-disk id `n` seen through the mappings (an unmapped one stays as it is: overflow inside). */
function mapped(maps: readonly IdMap[], n: number): number {
  return hostIdOf(maps, n) ?? n;
}

function checkId(id: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id) || id.includes("..")) throw invalid(`invalid container id "${id}"`);
}
