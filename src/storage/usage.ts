import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

const cache = new Map<string, { at: number; value: { mountpoint: string; usedBytes: number; inodesUsed: number; timestamp: number } }>();

/**
 * Bytes (in 4 KiB blocks actually used) and inodes under `dir`, without following symlinks or
 * crossing into mounts' contents twice; cached for `maxAgeMs` because the kubelet polls it.
 */
export async function dirUsage(dir: string, maxAgeMs = 5_000): Promise<{ mountpoint: string; usedBytes: number; inodesUsed: number; timestamp: number }> {
  const hit = cache.get(dir);
  if (hit && Date.now() - hit.at < maxAgeMs) return hit.value;
  let bytes = 0;
  let inodes = 0;
  const seen = new Set<string>();
  const walk = async (d: string, dev: number) => {
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      let st;
      try {
        st = await lstat(p);
      } catch {
        continue;
      }
      if (st.dev !== dev) continue; // a mount (a container's merged rootfs): its upper dir is counted already
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inodes++;
      bytes += st.blocks * 512;
      if (st.isDirectory()) await walk(p, dev);
    }
  };
  try {
    const st = await lstat(dir);
    await walk(dir, st.dev);
  } catch {}
  const value = { mountpoint: dir, usedBytes: bytes, inodesUsed: inodes, timestamp: Date.now() };
  cache.set(dir, { at: Date.now(), value });
  return value;
}
