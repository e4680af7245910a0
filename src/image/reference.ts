import { invalid } from "../errors.ts";

/**
 * Image references in the Docker/OCI distribution grammar (github.com/distribution/reference):
 *   [domain[:port]/]path[:tag][@digest]
 * A name is "qualified" when its first component looks like a host (has "." or ":", or is
 * "localhost"); otherwise it is a short name that registries.conf resolves. docker.io names
 * normalise to docker.io/library/… for single-component paths.
 */

/** A parsed reference. `domain` is empty for a short (unqualified) name. */
export interface ImageRef {
  domain: string;
  /** Repository path without the domain, e.g. "library/busybox". */
  path: string;
  tag?: string;
  digest?: string;
}

/** The default registry of unqualified names in Docker's world. */
export const DOCKER_DOMAIN = "docker.io";

/** Parses a reference without resolving short names; throws invalid-argument with the reason. */
export function parseReference(input: string): ImageRef {
  const s = input.trim();
  if (s === "") throw invalid("image reference is empty");
  if (s.length > 4096) throw invalid(`image reference is too long (${s.length} characters)`);
  if (/^(sha256:)?[a-f0-9]{64}$/.test(s)) throw invalid(`invalid image reference "${s}": a 64-hex image id cannot be pulled, give a repository name`);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) throw invalid(`invalid image reference "${s}": drop the "${s.split("://")[0]}://" scheme`);
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    checkDigest(digest, s);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(`invalid image reference "${s}": bad tag "${tag}" (letters, digits, _ . -, at most 128)`);
  }
  let domain = "";
  let path = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost") {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (domain && !DOMAIN.test(domain)) throw invalid(`invalid image reference "${s}": bad registry host "${domain}"`);
  if (path === "") throw invalid(`invalid image reference "${s}": repository name is empty`);
  for (const c of path.split("/")) {
    if (!COMPONENT.test(c)) {
      if (c.toLowerCase() !== c && COMPONENT.test(c.toLowerCase())) throw invalid(`invalid image reference "${s}": repository name must be lowercase`);
      throw invalid(`invalid image reference "${s}": bad repository path component "${c}"`);
    }
  }
  if ((domain ? domain.length + 1 : 0) + path.length > 255) throw invalid(`invalid image reference "${s}": repository name longer than 255 characters`);
  return { domain, path, tag, digest };
}

/** True when the reference names no registry (needs unqualified-search-registries or an alias). */
export function isShortName(r: ImageRef): boolean {
  return r.domain === "";
}

/**
 * Qualifies `r` with `domain` and applies Docker Hub's normalisation: docker.io (and its aliases
 * index.docker.io, registry-1.docker.io) with a one-component path gets "library/". A reference
 * with neither tag nor digest gets "latest".
 */
export function normalize(r: ImageRef, domain = r.domain): ImageRef {
  let d = domain || DOCKER_DOMAIN;
  if (d === "index.docker.io" || d === "registry-1.docker.io") d = DOCKER_DOMAIN;
  const path = d === DOCKER_DOMAIN && !r.path.includes("/") ? `library/${r.path}` : r.path;
  const out: ImageRef = { domain: d, path };
  if (r.digest) out.digest = r.digest;
  if (r.tag) out.tag = r.tag;
  if (!r.tag && !r.digest) out.tag = "latest";
  return out;
}

/** Parses a fully qualified reference (one with a registry host), normalised; throws on a short name. */
export function parseQualified(input: string): ImageRef {
  const r = parseReference(input);
  if (isShortName(r)) throw invalid(`image reference "${input}" names no registry (expected HOST/PATH)`);
  return normalize(r);
}

/** "domain/path" */
export function repoName(r: ImageRef): string {
  return r.domain ? `${r.domain}/${r.path}` : r.path;
}

/** The reference as text: "domain/path:tag", "domain/path@digest" or both (tag first). */
export function formatRef(r: ImageRef): string {
  return repoName(r) + (r.tag ? `:${r.tag}` : "") + (r.digest ? `@${r.digest}` : "");
}

/** "domain/path:tag" when the reference has a tag, else undefined. */
export function tagName(r: ImageRef): string | undefined {
  return r.tag ? `${repoName(r)}:${r.tag}` : undefined;
}

/** True for a well-formed content digest ("sha256:<64 hex>" or "sha512:<128 hex>" or another algorithm). */
export function isDigest(s: string): boolean {
  return DIGEST.test(s) && (!s.startsWith("sha256:") || /^sha256:[a-f0-9]{64}$/.test(s)) && (!s.startsWith("sha512:") || /^sha512:[a-f0-9]{128}$/.test(s));
}

// --- internal ---

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DOMAIN =
  /^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;

function checkDigest(d: string, whole: string): void {
  if (!isDigest(d)) throw invalid(`invalid image reference "${whole}": bad digest "${d}" (expected sha256:<64 hex>)`);
}
