/**
 * Files the node adds to every container, as CRI-O does after building the spec:
 *   - `timezone`: the zone file ("Local": the host's /etc/localtime, else
 *     /usr/share/zoneinfo/<name>) copied to `<bundle>/localtime` and bound read-only over
 *     /etc/localtime (containers/common pkg/timezone);
 *   - `default_mounts_file`: each `SRC[:DST]` line's host file or directory copied under the
 *     bundle and bound at DST (containers/common pkg/subscriptions, the "secrets" mounts of
 *     mounts.conf); a missing source is skipped, as there.
 * A destination the container already mounts (a CRI mount) wins over both.
 */
import { cpSync, existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { join, normalize } from "node:path";
import { invalid } from "../errors.ts";
import type { Mount } from "../oci/spec-types.ts";

/** One mounts.conf entry: a host path and where it appears in the container. */
export interface DefaultMount {
  source: string;
  destination: string;
}

/** Where the zone files live (Go's time.LoadLocation reads the same tree). */
export const ZONEINFO = "/usr/share/zoneinfo";

/** The host file a `timezone` value names; throws invalid-argument for a name that is no zone. */
export function zoneFile(tz: string, zoneinfo = ZONEINFO): string {
  if (tz.toLowerCase() === "local") return "/etc/localtime";
  if (!/^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/.test(tz)) throw invalid(`invalid timezone: ${tz}`);
  const p = join(zoneinfo, tz);
  let ok = false;
  try {
    ok = statSync(p).isFile();
  } catch {}
  if (!ok) throw invalid(`invalid timezone: ${tz} (no ${p})`);
  return p;
}

/** Parses a mounts.conf file: one `SRC[:DST]` per line, absolute paths; blank lines and # comments skipped. */
export function parseMountsFile(text: string, file: string): DefaultMount[] {
  const out: DefaultMount[] = [];
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const parts = line.split(":");
    const [source, destination = parts[0]!] = parts;
    if (parts.length > 2 || !source!.startsWith("/") || !destination.startsWith("/"))
      throw invalid(`${file} line ${i + 1}: "${line}" is not SRC[:DST] with absolute paths`);
    out.push({ source: normalize(source!), destination: normalize(destination) });
  }
  return out;
}

/**
 * Adds the timezone and default mounts to `mounts` (in place), copying their files under
 * `runDir`. `taken`: destinations the container mounts itself. `readonly`: the root filesystem is
 * read-only (CRI-O binds /etc/localtime with the rootfs's mode).
 */
export function addNodeFiles(o: {
  mounts: Mount[];
  runDir: string;
  timezone?: string;
  defaultMounts?: readonly DefaultMount[];
  taken: ReadonlySet<string>;
  readonly: boolean;
}): void {
  if (o.timezone && !o.taken.has("/etc/localtime")) {
    const src = zoneFile(o.timezone);
    const dst = join(o.runDir, "localtime");
    cpSync(realpathSync(src), dst, { dereference: true });
    o.mounts.push({ destination: "/etc/localtime", type: "bind", source: dst, options: [o.readonly ? "ro" : "rw", "bind", "nodev", "nosuid", "noexec"] });
  }
  for (const [i, m] of (o.defaultMounts ?? []).entries()) {
    if (o.taken.has(m.destination) || o.mounts.some((x) => x.destination === m.destination)) continue;
    if (!existsSync(m.source)) continue;
    const dst = join(o.runDir, "default-mounts", String(i));
    cpSync(realpathSync(m.source), dst, { recursive: true, dereference: true });
    o.mounts.push({ destination: m.destination, type: "bind", source: dst, options: ["bind", "rprivate"] });
  }
}

/** Reads and parses default_mounts_file ("" → none). */
export function readMountsFile(file: string): DefaultMount[] {
  if (!file) return [];
  return parseMountsFile(readFileSync(file, "utf8"), file);
}
