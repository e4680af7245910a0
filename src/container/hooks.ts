import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { invalid, messageOf } from "../errors.ts";
import type { Logger } from "../log/index.ts";
import type { Hook, Hooks, Spec } from "../oci/spec-types.ts";

/**
 * OCI hooks from hooks_dir, in the containers-common hooks.d format (oci-hooks(5)): one JSON file
 * per hook, version 1.0.0 ({version, hook: {path, args, env, timeout}, when: {always, annotations,
 * commands, hasBindMounts}, stages}) or the legacy 0.1.0. A file in a later directory masks one of
 * the same name in an earlier directory; matching hooks are added in file-name order. Invalid files
 * are skipped with a warning (logged once per version of the file), never failing a container.
 */

/** The stages a hook may name; "prestart" is injected as createRuntime, as containers-common does. */
export const HOOK_STAGES = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"] as const;
/** One hook stage. */
export type HookStage = (typeof HOOK_STAGES)[number];

/** When a hook is injected: every condition that is set must hold (any-of for legacy 0.1.0 files). */
export interface HookWhen {
  always?: boolean;
  /** Regexp on an annotation key → regexp on its value. */
  annotations?: Record<string, string>;
  /** Regexps on process.args[0]; one match is enough and decides. */
  commands?: string[];
  hasBindMounts?: boolean;
  /** Any-of matching (legacy 0.1.0 files). */
  or?: boolean;
}

/** A validated hook definition. */
export interface HookConfig {
  hook: Hook;
  when: HookWhen;
  stages: HookStage[];
}

/** What a container offers to the conditions. */
export interface HookTarget {
  args: readonly string[];
  annotations: Record<string, string>;
  hasBindMounts: boolean;
}

/**
 * Parses and validates a hook file; invalid-argument naming `source` otherwise: bad JSON, unknown
 * version or stage, a missing or absent hook.path, an invalid regular expression.
 */
export function parseHookConfig(text: string, source: string, exists: (path: string) => boolean = existsSync): HookConfig {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw invalid(`hook "${source}" is not valid JSON: ${messageOf(e)}`);
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw invalid(`hook "${source}" is not a JSON object`);
  const version = raw.version ?? "";
  const cfg = version === "1.0.0" ? fromV1(raw, source) : version === "0.1.0" || version === "" ? fromV010(raw, source) : undefined;
  if (!cfg) throw invalid(`hook "${source}": unrecognized hook version ${JSON.stringify(version)}`);
  const path = cfg.hook.path;
  if (typeof path !== "string" || path === "") throw invalid(`hook "${source}": missing required property: hook.path`);
  if (!exists(path)) throw invalid(`hook "${source}": hook.path "${path}" does not exist`);
  for (const [k, v] of Object.entries(cfg.when.annotations ?? {})) {
    compile(k, source, "annotation key");
    compile(v, source, "annotation value");
  }
  for (const c of cfg.when.commands ?? []) compile(c, source, "command");
  if (!Array.isArray(cfg.stages)) throw invalid(`hook "${source}": missing required property: stages`);
  for (const s of cfg.stages) if (!(HOOK_STAGES as readonly string[]).includes(s)) throw invalid(`hook "${source}": unknown stage ${JSON.stringify(s)}`);
  return cfg;
}

/** containers-common's When.Match: always, hasBindMounts, annotations (all set ones), then commands (any, decisive). */
export function matchHook(when: HookWhen, t: HookTarget): boolean {
  let matches = 0;
  const cond = (ok: boolean): boolean | undefined => {
    if (ok) {
      if (when.or) return true;
      matches++;
    } else if (!when.or) return false;
    return undefined;
  };
  let r: boolean | undefined;
  if (when.always !== undefined && (r = cond(when.always)) !== undefined) return r;
  if (when.hasBindMounts !== undefined && (r = cond(when.hasBindMounts && t.hasBindMounts)) !== undefined) return r;
  for (const [kp, vp] of Object.entries(when.annotations ?? {})) {
    const k = new RegExp(kp);
    const v = new RegExp(vp);
    const ok = Object.entries(t.annotations).some(([key, value]) => k.test(key) && v.test(value));
    if ((r = cond(ok)) !== undefined) return r;
  }
  if (when.commands?.length) {
    const cmd = t.args[0] ?? "";
    return when.commands.some((c) => new RegExp(c).test(cmd));
  }
  return matches > 0;
}

/** Adds the matching hooks to `spec.hooks` (after any it has), in name order; returns the names that matched. */
export function injectHooks(spec: Spec, hooks: ReadonlyArray<{ name: string; config: HookConfig }>, t: Omit<HookTarget, "args">): string[] {
  const matched: string[] = [];
  const sorted = [...hooks].sort((a, b) => (a.name.toLowerCase() < b.name.toLowerCase() ? -1 : a.name.toLowerCase() > b.name.toLowerCase() ? 1 : 0));
  for (const { name, config } of sorted) {
    if (!matchHook(config.when, { ...t, args: spec.process?.args ?? [] })) continue;
    matched.push(name);
    const out: Hooks = (spec.hooks ??= {});
    for (const stage of config.stages) {
      const key = stage === "prestart" ? "createRuntime" : stage;
      (out[key] ??= []).push({ ...config.hook });
    }
  }
  return matched;
}

/** Reads hook directories, caching each parsed file by path, size and mtime. */
export class HookDirs {
  readonly #cache = new Map<string, { stamp: string; config?: HookConfig }>();
  readonly #log?: Logger;

  constructor(log?: Logger) {
    this.#log = log;
  }

  /** The valid hooks of `dirs` (missing directories are empty), later directories masking earlier ones by file name. */
  load(dirs: readonly string[]): Array<{ name: string; config: HookConfig }> {
    const byName = new Map<string, HookConfig>();
    const seen = new Set<string>();
    for (const dir of dirs) {
      let names: string[];
      try {
        names = readdirSync(dir).filter((n) => n.endsWith(".json"));
      } catch {
        continue;
      }
      for (const name of names) {
        const path = join(dir, name);
        seen.add(path);
        // An invalid file masks nothing (containers-common keeps the earlier definition).
        const config = this.#read(path);
        if (config) byName.set(name, config);
      }
    }
    for (const p of this.#cache.keys()) if (!seen.has(p)) this.#cache.delete(p);
    return [...byName].map(([name, config]) => ({ name, config }));
  }

  #read(path: string): HookConfig | undefined {
    let stamp: string;
    try {
      const st = statSync(path);
      if (!st.isFile()) return undefined;
      stamp = `${st.size}/${st.mtimeMs}`;
    } catch {
      return undefined;
    }
    const hit = this.#cache.get(path);
    if (hit?.stamp === stamp) return hit.config;
    let config: HookConfig | undefined;
    try {
      config = parseHookConfig(readFileSync(path, "utf8"), path);
    } catch (e) {
      this.#log?.warn(`skipping OCI hook: ${messageOf(e)}`);
    }
    this.#cache.set(path, { stamp, config });
    return config;
  }
}

// --- internal ---

function fromV1(raw: Record<string, unknown>, source: string): HookConfig {
  const hook = (raw.hook ?? {}) as Partial<Hook>;
  const when = (raw.when ?? {}) as Record<string, unknown>;
  if (typeof hook !== "object" || typeof when !== "object") throw invalid(`hook "${source}": hook and when must be objects`);
  const out: Hook = { path: hook.path as string };
  if (hook.args !== undefined) out.args = strings(hook.args, source, "hook.args");
  if (hook.env !== undefined) out.env = strings(hook.env, source, "hook.env");
  if (hook.timeout !== undefined) {
    if (!Number.isInteger(hook.timeout) || (hook.timeout as number) <= 0) throw invalid(`hook "${source}": hook.timeout must be a positive number of seconds`);
    out.timeout = hook.timeout;
  }
  const w: HookWhen = {};
  if (when.always !== undefined) w.always = bool(when.always, source, "when.always");
  if (when.hasBindMounts !== undefined) w.hasBindMounts = bool(when.hasBindMounts, source, "when.hasBindMounts");
  if (when.annotations !== undefined) {
    if (!when.annotations || typeof when.annotations !== "object" || Array.isArray(when.annotations))
      throw invalid(`hook "${source}": when.annotations must be an object`);
    w.annotations = when.annotations as Record<string, string>;
  }
  if (when.commands !== undefined) w.commands = strings(when.commands, source, "when.commands");
  return { hook: out, when: w, stages: raw.stages === undefined ? (undefined as never) : (strings(raw.stages, source, "stages") as HookStage[]) };
}

function fromV010(raw: Record<string, unknown>, source: string): HookConfig {
  const either = (a: string, b: string): unknown => {
    if (raw[a] !== undefined && raw[b] !== undefined) throw invalid(`hook "${source}": cannot set both '${b}' and '${a}'`);
    return raw[a] ?? raw[b];
  };
  if (typeof raw.hook !== "string") throw invalid(`hook "${source}": missing required property: hook`);
  const stages = either("stages", "stage");
  if (stages === undefined) throw invalid(`hook "${source}": missing required property: stages`);
  const cmds = either("cmds", "cmd");
  const annotations = either("annotations", "annotation");
  const hook: Hook = { path: raw.hook };
  if (raw.arguments !== undefined) hook.args = [raw.hook, ...strings(raw.arguments, source, "arguments")];
  const when: HookWhen = { or: true };
  if (cmds !== undefined) when.commands = strings(cmds, source, "cmds");
  if (raw.hasbindmounts !== undefined) when.hasBindMounts = bool(raw.hasbindmounts, source, "hasbindmounts");
  if (annotations !== undefined) when.annotations = { ".*": strings(annotations, source, "annotations").join("|") };
  return { hook, when, stages: strings(stages, source, "stages") as HookStage[] };
}

function strings(v: unknown, source: string, what: string): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw invalid(`hook "${source}": ${what} must be a list of strings`);
  return v as string[];
}

function bool(v: unknown, source: string, what: string): boolean {
  if (typeof v !== "boolean") throw invalid(`hook "${source}": ${what} must be true or false`);
  return v;
}

function compile(re: string, source: string, what: string): void {
  try {
    new RegExp(re);
  } catch (e) {
    throw invalid(`hook "${source}": invalid ${what} ${JSON.stringify(re)}: ${messageOf(e)}`);
  }
}

let shared: HookDirs | undefined;

/** Injects the matching hooks of `dirs` (hooks_dir) into a container's spec, with one process-wide cache; returns the matched names. */
export function addHooks(dirs: readonly string[], spec: Spec, o: { hasBindMounts: boolean }, log?: Logger): string[] {
  if (dirs.length === 0) return [];
  shared ??= new HookDirs(log);
  const hooks = shared.load(dirs);
  if (hooks.length === 0) return [];
  return injectHooks(spec, hooks, { annotations: spec.annotations ?? {}, hasBindMounts: o.hasBindMounts });
}
