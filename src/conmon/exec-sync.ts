import { launch } from "./launch.ts";
import { removeDir } from "./monitor-dir.ts";
import { awaitExit } from "./process-io.ts";
import type { MonitorArgs } from "./protocol.ts";
import type { Reaper } from "./reaper.ts";
import { report } from "./report.ts";

/**
 * The exec-sync monitor (`--mode exec-sync`, protocol.ts §2): output goes straight to the
 * daemon's pipes; the timeout is enforced on the process tree; the exit is reported last.
 */
export async function execSync(a: MonitorArgs, reaper: Reaper): Promise<number> {
  const proc = await launch(a, reaper);
  report({ pid: proc.pid }, false);
  const { exit, timedOut } = await awaitExit(proc, a.timeoutMs);
  removeDir(a.dir); // before the report: the daemon's answer then leaves nothing behind
  report({ exitCode: exit.exitCode, timedOut }, true);
  return 0;
}
