import { RuntimeError } from "../errors.ts";
import { DOCKER_DOMAIN, formatRef, isShortName, parseReference, repoName, type ImageRef } from "./reference.ts";

/**
 * signedIdentity rules of containers-policy.json(5): how the docker-reference a signature names
 * must relate to the image's own name (the one the user wrote, after short-name resolution —
 * never a mirror's). References on both sides are normalised as containers/image does
 * (ParseNormalizedNamed): docker.io/library/… for Hub names, but no tag is added.
 */

/** One signedIdentity rule. */
export type IdentityRule =
  | { type: "matchExact" }
  | { type: "matchRepoDigestOrExact" }
  | { type: "matchRepository" }
  | { type: "exactReference"; dockerReference: string }
  | { type: "exactRepository"; dockerRepository: string }
  | { type: "remapIdentity"; prefix: string; signedPrefix: string };

/** Validates a signedIdentity object; `bad` makes the policy file's error. */
export function parseIdentityRule(v: unknown, where: string, bad: (m: string) => Error): IdentityRule {
  if (!v || typeof v !== "object" || Array.isArray(v)) throw bad(`${where} must be a JSON object`);
  const o = v as Record<string, unknown>;
  const only = (keys: string[]) => {
    for (const k of Object.keys(o)) if (!keys.includes(k)) throw bad(`${where} (${o.type}) has unknown field "${k}"`);
  };
  const str = (k: string): string => {
    if (typeof o[k] !== "string" || o[k] === "") throw bad(`${where}.${k} must be a non-empty string`);
    return o[k] as string;
  };
  switch (o.type) {
    case "matchExact":
    case "matchRepoDigestOrExact":
    case "matchRepository":
      only(["type"]);
      return { type: o.type };
    case "exactReference": {
      only(["type", "dockerReference"]);
      const r = signedReference(str("dockerReference"), (m) => bad(`${where}.dockerReference: ${m}`));
      if (!r.tag && !r.digest) throw bad(`${where}.dockerReference "${o.dockerReference}" has no tag or digest`);
      return { type: "exactReference", dockerReference: o.dockerReference as string };
    }
    case "exactRepository": {
      only(["type", "dockerRepository"]);
      const r = signedReference(str("dockerRepository"), (m) => bad(`${where}.dockerRepository: ${m}`));
      if (r.tag || r.digest) throw bad(`${where}.dockerRepository "${o.dockerRepository}" must be a repository without tag or digest`);
      return { type: "exactRepository", dockerRepository: o.dockerRepository as string };
    }
    case "remapIdentity": {
      only(["type", "prefix", "signedPrefix"]);
      const prefix = str("prefix");
      const signedPrefix = str("signedPrefix");
      for (const [k, p] of [
        ["prefix", prefix],
        ["signedPrefix", signedPrefix],
      ] as const)
        if (!validPrefix(p)) throw bad(`${where}.${k} "${p}" must be a host, a host/namespace or a repository, without tag or digest`);
      return { type: "remapIdentity", prefix, signedPrefix };
    }
    default:
      throw bad(`${where} has unknown identity type ${JSON.stringify(o.type)}`);
  }
}

/**
 * Parses a docker reference as a signature names it, normalised without a default tag; throws
 * (through `bad`) on a malformed one.
 */
export function signedReference(s: string, bad: (m: string) => Error = (m) => new RuntimeError("invalid-argument", m)): ImageRef {
  let r: ImageRef;
  try {
    r = parseReference(s);
  } catch (e) {
    throw bad((e as Error).message);
  }
  if (s.trim() !== s) throw bad(`reference "${s}" has surrounding white space`);
  let domain = isShortName(r) ? DOCKER_DOMAIN : r.domain;
  if (domain === "index.docker.io" || domain === "registry-1.docker.io") domain = DOCKER_DOMAIN;
  const path = domain === DOCKER_DOMAIN && !r.path.includes("/") ? `library/${r.path}` : r.path;
  const out: ImageRef = { domain, path };
  if (r.tag) out.tag = r.tag;
  if (r.digest) out.digest = r.digest;
  return out;
}

/**
 * Whether a signature claiming `signed` (its docker-reference, parsed) is acceptable for the
 * image named `image` under `rule`; returns the reason when not.
 */
export function identityMismatch(rule: IdentityRule, image: ImageRef, signed: ImageRef): string | undefined {
  const want = formatRef(image);
  const got = formatRef(signed);
  const reason = (what: string) => `its identity "${got}" does not match ${what} (signedIdentity ${rule.type})`;
  switch (rule.type) {
    case "matchExact":
      return !isNameOnly(image) && !isNameOnly(signed) && got === want ? undefined : reason(`"${want}"`);
    case "matchRepoDigestOrExact":
      return repoDigestOrExact(image, signed) ? undefined : reason(image.digest ? `the repository "${repoName(image)}"` : `"${want}"`);
    case "matchRepository":
      return repoName(signed) === repoName(image) ? undefined : reason(`the repository "${repoName(image)}"`);
    case "exactReference":
      return got === formatRef(signedReference(rule.dockerReference)) ? undefined : reason(`"${rule.dockerReference}"`);
    case "exactRepository":
      return repoName(signed) === repoName(signedReference(rule.dockerRepository)) ? undefined : reason(`the repository "${rule.dockerRepository}"`);
    case "remapIdentity": {
      const remapped = remap(image, rule.prefix, rule.signedPrefix);
      return repoDigestOrExact(remapped, signed) ? undefined : reason(`"${formatRef(remapped)}"${remapped === image ? "" : ` (remapped from "${want}")`}`);
    }
  }
}

// --- internal ---

function isNameOnly(r: ImageRef): boolean {
  return !r.tag && !r.digest;
}

/** A digest reference needs the same repository; a tagged one the same name and tag. */
function repoDigestOrExact(image: ImageRef, signed: ImageRef): boolean {
  if (image.digest) return repoName(signed) === repoName(image);
  if (image.tag) return formatRef(signed) === formatRef(image);
  return false;
}

/** `image` with `prefix` replaced by `signedPrefix` when it matches (at a "/", ":" or "@" boundary, or "*.domain"). */
function remap(image: ImageRef, prefix: string, signedPrefix: string): ImageRef {
  const name = formatRef(image);
  let rest: string | undefined;
  if (prefix.startsWith("*.")) {
    const host = image.domain.replace(/:\d+$/, "");
    if (host.endsWith(prefix.slice(1))) rest = name.slice(image.domain.length);
  } else if (name.startsWith(prefix) && (name.length === prefix.length || "/:@".includes(name[prefix.length]!))) {
    rest = name.slice(prefix.length);
  }
  if (rest === undefined) return image;
  try {
    return signedReference(signedPrefix + rest);
  } catch {
    return image;
  }
}

function validPrefix(p: string): boolean {
  if (/^\*\.[a-z0-9.-]+$/i.test(p)) return true;
  try {
    const r = parseReference(p.includes("/") ? p : `${p}/x`);
    return !r.tag && !r.digest && !isShortName(r);
  } catch {
    return false;
  }
}
