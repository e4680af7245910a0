import { close, write } from "../sys/libc.ts";
import { diag } from "./diag.ts";
import { encodeSync, SYNC_FD, type SyncMessage } from "./protocol.ts";

/** Sends one message on the sync pipe (fd 3, protocol.ts §2); a daemon that went away is not an error. */
export function report(m: SyncMessage, last: boolean): void {
  try {
    write(SYNC_FD, new TextEncoder().encode(encodeSync(m)));
  } catch (e) {
    diag("warning", "cannot report to the daemon", { error: e });
  }
  if (last) close(SYNC_FD);
}
