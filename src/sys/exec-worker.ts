/**
 * The daemon's spawner thread (see `offloadSpawns` in exec.ts). Bun.spawn blocks the calling
 * thread until the child has exec'd (vfork semantics): on a loaded node that is ms to tens of ms
 * per program, and the daemon runs several per pod (runc, CNI plugins, unshare). Here they block
 * this worker's thread, not the event loop that answers the kubelet.
 *
 * The daemon's blocking mount syscalls (umount2, mount) run here too, for the same reason.
 *
 * Messages in: {id, argv, stdin?, env, cwd?, timeoutMs?} to run, {kill: id} to SIGKILL one,
 * {id, sys: "umount2" | "mount", …} for a syscall.
 * Messages out: {id, code, stdout, stderr} or {id, error} (the program could not be started);
 * {id, rc, errno} for a syscall.
 */
import type { SpawnJob, SpawnReply, SyscallJob, SyscallReply } from "./exec.ts";
import { cstr, daemonLibc, errno } from "./libc.ts";
import { spawn } from "./spawn.ts";

declare const self: Worker;

const running = new Map<number, { kill(signal: "SIGKILL"): void }>();

self.onmessage = (e: MessageEvent<SpawnJob | SyscallJob | { kill: number }>) => {
  const m = e.data;
  if ("kill" in m) {
    running.get(m.kill)?.kill("SIGKILL");
    return;
  }
  if ("sys" in m) {
    self.postMessage(syscall(m));
    return;
  }
  void runJob(m);
};

function syscall(j: SyscallJob): SyscallReply {
  const rc =
    j.sys === "umount2"
      ? daemonLibc().umount2(cstr(j.target), j.flags)
      : daemonLibc().mount(cstr(j.source), cstr(j.target), cstr(j.fstype), j.flags, j.data === undefined ? null : cstr(j.data));
  return { id: j.id, rc, errno: rc === 0 ? 0 : errno() };
}

async function runJob(j: SpawnJob): Promise<void> {
  let p: ReturnType<typeof spawn<Uint8Array | "ignore", "pipe", "pipe">>;
  try {
    p = spawn(j.argv, {
      stdin: j.stdin ?? "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: j.env,
      cwd: j.cwd,
      timeout: j.timeoutMs,
      killSignal: "SIGKILL",
    });
  } catch (err) {
    self.postMessage({ id: j.id, error: err instanceof Error ? err.message : String(err) } satisfies SpawnReply);
    return;
  }
  running.set(j.id, p);
  try {
    const [stdout, stderr, code] = await Promise.all([
      new Response(p.stdout as ReadableStream).text(),
      new Response(p.stderr as ReadableStream).text(),
      p.exited,
    ]);
    self.postMessage({ id: j.id, code, stdout, stderr } satisfies SpawnReply);
  } catch (err) {
    self.postMessage({ id: j.id, error: err instanceof Error ? err.message : String(err) } satisfies SpawnReply);
  } finally {
    running.delete(j.id);
  }
}
