import { open, rename, unlink, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { openSync, fsyncSync, closeSync } from "node:fs";

/**
 * Writes `data` to `path` atomically: temp file, fsync, rename, fsync the directory. A crash at
 * any instant leaves the old or the new content, never half of one. (Bun.write is not atomic.)
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const fh = await open(tmp, "w", mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fsyncDirAsync(dirname(path));
}

/**
 * fsyncs a directory so a rename in it is durable, on libuv's thread pool: an fsync waits for the
 * disk (ms, more on a busy one), and the daemon's one event loop must not wait with it.
 */
export async function fsyncDirAsync(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, "r");
    await fh.sync();
  } catch {
    // some filesystems refuse fsync on a directory; the rename is still atomic
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** fsyncs a directory so a rename in it is durable (blocking: for start-up and tools; the daemon's request paths use fsyncDirAsync). */
export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // some filesystems refuse fsync on a directory; the rename is still atomic
  }
}
