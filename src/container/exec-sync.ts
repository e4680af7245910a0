import { RuntimeError } from "../errors.ts";
import type { ContainerCtx } from "./context.ts";
import { execProcess, runningContainer } from "./exec.ts";

/** ExecSync: runs a command in a running container; output capped at 16 MiB each. */
export async function execSync(
  c: ContainerCtx,
  id: string,
  cmd: string[],
  timeoutS: number,
): Promise<{ exitCode: number; stdout: Uint8Array; stderr: Uint8Array }> {
  const rec = runningContainer(c, id);
  if (cmd.length === 0) throw new RuntimeError("invalid-argument", "ExecSync needs a command");
  const handler = c.d.handlers.get(rec.meta.runtimeHandler);
  // The exec'd process runs as the container's own: its user, env, cwd, capabilities, rlimits.
  const process = await execProcess(rec, cmd, false);
  const r = await handler.execSync({ id: rec.meta.id, process, timeoutMs: timeoutS > 0 ? timeoutS * 1000 : 0 });
  if (r.timedOut) throw new RuntimeError("deadline-exceeded", `command ${JSON.stringify(cmd)} timed out after ${timeoutS}s`);
  return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}
