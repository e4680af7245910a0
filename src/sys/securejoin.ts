import { lstatSync, readlinkSync, readFileSync } from "node:fs";
import { posix } from "node:path";

/**
 * Resolves `unsafe` inside `root` the way the container will see it: every symlink is
 * followed relative to `root`, never to the host's `/`, and `..` never leaves `root`
 * (the securejoin rule). Missing components are kept as they are.
 */
export function secureJoin(root: string, unsafe: string): string {
  let resolved = "/";
  const todo = unsafe.split("/").filter((p) => p !== "" && p !== ".");
  let links = 0;
  while (todo.length) {
    const part = todo.shift()!;
    if (part === "..") {
      resolved = posix.dirname(resolved);
      continue;
    }
    const next = posix.join(resolved, part);
    const host = posix.join(root, next);
    let st;
    try {
      st = lstatSync(host);
    } catch {
      resolved = next;
      continue;
    }
    if (st.isSymbolicLink()) {
      if (++links > 40) throw new Error(`too many levels of symbolic links resolving "${unsafe}" in "${root}"`);
      const target = readlinkSync(host);
      if (target.startsWith("/")) resolved = "/";
      todo.unshift(...target.split("/").filter((p) => p !== "" && p !== "."));
      continue;
    }
    resolved = next;
  }
  return posix.join(root, resolved);
}

/** Reads a file of a container's root filesystem safely; undefined when it does not exist. */
export function readInRoot(root: string, path: string): string | undefined {
  try {
    const p = secureJoin(root, path);
    if (!lstatSync(p).isFile()) return undefined;
    return readFileSync(p, "utf8");
  } catch {
    return undefined;
  }
}
