import { readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { invalid, messageOf } from "../errors.ts";
import type { Logger } from "../log/index.ts";
import { parseCdiSpec, type CdiResolved, type CdiSpec } from "./spec/cdi.ts";

/**
 * The CDI registry over cdi_spec_dirs, as the CDI library's cache: every *.json and *.yaml file of
 * each directory (missing directories are skipped), a device of a later directory overriding the
 * same device of an earlier one, and a device defined twice in the same directory dropped as a
 * conflict. It is re-read when the directories' list, their files or the files' mtimes or sizes
 * change (checked on each lookup, which happens only for containers that ask for CDI devices). A
 * spec file that does not parse or validate is skipped and logged once per version of the file,
 * never failing the devices of other files.
 */
export class CdiRegistry {
  #stamp = "";
  #devices = new Map<string, CdiResolved>();
  #errors = new Map<string, string>();
  #warned = new Set<string>();

  constructor(
    private readonly dirs: () => readonly string[],
    private readonly log: Logger,
  ) {}

  /**
   * Resolves qualified device names (vendor.com/class=name). invalid-argument naming every device
   * that no spec defines (with the spec errors that may explain it); nothing is applied then.
   */
  resolve(names: readonly string[]): CdiResolved[] {
    if (names.length === 0) return [];
    this.#refresh();
    const unresolved = names.filter((n) => !this.#devices.has(n));
    if (unresolved.length > 0) {
      const errs = [...this.#errors.values()];
      throw invalid(`CDI device injection failed: unresolvable CDI devices ${unresolved.join(", ")}${errs.length ? ` (spec errors: ${errs.join("; ")})` : ""}`);
    }
    return names.map((n) => this.#devices.get(n)!);
  }

  /** The qualified names of every device known now (re-reading the directories when they changed). */
  list(): string[] {
    this.#refresh();
    return [...this.#devices.keys()].sort();
  }

  // --- internal ---

  #refresh(): void {
    const files = this.#scan();
    const stamp = JSON.stringify(files);
    if (stamp === this.#stamp) return;
    const devices = new Map<string, CdiResolved>();
    const conflicts = new Set<string>();
    const errors = new Map<string, string>();
    for (const f of files) {
      let spec: CdiSpec;
      try {
        spec = parseCdiSpec(readFileSync(f.path, "utf8"), f.path, f.priority, (t) => Bun.YAML.parse(t));
      } catch (e) {
        errors.set(f.path, messageOf(e));
        const key = `${f.path}@${f.mtime}:${f.size}`;
        if (!this.#warned.has(key)) {
          this.#warned.add(key);
          this.log.warn(`skipping CDI spec: ${messageOf(e)}`);
        }
        continue;
      }
      for (const [name, edits] of spec.devices) {
        const qualified = `${spec.kind}=${name}`;
        const old = devices.get(qualified);
        if (old && old.spec.priority === spec.priority) {
          conflicts.add(qualified);
          const msg = `conflicting device "${qualified}" (specs "${spec.path}", "${old.spec.path}")`;
          errors.set(spec.path, msg);
          continue;
        }
        conflicts.delete(qualified); // a later directory's definition settles a conflict of an earlier one
        devices.set(qualified, { name: qualified, spec, edits });
      }
    }
    for (const c of conflicts) devices.delete(c);
    this.#devices = devices;
    this.#errors = errors;
    this.#stamp = stamp;
    this.log.debug(`CDI registry refreshed: ${devices.size} devices from ${files.length} spec files`);
  }

  #scan(): Array<{ path: string; priority: number; mtime: number; size: number }> {
    const out: Array<{ path: string; priority: number; mtime: number; size: number }> = [];
    for (const [priority, dir] of this.dirs().entries()) {
      let names: string[];
      try {
        names = readdirSync(dir).sort();
      } catch {
        continue; // a missing directory holds no specs
      }
      for (const name of names) {
        if (![".json", ".yaml"].includes(extname(name))) continue;
        const path = join(dir, name);
        try {
          const st = statSync(path);
          if (st.isFile()) out.push({ path, priority, mtime: st.mtimeMs, size: st.size });
        } catch {
          // vanished while scanning
        }
      }
    }
    return out;
  }
}
