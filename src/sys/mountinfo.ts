// /proc/<pid>/mountinfo parsing: pure, no import (the monitor's OOM watch uses it too).

/** One line of /proc/self/mountinfo. */
export interface MountInfo {
  id: number;
  parent: number;
  /** The root of the mount within its filesystem. */
  root: string;
  mountPoint: string;
  options: string;
  fsType: string;
  source: string;
  superOptions: string;
}

/** Parses mountinfo text (octal escapes like \040 decoded). */
export function parseMountinfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const [pre = "", post = ""] = line.split(" - ");
    const f = pre.split(" ");
    const g = post.split(" ");
    if (f.length < 6 || g.length < 3) continue;
    out.push({
      id: Number(f[0]),
      parent: Number(f[1]),
      root: unescapeOctal(f[3] ?? ""),
      mountPoint: unescapeOctal(f[4] ?? ""),
      options: f[5] ?? "",
      fsType: g[0] ?? "",
      source: unescapeOctal(g[1] ?? ""),
      superOptions: g[2] ?? "",
    });
  }
  return out;
}

// --- internal ---

function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}
