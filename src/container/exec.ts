import { precondition, wrap } from "../errors.ts";
import { readBundle } from "../oci/index.ts";
import type { ContainerCtx, Rec } from "./context.ts";
import type { ContainerView } from "./record.ts";
import { can } from "./state.ts";

/** An OCI process (runtime-spec `process`), as `runtime exec --process` takes it. */
export type ExecProcess = Record<string, unknown> & { args: string[]; terminal: boolean };

/** The guard of exec, exec-sync and attach: the container (id or unique prefix) must be RUNNING. */
export function runningContainer(c: ContainerCtx, id: string): Rec {
  const rec = c.index.get("container", id);
  if (!can.exec(rec.status.state)) throw precondition(`container "${rec.meta.id}" is not running`);
  return rec;
}

/**
 * The process an exec runs in the container: the container's own from its bundle (user, env, cwd,
 * capabilities, rlimits) with `cmd` as its arguments; a console size is left to the client's
 * resizes.
 */
export async function execProcess(c: ContainerView, cmd: string[], terminal: boolean): Promise<ExecProcess> {
  const spec = await readBundle(c.meta.bundle).catch((e) => {
    throw wrap(e, `read bundle of "${c.meta.id}"`);
  });
  const { consoleSize: _c, ...base } = (spec.process ?? {}) as { consoleSize?: unknown } & Record<string, unknown>;
  return { ...base, args: cmd, terminal };
}
