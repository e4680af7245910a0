import { stat, unlink } from "node:fs/promises";
import { connect } from "node:net";
import { RuntimeError } from "../errors.ts";
import { shortSocketPath } from "./short-path.ts";

/**
 * Makes `path` free for a new unix socket listener: a socket file no process answers on (a crash
 * left it) is removed; a live one is ALREADY_EXISTS (never steal it: "<who> is already listening");
 * a path that is not a socket is FAILED_PRECONDITION.
 */
export async function claimUnixSocket(path: string, who = "another process"): Promise<void> {
  let st;
  try {
    st = await stat(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new RuntimeError("failed-precondition", `"${path}" exists and is not a socket`);
  if (await socketAnswers(path)) throw new RuntimeError("already-exists", `${who} is already listening on "${path}"`);
  await unlink(path);
}

/** True when a unix socket accepts a connection now (any path length: connects through its short alias). */
export function socketAnswers(path: string): Promise<boolean> {
  let alias;
  try {
    alias = shortSocketPath(path);
  } catch {
    return Promise.resolve(false); // no such directory, or no name a socket could have
  }
  const answers = new Promise<boolean>((resolve) => {
    const s = connect(alias.path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
  return answers.finally(() => alias.release());
}
