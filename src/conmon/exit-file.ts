import { close, fsync, O, open, rename, setMtime, unlink, writeAll } from "../sys/libc.ts";
import { exitFilePath, oomFilePath } from "./protocol.ts";

/**
 * Writes the exit record (protocol.ts §4): the OOM marker first, then `<exitDir>/<id>` with the
 * decimal exit code and the exit time as its mtime, each atomically, so a watcher that sees the
 * exit file also sees the marker. (The monitor may not import store/; this is its own small
 * temp-file-fsync-rename, on libc rather than node:fs to keep the process small.)
 */
export function writeExitRecord(exitDir: string, id: string, exitCode: number, exitedAt: number, oomKilled: boolean): void {
  if (oomKilled) writeAtomic(oomFilePath(exitDir, id), "", exitedAt);
  writeAtomic(exitFilePath(exitDir, id), String(exitCode), exitedAt);
}

/**
 * Writes `path` atomically (dot-temp file, fsync, rename, fsync the directory). `durable: false`
 * skips both fsyncs, for files of the runroot, which does not outlive a reboot anyway (a tmpfs on
 * a node; an fsync there is free, elsewhere it costs a disk flush).
 */
export function writeAtomic(path: string, data: string, mtimeMs?: number, durable = true): void {
  const slash = path.lastIndexOf("/");
  const dir = slash > 0 ? path.slice(0, slash) : ".";
  const tmp = `${dir}/.${path.slice(slash + 1)}.tmp-${process.pid}`;
  const fd = open(tmp, O.WRONLY | O.CREAT | O.TRUNC, 0o644);
  try {
    writeAll(fd, new TextEncoder().encode(data));
    if (durable) fsync(fd);
  } catch (e) {
    close(fd);
    unlink(tmp);
    throw e;
  }
  close(fd);
  if (mtimeMs !== undefined) setMtime(tmp, mtimeMs);
  rename(tmp, path);
  if (!durable) return;
  const d = open(dir, O.RDONLY);
  try {
    fsync(d);
  } catch {
    // some filesystems refuse fsync on a directory; the rename is still atomic
  } finally {
    close(d);
  }
}
