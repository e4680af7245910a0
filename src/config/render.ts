import { HANDLER_KEYS, TABLE_PATH, schema, type Config, type Field, type RuntimeHandler } from "./schema.ts";

/**
 * Renders a configuration as complete, commented TOML in CRI-O's table layout. Parsing the
 * output back gives the same configuration (`crio config --default` → the defaults exactly).
 */
export function renderConfig(c: Config): string {
  const out: string[] = [
    "# The CRI-O configuration file (crio in TypeScript).",
    "#",
    "# Read from /etc/crio/crio.conf, then every file of /etc/crio/crio.conf.d/ in lexical order;",
    "# command-line flags win over both. Options marked (reloadable) change on SIGHUP.",
    "",
  ];
  for (const [t, fields] of Object.entries(schema) as Array<[keyof typeof schema, Record<string, Field<unknown>>]>) {
    out.push(`[${TABLE_PATH[t]}]`, "");
    for (const [name, f] of Object.entries(fields)) {
      if (f.kind === "runtimes") continue;
      out.push(
        ...comment(
          f.doc + (f.reloadable ? " (reloadable)" : "") + (f.deprecated ? " (deprecated)" : "") + (f.noEffect ? ` Has no effect here: ${f.noEffect}.` : ""),
        ),
      );
      out.push(`${f.toml} = ${tomlValue((c[t] as Record<string, unknown>)[name])}`, "");
    }
    if (t === "runtime") {
      for (const [name, h] of Object.entries(c.runtime.runtimes)) out.push(...renderHandler(name, h));
    }
  }
  return out.join("\n");
}

/** A TOML literal for a string, boolean, number, string array or string map. */
export function tomlValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "boolean" || typeof v === "number") return String(v);
  if (Array.isArray(v)) return v.length === 0 ? "[]" : `[\n${v.map((x) => `  ${tomlValue(x)},`).join("\n")}\n]`;
  if (v && typeof v === "object")
    return `{ ${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)} = ${tomlValue(x)}`)
      .join(", ")} }`;
  throw new Error(`cannot render ${typeof v} as TOML`);
}

// --- internal ---

function renderHandler(name: string, h: RuntimeHandler): string[] {
  const out = [`[crio.runtime.runtimes.${name}]`, ""];
  for (const [key, spec] of Object.entries(HANDLER_KEYS)) {
    out.push(...comment(spec.doc), `${key} = ${tomlValue(h[spec.field])}`, "");
  }
  return out;
}

function comment(text: string): string[] {
  const words = text.split(" ");
  const lines: string[] = [];
  let cur = "#";
  for (const w of words) {
    if (cur.length + w.length + 1 > 100 && cur !== "#") {
      lines.push(cur);
      cur = "#";
    }
    cur += " " + w;
  }
  lines.push(cur);
  return lines;
}
