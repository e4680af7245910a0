/**
 * User namespaces with given id mappings, made by a child process (the daemon is multi-threaded
 * and never unshares itself; see namespaces.ts). util-linux `unshare` creates the namespace — and,
 * in the same unshare(2), the namespaces that must be owned by it — and then runs a shell that
 * says "ready" and waits; the daemon, still root in the initial user namespace, writes the
 * shell's /proc/<pid>/uid_map and gid_map (unshare's own --map-users needs newuidmap and
 * /etc/subuid), then lets the shell exit. Pinned namespaces stay (bind mounts); a temporary one
 * lives while its fd is open.
 */
import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { RuntimeError } from "../errors.ts";
import type { IdMap } from "./idmap.ts";
import { readFirstLine, spawn } from "./spawn.ts";

export type { IdMap } from "./idmap.ts";

/** A child waiting inside a new user namespace whose mappings are written. */
export interface UsernsChild {
  pid: number;
  /** Lets the child exit and waits for it; throws when it failed. */
  finish(): Promise<void>;
  /** Kills the child (on failure paths). */
  kill(): void;
}

/**
 * Runs `unshare <flags> -- sh` (flags include --user or --user=<pin>), writes the mappings for the
 * waiting shell, and returns it. Throws internal with unshare's stderr when it fails.
 */
export async function spawnInUserns(
  unshare: string,
  flags: string[],
  uids: readonly IdMap[],
  gids: readonly IdMap[],
  timeoutMs = 30_000,
): Promise<UsernsChild> {
  const argv = [unshare, ...flags, "--", "/bin/sh", "-c", "echo ready; read _"];
  const p = spawn(argv, {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    env: process.env as Record<string, string>,
    timeout: timeoutMs,
    killSignal: "SIGKILL",
  });
  const stderr = new Response(p.stderr as ReadableStream).text();
  const seen = await readFirstLine(p.stdout);
  const failed = async (why: string): Promise<never> => {
    p.kill("SIGKILL");
    const code = await p.exited;
    throw new RuntimeError("internal", `${why}: ${unshare} ${flags.join(" ")} (exit ${code}): ${(await stderr).trim().slice(-2000)}`);
  };
  if (!seen.startsWith("ready")) return failed("create user namespace");
  try {
    writeFileSync(`/proc/${p.pid}/uid_map`, mapText(uids));
    writeFileSync(`/proc/${p.pid}/gid_map`, mapText(gids));
  } catch (e) {
    return failed(`write the user namespace mappings (${(e as Error).message})`);
  }
  return {
    pid: p.pid,
    kill: () => p.kill("SIGKILL"),
    finish: async () => {
      const w = p.stdin as import("bun").FileSink;
      w.write("\n");
      await w.end();
      const code = await p.exited;
      if (code !== 0) throw new RuntimeError("internal", `user namespace helper exited ${code}: ${(await stderr).trim().slice(-2000)}`);
    },
  };
}

/** Runs `fn` with an open fd of a temporary user namespace with these mappings; the namespace goes with the fd. */
export async function withTempUserns<T>(unshare: string, uids: readonly IdMap[], gids: readonly IdMap[], fn: (fd: number) => T | Promise<T>): Promise<T> {
  const child = await spawnInUserns(unshare, ["--user"], uids, gids);
  let fd = -1;
  try {
    fd = openSync(`/proc/${child.pid}/ns/user`, "r");
  } catch (e) {
    child.kill();
    throw new RuntimeError("internal", `open the user namespace of ${child.pid}: ${(e as Error).message}`);
  }
  try {
    await child.finish();
    return await fn(fd);
  } finally {
    closeSync(fd);
  }
}

/** The mappings of a user namespace file, as uid_map shows them ("" when unreadable). */
export function readMaps(pid: number | "self"): { uid: string; gid: string } {
  const r = (k: string) => {
    try {
      return readFileSync(`/proc/${pid}/${k}`, "utf8");
    } catch {
      return "";
    }
  };
  return { uid: r("uid_map"), gid: r("gid_map") };
}

/** The host id container id `id` maps to, or undefined when it is not mapped. */
export function hostIdOf(maps: readonly IdMap[], id: number): number | undefined {
  for (const m of maps) if (id >= m.containerId && id < m.containerId + m.length) return m.hostId + (id - m.containerId);
  return undefined;
}

/** uid_map/gid_map text of a mapping list. */
export function mapText(maps: readonly IdMap[]): string {
  return maps.map((m) => `${m.containerId} ${m.hostId} ${m.length}\n`).join("");
}
