import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { invalid, messageOf } from "../errors.ts";
import { parseReference } from "./reference.ts";

/**
 * containers-registries.conf(5), version 2 (and the deprecated version 1 lists), plus the
 * registries.conf.d(5) drop-ins: files ending in .conf, read in name order after the main file.
 * A drop-in's [[registry]] replaces an earlier one with the same prefix; its
 * unqualified-search-registries and short-name-mode replace earlier values when set; its
 * aliases are merged key by key (an empty value erases an alias).
 */

/** When a mirror may be used. */
export type PullFromMirror = "all" | "digest-only" | "tag-only";

/** One [[registry.mirror]] table. */
export interface MirrorConf {
  location: string;
  insecure: boolean;
  pullFromMirror: PullFromMirror;
}

/** One [[registry]] table, with prefix and location both filled in. */
export interface RegistryConf {
  prefix: string;
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrorByDigestOnly: boolean;
  mirrors: MirrorConf[];
}

/** How short names resolve when there is no alias. */
export type ShortNameMode = "enforcing" | "permissive" | "disabled";

/** The merged configuration. */
export interface RegistriesConf {
  registries: RegistryConf[];
  unqualifiedSearchRegistries: string[];
  shortNameMode: ShortNameMode;
  aliases: Record<string, string>;
  /** The files that were read, in order (for logs and errors). */
  files: string[];
}

/** An empty configuration: no registries, no search list, permissive. */
export function emptyRegistriesConf(): RegistriesConf {
  return { registries: [], unqualifiedSearchRegistries: [], shortNameMode: "permissive", aliases: {}, files: [] };
}

/**
 * Reads `path` (absent = empty) and then `dir`/*.conf (absent dir = none), merging as
 * registries.conf.d(5) says. Throws invalid-argument naming the file and the problem.
 */
export function loadRegistriesConf(path: string | undefined, dir: string | undefined): RegistriesConf {
  const out = emptyRegistriesConf();
  const files: string[] = [];
  if (path && existsSync(path)) files.push(path);
  if (dir && existsSync(dir))
    for (const f of readdirSync(dir)
      .filter((f) => f.endsWith(".conf"))
      .sort())
      files.push(join(dir, f));
  for (const f of files) mergeInto(out, parseRegistriesConf(readFileSync(f, "utf8"), f));
  out.files = files;
  return out;
}

/** The settings one file makes; undefined fields were not set in it. */
export interface RegistriesConfFile {
  registries: RegistryConf[];
  unqualifiedSearchRegistries?: string[];
  shortNameMode?: ShortNameMode;
  aliases: Record<string, string>;
}

/** Parses and validates one file's text; `file` names it in errors. */
export function parseRegistriesConf(text: string, file = "registries.conf"): RegistriesConfFile {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    throw invalid(`${file}: invalid TOML: ${messageOf(e).split("\n")[0]}`);
  }
  const bad = (msg: string) => invalid(`${file}: ${msg}`);
  const out: RegistriesConfFile = { registries: [], aliases: {} };
  if (doc.registries !== undefined && !Array.isArray(doc.registries)) return parseV1(doc.registries, bad);
  if (doc["unqualified-search-registries"] !== undefined) {
    const list = stringArray(doc["unqualified-search-registries"], "unqualified-search-registries", bad);
    for (const r of list) if (!r || r.includes("/")) throw bad(`unqualified-search-registries: "${r}" is not a host[:port]`);
    out.unqualifiedSearchRegistries = list;
  }
  const mode = doc["short-name-mode"];
  if (mode !== undefined && mode !== "") {
    if (mode !== "enforcing" && mode !== "permissive" && mode !== "disabled")
      throw bad(`short-name-mode must be "enforcing", "permissive" or "disabled", not ${JSON.stringify(mode)}`);
    out.shortNameMode = mode;
  }
  const regs = doc.registry ?? [];
  if (!Array.isArray(regs)) throw bad("[[registry]] must be an array of tables");
  const seen = new Set<string>();
  for (const [i, r] of regs.entries()) {
    const reg = parseRegistry(r, (m) => bad(`[[registry]] #${i + 1}: ${m}`));
    if (seen.has(reg.prefix)) throw bad(`two [[registry]] tables have the prefix "${reg.prefix}"`);
    seen.add(reg.prefix);
    out.registries.push(reg);
  }
  const aliases = doc.aliases ?? {};
  if (typeof aliases !== "object" || Array.isArray(aliases)) throw bad("[aliases] must be a table");
  for (const [k, v] of Object.entries(aliases as Record<string, unknown>)) {
    if (typeof v !== "string") throw bad(`alias "${k}" must be a string`);
    checkAlias(k, v, bad);
    out.aliases[k] = v;
  }
  return out;
}

/** Applies one file's settings over `into` (drop-in semantics). */
export function mergeInto(into: RegistriesConf, f: RegistriesConfFile): void {
  for (const r of f.registries) {
    const i = into.registries.findIndex((x) => x.prefix === r.prefix);
    if (i >= 0) into.registries[i] = r;
    else into.registries.push(r);
  }
  if (f.unqualifiedSearchRegistries) into.unqualifiedSearchRegistries = f.unqualifiedSearchRegistries;
  if (f.shortNameMode) into.shortNameMode = f.shortNameMode;
  for (const [k, v] of Object.entries(f.aliases)) {
    if (v === "") delete into.aliases[k];
    else into.aliases[k] = v;
  }
}

// --- internal ---

type Bad = (msg: string) => Error;

function parseRegistry(r: unknown, bad: Bad): RegistryConf {
  if (!r || typeof r !== "object") throw bad("must be a table");
  const t = r as Record<string, unknown>;
  let prefix = optString(t.prefix, "prefix", bad) ?? "";
  let location = optString(t.location, "location", bad) ?? "";
  if (!prefix && !location) throw bad("needs a prefix or a location");
  if (!prefix) prefix = location;
  if (prefix.startsWith("*.")) {
    if (!/^\*\.[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(prefix)) throw bad(`wildcard prefix "${prefix}" must be "*.domain"`);
    if (location) throw bad(`wildcard prefix "${prefix}" cannot have a location`);
  } else {
    checkPrefix(prefix, "prefix", bad);
    if (!location) location = prefix;
    else checkPrefix(location, "location", bad);
  }
  const mirrorByDigestOnly = optBool(t["mirror-by-digest-only"], "mirror-by-digest-only", bad) ?? false;
  const mirrors: MirrorConf[] = [];
  const ms = t.mirror ?? [];
  if (!Array.isArray(ms)) throw bad("mirror must be an array of tables");
  for (const [j, m] of ms.entries()) {
    const mb: Bad = (msg) => bad(`mirror #${j + 1}: ${msg}`);
    if (!m || typeof m !== "object") throw mb("must be a table");
    const mt = m as Record<string, unknown>;
    const loc = optString(mt.location, "location", mb);
    if (!loc) throw mb("needs a location");
    checkPrefix(loc, "location", mb);
    const pfm = mt["pull-from-mirror"];
    if (pfm !== undefined && pfm !== "" && pfm !== "all" && pfm !== "digest-only" && pfm !== "tag-only")
      throw mb(`pull-from-mirror must be "all", "digest-only" or "tag-only", not ${JSON.stringify(pfm)}`);
    if (mirrorByDigestOnly && pfm && pfm !== "digest-only") throw mb(`pull-from-mirror = "${pfm}" conflicts with mirror-by-digest-only = true`);
    const pullFromMirror: PullFromMirror = pfm ? (pfm as PullFromMirror) : mirrorByDigestOnly ? "digest-only" : "all";
    mirrors.push({ location: loc, insecure: optBool(mt.insecure, "insecure", mb) ?? false, pullFromMirror });
  }
  return {
    prefix,
    location,
    insecure: optBool(t.insecure, "insecure", bad) ?? false,
    blocked: optBool(t.blocked, "blocked", bad) ?? false,
    mirrorByDigestOnly,
    mirrors,
  };
}

/** A prefix or location: host[:port][/path…][:tag|@digest], no scheme. */
function checkPrefix(p: string, what: string, bad: Bad): void {
  if (/^[a-z]+:\/\//i.test(p)) throw bad(`${what} "${p}" must not have a scheme`);
  try {
    const r = parseReference(p.includes("/") || p.includes("@") ? p : `${p}/x`);
    if (!r.domain) throw new Error("no registry host");
  } catch (e) {
    throw bad(`${what} "${p}" is not a valid host[:port][/namespace…]: ${messageOf(e)}`);
  }
}

function checkAlias(k: string, v: string, bad: Bad): void {
  let name;
  try {
    name = parseReference(k);
  } catch (e) {
    throw bad(`alias "${k}" is not a valid short name: ${messageOf(e)}`);
  }
  if (name.domain || name.tag || name.digest) throw bad(`alias name "${k}" must be a short name without a registry, tag or digest`);
  if (v === "") return;
  let target;
  try {
    target = parseReference(v);
  } catch (e) {
    throw bad(`alias "${k}": value "${v}" is not a valid image name: ${messageOf(e)}`);
  }
  if (!target.domain) throw bad(`alias "${k}": value "${v}" must be fully qualified (registry/repository)`);
  if (target.tag || target.digest) throw bad(`alias "${k}": value "${v}" must not include a tag or digest`);
}

/** Version 1: [registries.search] / [registries.insecure] / [registries.block], each `registries = [...]`. */
function parseV1(t: unknown, bad: Bad): RegistriesConfFile {
  if (!t || typeof t !== "object") throw bad("[registries] must be a table");
  const v1 = t as Record<string, { registries?: unknown } | undefined>;
  const list = (k: string) => (v1[k]?.registries === undefined ? [] : stringArray(v1[k]!.registries, `registries.${k}`, bad));
  const byHost = new Map<string, RegistryConf>();
  const entry = (h: string) => {
    let r = byHost.get(h);
    if (!r) byHost.set(h, (r = { prefix: h, location: h, insecure: false, blocked: false, mirrorByDigestOnly: false, mirrors: [] }));
    return r;
  };
  for (const h of list("insecure")) entry(h).insecure = true;
  for (const h of list("block")) entry(h).blocked = true;
  const search = list("search");
  return { registries: [...byHost.values()], unqualifiedSearchRegistries: search.length ? search : undefined, aliases: {} };
}

function stringArray(v: unknown, what: string, bad: Bad): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw bad(`${what} must be an array of strings`);
  return v as string[];
}

function optString(v: unknown, what: string, bad: Bad): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw bad(`${what} must be a string`);
  return v;
}

function optBool(v: unknown, what: string, bad: Bad): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") throw bad(`${what} must be true or false`);
  return v;
}
