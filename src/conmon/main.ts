import { messageOf } from "../errors.ts";
import { write } from "../sys/libc.ts";
import { diag, setDiagFields } from "./diag.ts";
import { execSync } from "./exec-sync.ts";
import { LaunchError } from "./launch.ts";
import { removeDir } from "./monitor-dir.ts";
import { parseArgs, PROTOCOL, type MonitorArgs } from "./protocol.ts";
import { Reaper } from "./reaper.ts";
import { report } from "./report.ts";
import { awaitWork } from "./standby.ts";
import { supervise } from "./supervise.ts";

/**
 * The monitor role, `crio conmon ARGS…` (DESIGN.md §4, contract in protocol.ts): parses its
 * arguments, waits for its request when in standby, and hands over to its mode — supervise.ts
 * (create, exec) or exec-sync.ts. Returns the process exit code; the caller exits with it.
 * 0: the process ran and its exit was recorded (whatever its own exit code); 1: the runtime
 * failed (reported on fd 3); 2: bad arguments.
 */
export async function runConmon(args: string[]): Promise<number> {
  if (args[0] === "--version" || args[0] === "version") {
    write(1, new TextEncoder().encode(`crio conmon protocol ${PROTOCOL}\n`));
    return 0;
  }
  let a: MonitorArgs;
  try {
    a = parseArgs(args);
  } catch (e) {
    report({ error: `invalid monitor arguments: ${messageOf(e)}` }, true);
    return 2;
  }
  const reaper = new Reaper();
  try {
    reaper.start(); // before a standby's wait: its request then finds the subreaper set up
    if (a.standby) {
      const work = awaitWork(a);
      if (typeof work === "number") return work;
      a = work;
    }
    setDiagFields({ id: a.id });
    return a.mode === "exec-sync" ? await execSync(a, reaper) : await supervise(a, reaper);
  } catch (e) {
    if (!(e instanceof LaunchError)) diag("error", "monitor failed", { error: e });
    // an exec's dir goes before the report: once the daemon reads it, nothing of ours is left
    if (a.mode !== "create" && a.dir) removeDir(a.dir); // a standby without its request has no dir
    report({ error: messageOf(e) }, true);
    return 1;
  } finally {
    reaper.stop();
  }
}
