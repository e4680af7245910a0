/**
 * CRI-O's clean shutdown marker (clean_shutdown_file):
 *   start: `<file>` is removed and `<file>.supported` written (so a later start can tell an
 *          unclean stop from an upgrade from a version without the marker), parent fsynced;
 *   clean stop: the filesystem holding the root is synced (syncfs), then `<file>` is written
 *          and its parent fsynced — in that order, so a present marker means the store was on disk.
 * The shutdown was unclean when `<file>.supported` exists and `<file>` does not.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { daemonLibc } from "./libc.ts";

/** Whether the last stop was unclean (marker supported, marker absent); false when the key is "". */
export function shutdownWasUnclean(file: string): boolean {
  if (!file) return false;
  return existsSync(`${file}.supported`) && !existsSync(file);
}

/**
 * At start: removes the marker and writes `<file>.supported`, durably (the directory fsynced);
 * when the marker is absent and `.supported` present already there is nothing to change or sync.
 */
export function clearCleanShutdown(file: string): void {
  if (!file) return;
  const marked = existsSync(file);
  const supported = existsSync(`${file}.supported`);
  if (!marked && supported) return;
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  if (marked) rmSync(file, { force: true });
  if (!supported) writeFileSync(`${file}.supported`, "", { mode: 0o644 });
  fsyncDir(dirname(file));
}

/** At a clean stop: syncs the filesystem of `root`, then writes the marker and syncs its directory. */
export function markCleanShutdown(file: string, root: string): void {
  if (!file) return;
  syncfs(root);
  writeFileSync(file, "", { mode: 0o644 });
  fsyncDir(dirname(file));
}

// --- internal ---

function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } catch {
    // some filesystems refuse fsync on a directory
  } finally {
    closeSync(fd);
  }
}

function syncfs(path: string): void {
  const fd = openSync(path, "r");
  try {
    if (daemonLibc().syncfs(fd) !== 0) throw new Error(`syncfs ${path} failed`);
  } finally {
    closeSync(fd);
  }
}
