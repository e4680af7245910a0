import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { RuntimeError } from "../errors.ts";
import { writeFileAtomic } from "../store/index.ts";
import { RLIM_INFINITY, type Spec } from "./spec-types.ts";

/** An OCI bundle directory: config.json (+ the rootfs it points to, which lives elsewhere). */

/** The path of a bundle's config.json. */
export const configPath = (bundleDir: string): string => join(bundleDir, "config.json");

/** Serialises a spec as config.json text (RLIM_INFINITY written as 2^64-1). */
export function specToJson(spec: Spec): string {
  const text = JSON.stringify(spec, null, 2);
  return text.replace(new RegExp(`("(?:soft|hard)": )${RLIM_INFINITY}\\b`, "g"), (_m, key: string) => `${key}18446744073709551615`);
}

/** Creates the bundle directory and writes config.json atomically (0600). */
export async function writeBundle(bundleDir: string, spec: Spec): Promise<void> {
  await mkdir(bundleDir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(configPath(bundleDir), specToJson(spec), 0o600);
}

/** Reads a bundle's config.json; not-found when there is none. */
export async function readBundle(bundleDir: string): Promise<Spec> {
  let text: string;
  try {
    text = await readFile(configPath(bundleDir), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new RuntimeError("not-found", `bundle "${bundleDir}" not found`);
    throw e;
  }
  // 2^64-1 does not survive JSON.parse exactly; map it back to the marker.
  return JSON.parse(text.replace(/18446744073709551615/g, String(RLIM_INFINITY))) as Spec;
}

/** Removes a bundle directory. Idempotent. */
export async function removeBundle(bundleDir: string): Promise<void> {
  await rm(bundleDir, { recursive: true, force: true });
}
