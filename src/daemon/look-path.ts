import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** Finds an executable in $PATH (synchronously); undefined when absent. */
export function lookPathSync(name: string): string | undefined {
  for (const dir of (process.env.PATH || "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(delimiter)) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}
