import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { ConfigError } from "./error.ts";
import {
  HANDLER_KEYS,
  IGNORED_TABLES,
  TABLE_PATH,
  allFields,
  defaultHandler,
  defaults,
  envOf,
  flagOf,
  type Config,
  type Field,
  type RuntimeHandler,
} from "./schema.ts";
import { validate } from "./validate.ts";

export { ConfigError };

/** Values from the command line (or CRI-O's CONTAINER_* environment names), keyed by flag name. */
export type FlagValues = Record<string, string | boolean | undefined>;

export interface LoadOptions {
  /** Main file; a missing file is fine unless `configFileRequired`. */
  configFile: string;
  configFileRequired?: boolean;
  /** Drop-in directory, read recursively in lexical order. */
  configDir: string;
  flags?: FlagValues;
  env?: Record<string, string | undefined>;
  /** Skip files and flags: the pure defaults. */
  defaultsOnly?: boolean;
}

export interface Loaded {
  config: Config;
  /** Files read, in the order applied. */
  files: string[];
  /** One line per unsupported key: file and key. */
  warnings: string[];
  /** Where each key got its value: "table.key" → file path or "--flag". */
  sources: Map<string, string>;
}

/** Loads defaults < main file < drop-ins (lexical order) < flags and environment; validates; freezes. */
export async function loadConfig(o: LoadOptions): Promise<Loaded> {
  const cfg = defaults() as unknown as Record<string, Record<string, unknown>>;
  const files: string[] = [];
  const warnings: string[] = [];
  const sources = new Map<string, string>();
  if (!o.defaultsOnly) {
    for (const file of await configFiles(o)) {
      applyFile(cfg, file, await readToml(file), warnings, sources);
      files.push(file);
    }
    applyFlags(cfg, o.flags ?? {}, o.env ?? {}, sources);
  }
  // CRI-O raises ctr_stop_timeout below its 30 s floor to the floor, with a warning
  const stop = cfg.runtime!.ctrStopTimeout;
  if (typeof stop === "number" && Number.isInteger(stop) && stop >= 0 && stop < 30) {
    warnings.push(`config key "crio.runtime.ctr_stop_timeout" = ${stop}: forcing it to the lowest possible value of 30s`);
    cfg.runtime!.ctrStopTimeout = 30;
  }
  const config = deepFreeze(cfg) as unknown as Config;
  validate(config, sources);
  return { config, files, warnings, sources };
}

/** The flags every daemon command accepts, derived from the schema: flag → kind and doc. */
export function schemaFlags(): Array<{ flag: string; kind: Field<unknown>["kind"]; doc: string; env: string }> {
  const out = allFields()
    .map(({ field }) => ({ flag: flagOf(field), kind: field.kind, doc: field.doc }))
    .filter((f): f is { flag: string; kind: Field<unknown>["kind"]; doc: string } => f.flag !== undefined)
    .map((f) => ({ ...f, env: envOf(f.flag) }));
  out.push({ flag: "runtimes", kind: "strings", doc: "Runtime handlers, name:path:root:type, comma separated.", env: envOf("runtimes") });
  return out;
}

// --- internal ---

async function configFiles(o: LoadOptions): Promise<string[]> {
  const out: string[] = [];
  if (await isFile(o.configFile)) out.push(o.configFile);
  else if (o.configFileRequired) throw new ConfigError(`config file "${o.configFile}" does not exist`);
  out.push(...(await walk(o.configDir)).sort());
  return out;
}

async function walk(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new ConfigError(`config directory "${dir}": ${(e as Error).message}`);
  }
  const out: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile() || (e.isSymbolicLink() && (await isFile(p)))) out.push(p);
  }
  return out;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

async function readToml(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new ConfigError(`config file "${file}": ${(e as Error).message}`);
  }
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`config file "${file}" is not valid TOML: ${(e as Error).message.split("\n")[0]}`);
  }
}

const FIELD_BY_TOML = new Map<string, { table: string; name: string; field: Field<unknown> }>(
  allFields().map((f) => [`${TABLE_PATH[f.table]}.${f.field.toml}`, f]),
);

function applyFile(
  cfg: Record<string, Record<string, unknown>>,
  file: string,
  doc: Record<string, unknown>,
  warnings: string[],
  sources: Map<string, string>,
): void {
  const walkTable = (prefix: string, table: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(table)) {
      const key = prefix ? `${prefix}.${k}` : k;
      const known = FIELD_BY_TOML.get(key);
      if (known) {
        if (known.field.kind === "runtimes") applyRuntimes(cfg, file, key, v, warnings, sources);
        else cfg[known.table]![known.name] = fromToml(known.field, v, `config file "${file}": key "${key}"`);
        sources.set(key, file);
      } else if (isTable(v) && (Object.values(TABLE_PATH).includes(key) || key === "crio")) {
        walkTable(key, v);
      } else if (IGNORED_TABLES.some((t) => key === t || key.startsWith(t + "."))) {
        warnings.push(`config file "${file}": table "${key}" is not supported and is ignored`);
      } else {
        warnings.push(`config file "${file}": unknown key "${key}" is ignored`);
      }
    }
  };
  walkTable("", doc);
}

function applyRuntimes(
  cfg: Record<string, Record<string, unknown>>,
  file: string,
  key: string,
  v: unknown,
  warnings: string[],
  sources: Map<string, string>,
): void {
  if (!isTable(v)) throw new ConfigError(`config file "${file}": key "${key}": expected a table of runtime handlers`);
  const runtimes = cfg.runtime!.runtimes as Record<string, RuntimeHandler>;
  for (const [name, body] of Object.entries(v)) {
    const where = `config file "${file}": key "${key}.${name}"`;
    if (!isTable(body)) throw new ConfigError(`${where}: expected a table`);
    const h: RuntimeHandler = runtimes[name] ? { ...runtimes[name]! } : defaultHandler(name);
    for (const [hk, hv] of Object.entries(body)) {
      const spec = HANDLER_KEYS[hk];
      if (!spec) {
        warnings.push(`config file "${file}": unknown key "${key}.${name}.${hk}" is ignored`);
        continue;
      }
      const w = `${where}.${hk}`;
      if (spec.kind === "map") {
        if (!isTable(hv) || !Object.values(hv).every((x) => typeof x === "string")) throw new ConfigError(`${w}: expected a table of strings`);
        (h as unknown as Record<string, unknown>)[spec.field] = { ...hv };
      } else {
        (h as unknown as Record<string, unknown>)[spec.field] = fromToml({ kind: spec.kind } as Field<unknown>, hv, w);
      }
    }
    runtimes[name] = h;
    sources.set(`${key}.${name}`, file);
  }
}

function fromToml(f: Pick<Field<unknown>, "kind">, v: unknown, where: string): unknown {
  const bad = (expected: string) =>
    new ConfigError(`${where}: value ${JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x))} is not valid: expected ${expected}`);
  switch (f.kind) {
    case "string":
    case "path":
    case "duration":
      if (typeof v !== "string") throw bad("a string");
      return v;
    case "bool":
      if (typeof v !== "boolean") throw bad("true or false");
      return v;
    case "int":
      if (typeof v === "bigint") throw bad("an integer within range");
      if (typeof v !== "number" || !Number.isInteger(v)) throw bad("an integer");
      return v;
    case "strings":
      if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw bad("an array of strings");
      return [...v];
    default:
      throw bad("a table");
  }
}

function applyFlags(
  cfg: Record<string, Record<string, unknown>>,
  flags: FlagValues,
  env: Record<string, string | undefined>,
  sources: Map<string, string>,
): void {
  for (const { table, name, field } of allFields()) {
    const flag = flagOf(field);
    if (!flag) continue;
    const fromFlag = flags[flag];
    const fromEnv = env[envOf(flag)];
    const raw = fromFlag !== undefined ? fromFlag : fromEnv;
    if (raw === undefined) continue;
    const where = fromFlag !== undefined ? `flag --${flag}` : `environment variable ${envOf(flag)}`;
    cfg[table]![name] = fromFlagValue(field, raw, where);
    sources.set(`${TABLE_PATH[table]}.${field.toml}`, where);
  }
  const rt = flags.runtimes ?? env[envOf("runtimes")];
  if (typeof rt === "string" && rt !== "") {
    const runtimes = cfg.runtime!.runtimes as Record<string, RuntimeHandler>;
    for (const spec of rt.split(",")) {
      const [name, path, root, type] = spec.split(":");
      if (!name || !path) throw new ConfigError(`flag --runtimes: value "${spec}" is not valid: expected name:path[:root[:type]]`);
      runtimes[name] = {
        ...(runtimes[name] ?? defaultHandler(name)),
        runtimePath: path,
        ...(root ? { runtimeRoot: root } : {}),
        ...(type ? { runtimeType: type } : {}),
      };
    }
    sources.set("crio.runtime.runtimes", "flag --runtimes");
  }
}

function fromFlagValue(f: Field<unknown>, raw: string | boolean, where: string): unknown {
  const bad = (expected: string) => new ConfigError(`${where}: value "${String(raw)}" is not valid: expected ${expected}`);
  switch (f.kind) {
    case "bool":
      if (typeof raw === "boolean") return raw;
      if (/^(true|1)$/i.test(raw)) return true;
      if (/^(false|0)$/i.test(raw)) return false;
      throw bad("true or false");
    case "int": {
      const s = String(raw);
      if (!/^-?\d+$/.test(s)) throw bad("an integer");
      return Number(s);
    }
    case "strings":
      return typeof raw === "string"
        ? raw
            .split(",")
            .map((x) => x.trim())
            .filter((x) => x !== "")
        : [];
    default:
      if (typeof raw !== "string") throw bad("a value");
      return raw;
  }
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object") {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
