import { TABLE_PATH, allFields, type Config } from "../config/schema.ts";

/** A reloadable option whose value changed: its TOML key and new value. */
export interface Change {
  table: string;
  key: string;
  value: unknown;
}

/** The reloadable options that differ between two configurations, in schema order. */
export function reloadableChanges(prev: Config, next: Config): Change[] {
  const out: Change[] = [];
  for (const { table, name, field } of allFields()) {
    if (!field.reloadable) continue;
    const a = (prev[table] as Record<string, unknown>)[name];
    const b = (next[table] as Record<string, unknown>)[name];
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ table: TABLE_PATH[table], key: field.toml, value: b });
  }
  return out;
}

/**
 * The configuration after a reload: reloadable options from `next`, everything else kept from
 * `prev` (CRI-O applies only the reloadable options; the others need a restart).
 */
export function applyReloadable(prev: Config, next: Config): Config {
  const out = structuredClone(prev) as unknown as Record<string, Record<string, unknown>>;
  for (const { table, name, field } of allFields()) if (field.reloadable) out[table]![name] = structuredClone((next[table] as Record<string, unknown>)[name]);
  // default_runtime may name a handler only the new file defines: take the runtimes table too.
  if (prev.runtime.defaultRuntime !== next.runtime.defaultRuntime) out.runtime!.runtimes = structuredClone(next.runtime.runtimes);
  return freeze(out) as unknown as Config;
}

function freeze<T>(o: T): T {
  if (o && typeof o === "object") {
    for (const v of Object.values(o)) freeze(v);
    Object.freeze(o);
  }
  return o;
}
