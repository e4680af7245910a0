import { RuntimeError, invalid } from "../errors.ts";
import { formatRef, isShortName, normalize, parseReference, type ImageRef } from "./reference.ts";
import type { RegistriesConf, RegistryConf } from "./registries-conf.ts";

/**
 * From a user's reference to the places an image is pulled from: short names through [aliases]
 * and unqualified-search-registries, then for each qualified name the [[registry]] with the
 * longest matching prefix: its mirrors in order (subject to pull-from-mirror), then its own
 * location (the prefix rewritten), unless it is blocked.
 */

/** One place to try: the rewritten reference and whether TLS may be skipped. */
export interface PullSource {
  ref: ImageRef;
  insecure: boolean;
  mirror: boolean;
}

/**
 * The fully qualified names `input` may mean, in order. A qualified name gives itself; a short
 * name gives its alias, or one name per unqualified-search registry. With short-name-mode
 * "enforcing" an ambiguous short name is refused (no terminal to ask on, as CRI-O).
 * `forStatus` relaxes that: lookups in the local store may try every candidate.
 */
export function candidates(conf: RegistriesConf, input: string, forStatus = false): ImageRef[] {
  const r = parseReference(input);
  if (!isShortName(r)) return [normalize(r)];
  const alias = conf.aliases[r.path];
  if (alias) {
    const a = parseReference(alias);
    return [normalize({ ...a, tag: r.tag, digest: r.digest })];
  }
  const search = conf.unqualifiedSearchRegistries;
  if (search.length === 0)
    throw invalid(
      `short name "${input}" did not resolve to an alias and no unqualified-search-registries are defined in registries.conf; use a fully qualified name like docker.io/library/${r.path}`,
    );
  if (!forStatus && search.length > 1 && conf.shortNameMode === "enforcing")
    throw invalid(
      `short name "${input}" is ambiguous under short-name-mode "enforcing": it could come from ${search.join(", ")}; use a fully qualified name or add an alias in registries.conf`,
    );
  return search.map((d) => normalize(r, d));
}

/** The [[registry]] table that governs `ref` (longest prefix match), if any. */
export function findRegistry(conf: RegistriesConf, ref: ImageRef): RegistryConf | undefined {
  const s = formatRef(ref);
  let best: RegistryConf | undefined;
  let bestLen = -1;
  for (const reg of conf.registries) {
    const n = matchLength(s, reg.prefix);
    if (n > bestLen) {
      best = reg;
      bestLen = n;
    }
  }
  return best;
}

/**
 * The sources to try for a qualified `ref`, in order: mirrors then the (rewritten) primary.
 * Throws permission-denied when the governing [[registry]] is blocked.
 */
export function pullSources(conf: RegistriesConf, ref: ImageRef): PullSource[] {
  const reg = findRegistry(conf, ref);
  if (!reg) return [{ ref, insecure: false, mirror: false }];
  const name = formatRef(ref);
  if (reg.blocked) throw new RuntimeError("permission-denied", `registry "${reg.prefix}" is blocked in registries.conf: pulling "${name}" is not allowed`);
  // A wildcard prefix matches the whole host; mirrors then replace the host, and there is no location.
  const wildcard = reg.prefix.startsWith("*.");
  const rest = name.slice(wildcard ? name.split("/")[0]!.length : reg.prefix.length);
  const out: PullSource[] = [];
  for (const m of reg.mirrors) {
    if (m.pullFromMirror === "digest-only" && !ref.digest) continue;
    if (m.pullFromMirror === "tag-only" && ref.digest) continue;
    out.push({ ref: rewrite(m.location + rest, name), insecure: m.insecure, mirror: true });
  }
  const primary = wildcard ? ref : rewrite(reg.location + rest, name);
  out.push({ ref: primary, insecure: reg.insecure, mirror: false });
  return out;
}

// --- internal ---

/**
 * How much of `name` the prefix matches, or -1. A plain prefix must be followed by the end of the
 * name or one of "/", ":" and "@"; "*.example.com" matches any host below example.com.
 */
function matchLength(name: string, prefix: string): number {
  if (prefix.startsWith("*.")) {
    const host = name.split("/")[0]!.replace(/:\d+$/, "");
    return host.endsWith(prefix.slice(1)) && host.length > prefix.length - 1 ? prefix.length - 1 : -1;
  }
  if (!name.startsWith(prefix)) return -1;
  if (name.length === prefix.length) return prefix.length;
  return "/:@".includes(name[prefix.length]!) ? prefix.length : -1;
}

function rewrite(s: string, original: string): ImageRef {
  try {
    return normalize(parseReference(s));
  } catch (e) {
    throw invalid(`registries.conf rewrites "${original}" to "${s}", which is not a valid reference: ${(e as Error).message}`);
  }
}
