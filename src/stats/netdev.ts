import { statSync } from "node:fs";
import { run } from "../sys/exec.ts";
import { type KeptFiles, readOnce } from "../sys/kept-files.ts";
import { nsenterCommand } from "../sys/namespaces.ts";
import type { InterfaceCounters } from "./types.ts";

/** Parses /proc/net/dev; the loopback interface is left out (as cAdvisor does). */
export function parseNetDev(text: string): InterfaceCounters[] {
  const out: InterfaceCounters[] = [];
  for (const line of text.split("\n")) {
    const i = line.indexOf(":");
    if (i < 0 || line.includes("|")) continue;
    const name = line.slice(0, i).trim();
    const f = line
      .slice(i + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (!name || name === "lo" || f.length < 16 || f.some((n) => !Number.isFinite(n))) continue;
    out.push({
      name,
      rxBytes: f[0]!,
      rxPackets: f[1]!,
      rxErrors: f[2]!,
      rxDropped: f[3]!,
      txBytes: f[8]!,
      txPackets: f[9]!,
      txErrors: f[10]!,
      txDropped: f[11]!,
    });
  }
  return out;
}

/** How a pod's interface counters are read. */
export interface NetDevReader {
  /**
   * /proc/net/dev as seen inside the network namespace pinned at `netns`. `pids` are processes
   * that may live in it (infra and containers): when one does, /proc/<pid>/net/dev is read
   * directly; otherwise a helper process reads it inside the namespace (the daemon never
   * enters namespaces itself). `ownerOf(pid)`: the container a pid belongs to, whose
   * descriptors are closed when it stops — /proc/<pid>/net/dev is then kept open under it.
   */
  read(netns: string, pids: number[], ownerOf?: (pid: number) => string | undefined): Promise<string>;
}

/**
 * The real reader: /proc/<pid>/net/dev when a process shares the namespace, else `nsenter --net …
 * cat /proc/net/dev`. A pin's identity (device and inode of the nsfs file) is looked up once per
 * pin path: a pod's pin path is its own and names one namespace for the pod's life. With `files`
 * and an owner for the pid, the descriptor is kept (under the container) and read again at
 * offset 0: an open /proc/<pid>/net/dev stays bound to the namespace it was opened in (checked
 * then, before and after the open), whatever becomes of the pid. It also keeps that namespace
 * alive, so it is closed with the container's other files when the container stops.
 */
export function netDevReader(o: { procRoot?: string; helper?: (netns: string) => Promise<string>; files?: KeptFiles } = {}): NetDevReader {
  const procRoot = o.procRoot ?? "/proc";
  const helper = o.helper ?? ((netns: string) => run(nsenterCommand({ net: netns }, ["cat", "/proc/net/dev"]), { timeoutMs: 10_000 }));
  const pins = new Map<string, string>();
  return {
    async read(netns, pids, ownerOf) {
      let want = pins.get(netns);
      if (!want && (want = nsId(netns))) {
        if (pins.size >= MAX_PINS) pins.clear();
        pins.set(netns, want);
      }
      if (want) {
        for (const pid of pids) {
          const dev = `${procRoot}/${pid}/net/dev`;
          const owner = o.files && ownerOf?.(pid);
          if (owner && o.files!.isKept(owner, dev)) {
            const text = o.files!.read(owner, dev, false);
            if (text !== undefined) return text;
            o.files!.drop(owner, dev);
          }
          // The namespace identity is checked before and after, so a recycled pid cannot report another pod.
          const ns = `${procRoot}/${pid}/ns/net`;
          if (nsId(ns) !== want) continue;
          const text = owner ? o.files!.read(owner, dev, false) : readOnce(dev); // undefined: exited meanwhile
          if (text !== undefined && nsId(ns) === want) return text;
          if (owner) o.files!.drop(owner, dev);
        }
      }
      return await helper(netns);
    },
  };
}

// --- internal ---

/** Pin identities remembered at most (more than a node's pods; the map starts over beyond). */
const MAX_PINS = 4096;

function nsId(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}
