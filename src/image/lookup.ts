import type { ImageEntry, StoreIndex } from "./image-store.ts";
import { candidates } from "./pull-sources.ts";
import { normalize, parseReference, repoName, type ImageRef } from "./reference.ts";
import type { RegistriesConf } from "./registries-conf.ts";

/**
 * Finding images in the index by what a user or the kubelet gives: a full id ("sha256:<hex>" or
 * the bare hex), a unique id prefix (3+ hex characters), "name:tag", "name@digest", or a short
 * name resolved through registries.conf (every candidate is looked at, without the enforcing
 * short-name check, as CRI-O's ImageStatus does). Also pinned_images matching.
 */

/** How a lookup matched: by id, by a tag, or by a digest. */
export type MatchKind = "id" | "tag" | "digest";

/** The image `refOrId` names, and how it was matched; undefined when there is none. Throws invalid-argument for a malformed reference. */
export function findImage(idx: StoreIndex, conf: RegistriesConf, refOrId: string): { image: ImageEntry; by: MatchKind; name?: string } | undefined {
  const s = refOrId.trim();
  const full = /^(?:sha256:)?([a-f0-9]{64})$/.exec(s);
  if (full) {
    const img = idx.images[`sha256:${full[1]}`];
    return img ? { image: img, by: "id" } : undefined;
  }
  const refs = refsOf(conf, s);
  for (const r of refs ?? []) {
    const repo = repoName(r);
    for (const img of Object.values(idx.images)) {
      if (r.digest) {
        const name = `${repo}@${r.digest}`;
        if (img.repoDigests.includes(name) || (img.id === r.digest && img.repoDigests.some((d) => d.startsWith(`${repo}@`))))
          return { image: img, by: "digest", name };
      } else if (r.tag) {
        const name = `${repo}:${r.tag}`;
        if (img.repoTags.includes(name)) return { image: img, by: "tag", name };
      }
    }
  }
  const prefix = /^(?:sha256:)?([a-f0-9]{3,63})$/.exec(s);
  if (prefix) {
    const hits = Object.values(idx.images).filter((i) => i.id.startsWith(`sha256:${prefix[1]}`));
    if (hits.length === 1) return { image: hits[0]!, by: "id" };
  }
  if (!refs) parseReference(s); // a name that is neither an id nor a valid reference: say why
  return undefined;
}

/** True when one of the image's names matches a pinned_images pattern or is the pause image. */
export function isPinned(img: ImageEntry, patterns: readonly string[], pauseImage: string | undefined): boolean {
  const names = [...img.repoTags, ...img.repoDigests];
  if (pauseImage) {
    const p = normalName(pauseImage);
    if (p && names.includes(p)) return true;
  }
  for (const pat of patterns) {
    if (!pat) continue;
    if (pat.length > 1 && pat.startsWith("*") && pat.endsWith("*")) {
      const kw = pat.slice(1, -1);
      if (names.some((n) => n.includes(kw))) return true;
    } else if (pat.endsWith("*")) {
      const pre = pat.slice(0, -1);
      if (names.some((n) => n.startsWith(pre))) return true;
    } else {
      const exact = normalName(pat) ?? pat;
      if (names.includes(pat) || names.includes(exact)) return true;
    }
  }
  return false;
}

// --- internal ---

/** The qualified references `s` may mean; undefined when it is not a valid reference. */
function refsOf(conf: RegistriesConf, s: string): ImageRef[] | undefined {
  try {
    return candidates(conf, s, true);
  } catch {
    try {
      const r = parseReference(s);
      return r.domain ? [normalize(r)] : undefined;
    } catch {
      return undefined;
    }
  }
}

/** normalName's answers: pinned_images patterns and the pause image are asked about for every image listed. */
const normalNames = new Map<string, string | undefined>();

function normalName(s: string): string | undefined {
  if (normalNames.has(s)) return normalNames.get(s);
  if (normalNames.size > 256) normalNames.clear();
  const n = parseNormalName(s);
  normalNames.set(s, n);
  return n;
}

function parseNormalName(s: string): string | undefined {
  try {
    const r = parseReference(s);
    if (!r.domain) return undefined;
    const n = normalize(r);
    return n.digest ? `${repoName(n)}@${n.digest}` : `${repoName(n)}:${n.tag}`;
  } catch {
    return undefined;
  }
}
