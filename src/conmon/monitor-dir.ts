import { rmdir, unlink } from "../sys/libc.ts";
import { DEBUG, diag, tryIt } from "./diag.ts";
import { monitorFiles } from "./protocol.ts";

/**
 * Removes an exec session's monitor dir (its files are all ours or the runtime's). With
 * CRIO_MONITOR_DEBUG set the diagnostics log (`monitor.log`) and so the dir are kept.
 */
export function removeDir(dir: string): void {
  const f = monitorFiles(dir);
  for (const p of [f.attach, f.ctl, f.pid, f.monitorPid, f.console, f.runtimeLog, f.process]) tryIt(() => unlink(p));
  if (!DEBUG) tryIt(() => unlink(f.diag));
  try {
    rmdir(dir); // with CRIO_MONITOR_DEBUG a dir holding its monitor.log stays (ENOTEMPTY)
  } catch (e) {
    if (!DEBUG) diag("warning", "ignored failure", { error: e });
  }
}
