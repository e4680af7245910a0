/**
 * auto_reload_registries: registries.conf and its drop-in directory are watched (inotify through
 * fs.watch), and a change re-reads them without SIGHUP, as CRI-O does with fsnotify. The file's
 * directory is watched rather than the file, so an editor's rename-over or a file created later
 * is seen; the drop-in directory likewise once it exists. A malformed file is logged and the
 * previous configuration stays.
 */
import { existsSync, watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";
import { messageOf } from "../errors.ts";
import type { Logger } from "../log/index.ts";

/** Starts watching; `reload` re-reads the files (throws on a malformed one). Returns the closer. */
export function watchRegistries(o: { file: string; dir: string; reload: () => void; log: Logger; debounceMs?: number }): { close(): void } {
  const watchers: FSWatcher[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  const fire = () => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      try {
        o.reload();
        o.log.info(`Registries configuration reloaded from "${o.file}" and "${o.dir}"`);
      } catch (e) {
        o.log.error(`registries configuration reload failed; keeping the previous one: ${messageOf(e)}`);
      }
      watchDir(); // the drop-in dir may have appeared
    }, o.debounceMs ?? 100);
  };
  let dirWatched = false;
  const watchDir = () => {
    if (dirWatched || closed || !existsSync(o.dir)) return;
    try {
      watchers.push(watch(o.dir, { persistent: false }, () => fire()));
      dirWatched = true;
    } catch (e) {
      o.log.warn(`cannot watch "${o.dir}": ${messageOf(e)}`);
    }
  };
  const name = basename(o.file);
  const dirName = basename(o.dir);
  const parent = dirname(o.file);
  try {
    watchers.push(
      watch(parent, { persistent: false }, (_ev, f) => {
        if (f === null || f === name || (dirname(o.dir) === parent && f === dirName)) fire();
      }),
    );
  } catch (e) {
    o.log.warn(`cannot watch "${parent}" for registries.conf changes: ${messageOf(e)}`);
  }
  if (dirname(o.dir) !== parent && existsSync(dirname(o.dir)))
    try {
      watchers.push(watch(dirname(o.dir), { persistent: false }, (_ev, f) => f === dirName && fire()));
    } catch {}
  watchDir();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
