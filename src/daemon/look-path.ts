import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

const found = new Map<string, string>();

/**
 * Finds an executable in $PATH (synchronously); undefined when absent. A name found is
 * remembered for the same $PATH (as CRI-O resolves a handler's runtime once): the daemon asks for
 * its runtime on every container operation. An absent one is looked for again each time.
 */
export function lookPathSync(name: string): string | undefined {
  const key = `${process.env.PATH ?? ""}\0${name}`;
  const hit = found.get(key);
  if (hit !== undefined) return hit;
  const p = lookPathUncached(name);
  if (p !== undefined) found.set(key, p);
  return p;
}

function lookPathUncached(name: string): string | undefined {
  for (const dir of (process.env.PATH || "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(delimiter)) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}
