import { open, rename, unlink } from "node:fs/promises";
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
  fsyncDir(dirname(path));
}

/** fsyncs a directory so a rename in it is durable. */
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
