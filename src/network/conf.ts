/**
 * CNI network configuration files (CNI spec, section 1): `.conflist` lists and single-plugin
 * `.conf`/`.json` files, which are wrapped as one-plugin lists as libcni's ConfListFromConf does.
 * Loading follows libcni + CRI-O's ocicni: files in lexical order, the first file of a given
 * network name wins, and a list whose plugin binaries are missing is skipped with a reason.
 */
import { readdirSync, readFileSync, statSync, accessSync, constants } from "node:fs";
import { access, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { invalid, messageOf } from "../errors.ts";

/** One plugin configuration object; unknown keys are passed through to the plugin untouched. */
export type PluginConf = Record<string, unknown> & { type: string };

/** A loaded network (a list of plugins run in order), JSON-safe so it can be cached with an attachment. */
export interface NetworkList {
  name: string;
  /** The protocol version selected for this network (highest of cniVersion/cniVersions we speak). */
  cniVersion: string;
  disableCheck: boolean;
  disableGC: boolean;
  plugins: PluginConf[];
  /** The file it came from. */
  file: string;
}

/** A file that was not loaded, and why. */
export interface ConfProblem {
  file: string;
  reason: string;
}

/** CNI specification versions this runtime speaks, oldest first. */
export const SUPPORTED_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;

/** Extensions libcni reads from the configuration directory. */
export const CONF_EXTENSIONS = [".conf", ".conflist", ".json"] as const;

/** Compares two dotted versions numerically: negative, zero or positive. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map((x) => parseInt(x, 10) || 0);
  const pb = b.split(".").map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

/** True when `version` is at least `min`. */
export const versionAtLeast = (version: string, min: string) => compareVersions(version, min) >= 0;

/** Parses one configuration file's text into a network list; throws invalid-argument naming the problem. */
export function parseNetworkConf(file: string, text: string): NetworkList {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw invalid(`${file}: not valid JSON: ${messageOf(e)}`);
  }
  if (!isObject(raw)) throw invalid(`${file}: not a JSON object`);
  const isList = file.endsWith(".conflist") || (!("type" in raw) && Array.isArray(raw.plugins));
  const name = raw.name;
  if (typeof name !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) throw invalid(`${file}: missing or invalid network "name"`);
  const cniVersion = selectVersion(file, raw);
  let plugins: PluginConf[];
  if (isList) {
    if (!Array.isArray(raw.plugins) || raw.plugins.length === 0) throw invalid(`${file}: "plugins" must be a non-empty list`);
    plugins = raw.plugins.map((p, i) => checkPlugin(file, p, `plugins[${i}]`));
  } else {
    plugins = [checkPlugin(file, raw, "the configuration")];
  }
  return {
    name,
    cniVersion,
    disableCheck: raw.disableCheck === true || raw.disableCheck === "true",
    disableGC: raw.disableGC === true || raw.disableGC === "true",
    plugins,
    file,
  };
}

/** Finds a plugin binary by type in the plugin directories, first match wins. */
export function findPlugin(type: string, pluginDirs: readonly string[]): string | undefined {
  if (!type || type.includes("/") || type === "." || type === "..") return undefined;
  for (const d of pluginDirs) {
    const p = join(d, type);
    try {
      if (!statSync(p).isFile()) continue;
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Reads every configuration in `dir` (lexical order), keeping the first of each name whose plugins exist. */
export function loadNetworks(dir: string, pluginDirs: readonly string[]): { networks: NetworkList[]; problems: ConfProblem[] } {
  const networks: NetworkList[] = [];
  const problems: ConfProblem[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return { networks, problems };
  }
  names.sort();
  for (const n of names) {
    if (!CONF_EXTENSIONS.some((ext) => n.endsWith(ext))) continue;
    const file = join(dir, n);
    try {
      if (!statSync(file).isFile()) continue;
      const list = parseNetworkConf(file, readFileSync(file, "utf8"));
      addNetwork(
        networks,
        problems,
        file,
        list,
        list.plugins.map((p) => p.type).filter((t) => !findPlugin(t, pluginDirs)),
        pluginDirs,
      );
    } catch (e) {
      problems.push({ file, reason: messageOf(e) });
    }
  }
  return { networks, problems };
}

/**
 * loadNetworks with every file operation on the thread pool: the daemon's periodic rescan and
 * Status use this, so a directory of configurations never stalls the event loop.
 */
export async function loadNetworksAsync(dir: string, pluginDirs: readonly string[]): Promise<{ networks: NetworkList[]; problems: ConfProblem[] }> {
  const networks: NetworkList[] = [];
  const problems: ConfProblem[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return { networks, problems };
  }
  names.sort();
  const pluginFound = new Map<string, Promise<boolean>>();
  const hasPlugin = (t: string) => {
    let p = pluginFound.get(t);
    if (!p) pluginFound.set(t, (p = findPluginAsync(t, pluginDirs).then((x) => x !== undefined)));
    return p;
  };
  for (const n of names) {
    if (!CONF_EXTENSIONS.some((ext) => n.endsWith(ext))) continue;
    const file = join(dir, n);
    try {
      if (!(await stat(file)).isFile()) continue;
      const list = parseNetworkConf(file, await readFile(file, "utf8"));
      const types = list.plugins.map((p) => p.type);
      const found = await Promise.all(types.map(hasPlugin));
      addNetwork(
        networks,
        problems,
        file,
        list,
        types.filter((_t, i) => !found[i]),
        pluginDirs,
      );
    } catch (e) {
      problems.push({ file, reason: messageOf(e) });
    }
  }
  return { networks, problems };
}

/** The one rule of both loaders: a file whose plugins are all found joins, unless an earlier file named its network. */
function addNetwork(networks: NetworkList[], problems: ConfProblem[], file: string, list: NetworkList, missing: string[], pluginDirs: readonly string[]): void {
  if (missing.length) throw invalid(`${file}: plugin ${missing.map((t) => `"${t}"`).join(", ")} not found in ${pluginDirs.join(", ")}`);
  if (networks.some((x) => x.name === list.name)) problems.push({ file, reason: `network "${list.name}" is already defined by an earlier file` });
  else networks.push(list);
}

/** findPlugin on the thread pool. */
async function findPluginAsync(type: string, pluginDirs: readonly string[]): Promise<string | undefined> {
  if (!type || type.includes("/") || type === "." || type === "..") return undefined;
  for (const d of pluginDirs) {
    const p = join(d, type);
    try {
      if (!(await stat(p)).isFile()) continue;
      await access(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The default network: the one named `defaultNetwork` when set, else the first loaded. */
export function selectDefault(networks: readonly NetworkList[], defaultNetwork?: string): NetworkList | undefined {
  if (defaultNetwork) return networks.find((n) => n.name === defaultNetwork);
  return networks[0];
}

// --- internal ---

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkPlugin(file: string, p: unknown, where: string): PluginConf {
  if (!isObject(p)) throw invalid(`${file}: ${where} is not an object`);
  const t = p.type;
  if (typeof t !== "string" || !t || t.includes("/")) throw invalid(`${file}: ${where} has a missing or invalid "type"`);
  return p as PluginConf;
}

/** The highest version offered by cniVersion/cniVersions that we speak (CNI spec: version considerations). */
function selectVersion(file: string, raw: Record<string, unknown>): string {
  const offered: string[] = [];
  if (typeof raw.cniVersion === "string" && raw.cniVersion) offered.push(raw.cniVersion);
  if (Array.isArray(raw.cniVersions)) for (const v of raw.cniVersions) if (typeof v === "string") offered.push(v);
  if (offered.length === 0) return "0.1.0"; // libcni's default for a config without a version
  const ok = offered.filter((v) => (SUPPORTED_VERSIONS as readonly string[]).includes(v));
  if (ok.length === 0) throw invalid(`${file}: unsupported cniVersion ${offered.join(", ")} (supported: ${SUPPORTED_VERSIONS.join(", ")})`);
  return ok.sort(compareVersions)[ok.length - 1]!;
}
