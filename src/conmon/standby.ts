import { messageOf } from "../errors.ts";
import { close, dup2, O, open, pollIn, read, setCmdline } from "../sys/libc.ts";
import { diag, tryIt } from "./diag.ts";
import { applyExecRequest, monitorFiles, type MonitorArgs } from "./protocol.ts";
import { report } from "./report.ts";
import { dropStartup } from "./settle.ts";

/**
 * A standby monitor's wait (protocol.ts §1): it gives back what start-up left, blocks until the
 * daemon's request arrives on fd 0 and returns the arguments it completes — or the exit code
 * when there is nothing to do (0: the daemon closed the pipe; 2: a bad request, reported).
 */
export function awaitWork(a: MonitorArgs): MonitorArgs | number {
  // it may wait long: give back what start-up left mapped and garbage first (as settling does;
  // the code it runs when woken maps back in from the page cache). Waiting: ~20 → ~5 MB PSS.
  dropStartup();
  const line = awaitRequest();
  if (line === undefined) return 0; // the daemon closed the pipe (shut down or died): not needed
  try {
    a = applyExecRequest(a, line);
  } catch (e) {
    report({ error: `invalid ${a.mode} request: ${messageOf(e)}` }, true);
    return 2;
  }
  // a cold exec or create monitor's fd 2 is <dir>/monitor.log from the start (the daemon made the dir)
  if (a.mode === "exec" || a.mode === "create") tryIt(() => divertDiag(monitorFiles(a.dir).diag));
  // a container's monitor lives as long as it: let ps and tools find it by the container's id
  if (a.mode === "create") tryIt(() => retitle(a));
  return a;
}

// --- internal ---

/**
 * Blocks in poll(2) on fd 0 — no timer, no wakeup, nothing else to do — until the daemon's
 * request line arrives. Undefined at end of file before a full line (the daemon closed its end,
 * or died: the kernel closes it then) or on a line beyond REQUEST_MAX.
 */
function awaitRequest(): string | undefined {
  const buf = new Uint8Array(REQUEST_MAX);
  const dec = new TextDecoder();
  let text = "";
  try {
    for (;;) {
      pollIn(0, -1);
      const n = read(0, buf);
      if (n === 0) return undefined;
      if (n < 0) continue;
      text += dec.decode(buf.subarray(0, n), { stream: true });
      const nl = text.indexOf("\n");
      if (nl >= 0) return text.slice(0, nl);
      if (text.length > REQUEST_MAX) return undefined;
    }
  } catch (e) {
    diag("warning", "cannot read the standby request", { error: e });
    return undefined;
  }
}

/** A request is one short JSON line (ids and a socket-length dir); anything longer is refused. */
const REQUEST_MAX = 8192;

/**
 * Shows a container monitor that started in standby (its argv names no container) as a cold one
 * would be seen: `<exe> conmon --mode create --id <id> …`, as long as the original argv has room.
 */
function retitle(a: MonitorArgs): void {
  const exe = process.execPath;
  const tries = [
    [exe, "conmon", "--mode", "create", "--id", a.id, "--container", a.container, "--runtime-command", JSON.stringify(a.runtime)],
    [exe, "conmon", "--mode", "create", "--id", a.id],
    ["crio", "conmon", "--id", a.id],
  ];
  for (const t of tries) if (setCmdline(t)) return;
  diag("warning", "no room to show the container id in the command line", { id: a.id });
}

/** Points fd 2 (diagnostics) at `path`, appending. */
function divertDiag(path: string): void {
  const fd = open(path, O.WRONLY | O.APPEND | O.CREAT, 0o600);
  try {
    dup2(fd, 2);
  } finally {
    close(fd);
  }
}
