import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { invalid, RuntimeError, wrap } from "../errors.ts";
import { log } from "../log/index.ts";
import { isMounted, MAX_MOUNT_DATA, mount, mountOverlay, MS, unmount } from "../sys/mount.ts";
import { run } from "../sys/exec.ts";

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
 */

const l = log.withTag("storage");

/** Options of createRootfs. */
export interface RootfsOptions {
  /** Extra overlay mount options (e.g. "nodev", "metacopy=on"). */
  mountOptions?: string[];
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
  if (isMounted(p.merged)) return p.merged;
  const fresh = !existsSync(p.dir);
  try {
    for (const d of [p.work, p.merged]) mkdirSync(d, { recursive: true, mode: 0o700 });
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
      const top = statSync(lower[0] as string);
      mkdirSync(p.upper, { mode: 0o755 });
      chmodSync(p.upper, top.mode & 0o7777);
      chownSync(p.upper, top.uid, top.gid);
    }
    const options = opts.mountOptions;
    const data = `lowerdir=${lower.join(":")},upperdir=${p.upper},workdir=${p.work}${options?.length ? "," + options.join(",") : ""}`;
    if (data.length <= MAX_MOUNT_DATA) {
      await mountOverlay(p.merged, { lower, upper: p.upper, work: p.work, options });
    } else {
      const links = join(p.dir, "l");
      rmSync(links, { recursive: true, force: true });
      mkdirSync(links, { mode: 0o700 });
      const relativeLower = lower.map((target, i) => {
        symlinkSync(target, join(links, String(i)));
        return `l/${i}`;
      });
      await mountOverlay(p.merged, { lower, upper: p.upper, work: p.work, options, cwd: p.dir, relativeLower });
    }
    return p.merged;
  } catch (e) {
    if (fresh) rmSync(p.dir, { recursive: true, force: true });
    throw wrap(e, `mount rootfs of container "${id}"`);
  }
}

/**
 * Mounts image `lowerDirs` (an image's unpacked layers, base first) read-only, nosuid and nodev
 * as the container's image volume `n`, and returns the mount point. Nothing there is writable:
 * the overlay has no upper dir (an empty dir below the layers makes the two lower dirs a
 * read-only overlay needs). Idempotent; on failure nothing of it is left.
 */
export async function mountImageVolume(storageDir: string, id: string, n: number, lowerDirs: string[]): Promise<string> {
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
    const data = `lowerdir=${lower.join(":")}`;
    const flags = MS.RDONLY | MS.NOSUID | MS.NODEV;
    if (data.length <= MAX_MOUNT_DATA) mount("overlay", target, "overlay", flags, data);
    else {
      // too long for one page: short links, resolved against the dir mount(8) runs in
      const links = join(base, `l${n}`);
      rmSync(links, { recursive: true, force: true });
      mkdirSync(links, { mode: 0o700 });
      const rel = lower.map((t, i) => (symlinkSync(t, join(links, String(i))), `l${n}/${i}`));
      await run(["mount", "-t", "overlay", "overlay", "-o", `ro,nosuid,nodev,lowerdir=${rel.join(":")}`, target], { cwd: base });
    }
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
  unmountImageVolumes(p.dir);
  unmountRootfs(storageDir, id);
  if (isMounted(p.merged)) throw new RuntimeError("failed-precondition", `rootfs of container "${id}" is still mounted at "${p.merged}"`);
  rmSync(p.dir, { recursive: true, force: true });
}

/** Unmounts every image volume below `dir`; throws when one stays mounted (never delete through a mount). */
function unmountImageVolumes(dir: string): void {
  const base = join(dir, "image-volumes");
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return; // none
  }
  for (const name of names) {
    const target = join(base, name);
    for (let i = 0; i < 8 && isMounted(target); i++) if (!unmount(target)) break;
    if (isMounted(target)) throw new RuntimeError("failed-precondition", `image volume of container "${basename(dir)}" is still mounted at "${target}"`);
  }
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

/** Bytes and inodes used by the container's writable layer (hard links counted once). */
export async function diskUsage(storageDir: string, id: string): Promise<{ bytes: number; inodes: number }> {
  const p = rootfsPaths(storageDir, id);
  const seen = new Set<string>();
  let bytes = 0;
  let inodes = 0;
  const walk = async (dir: string): Promise<void> => {
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw e;
    }
    for (const name of entries) {
      const path = join(dir, name);
      const st = await lstat(path).catch(() => undefined);
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

// --- internal ---

function checkId(id: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id) || id.includes("..")) throw invalid(`invalid container id "${id}"`);
}
