import { chmodSync, chownSync, existsSync, mkdirSync, rmSync, statSync, symlinkSync } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { invalid, RuntimeError, wrap } from "../errors.ts";
import { log } from "../log/index.ts";
import { isMounted, MAX_MOUNT_DATA, mountOverlay, unmount } from "../sys/mount.ts";

/**
 * Container root filesystems: one overlay mount per container over the image's unpacked layers.
 *
 *   <storage>/<id>/upper/   the writable layer (survives restarts; what diskUsage measures)
 *   <storage>/<id>/work/    overlayfs work dir
 *   <storage>/<id>/merged/  the mount point = the container's rootfs
 *   <storage>/<id>/l/<n>    short links to the lower dirs, used when the option string exceeds a page
 *   <storage>/<id>/empty/   the only lower dir of an image without layers
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
 * Unmounts (lazily when busy) and deletes the container's rootfs and writable layer. Idempotent:
 * a missing rootfs is not an error.
 */
export async function removeRootfs(storageDir: string, id: string): Promise<void> {
  const p = rootfsPaths(storageDir, id);
  if (!existsSync(p.dir)) return;
  unmountRootfs(storageDir, id);
  if (isMounted(p.merged)) throw new RuntimeError("failed-precondition", `rootfs of container "${id}" is still mounted at "${p.merged}"`);
  rmSync(p.dir, { recursive: true, force: true });
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
