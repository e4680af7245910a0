/**
 * Finding an executable in a search path ($PATH by default), as exec.LookPath does: the one
 * lookup of the program (runtimes, util-linux and iproute2 tools, apparmor_parser, zstd).
 */

/** The search path when $PATH is unset or empty (Go's and CRI-O's default for root). */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The first executable file `name` in `path` (colon-separated), or undefined. */
export function lookPath(name: string, path = process.env.PATH || DEFAULT_PATH): string | undefined {
  return Bun.which(name, { PATH: path }) ?? undefined;
}

/**
 * lookPath, remembered once found for the same `path` (as CRI-O resolves a handler's runtime
 * once: the daemon asks for its runtime on every container operation). An absent one is looked
 * for again each time (it may be installed later).
 */
export function lookPathCached(name: string, path = process.env.PATH || DEFAULT_PATH): string | undefined {
  const key = `${path}\0${name}`;
  const hit = found.get(key);
  if (hit !== undefined) return hit;
  const p = lookPath(name, path);
  if (p !== undefined) found.set(key, p);
  return p;
}

const found = new Map<string, string>();
