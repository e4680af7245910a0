import { digestOf } from "./registry-client.ts";

/**
 * The simple-signing payload (containers-signature(5)) shared by GPG signatures ("atomic
 * container signature") and cosign ("cosign container image signature"), parsed as strictly as
 * containers/image does: exactly "critical" and "optional" at the top, exactly type, image and
 * identity in critical, exactly one key in each of those; "optional" is an object (or null for
 * cosign) whose known members are type-checked.
 */

/** What a verified payload claims. */
export interface SignedClaim {
  /** critical.image.docker-manifest-digest */
  manifestDigest: string;
  /** critical.identity.docker-reference, as written */
  dockerReference: string;
  /** optional.timestamp (seconds), when given. */
  timestamp?: number;
}

/** The critical.type of GPG (simple signing) payloads. */
export const GPG_PAYLOAD_TYPE = "atomic container signature";
/** The critical.type of cosign payloads. */
export const COSIGN_PAYLOAD_TYPE = "cosign container image signature";

/** Parses a payload; returns the claim or throws an Error whose message says what is wrong. */
export function parsePayload(bytes: Uint8Array, type: string): SignedClaim {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new Error(`its payload is not valid JSON (${(e as Error).message})`);
  }
  const top = exact(doc, ["critical", "optional"], "payload");
  const critical = exact(top.critical, ["type", "image", "identity"], "critical");
  if (critical.type !== type) throw new Error(`its payload has critical.type ${JSON.stringify(critical.type)}, expected "${type}"`);
  const image = exact(critical.image, ["docker-manifest-digest"], "critical.image");
  const identity = exact(critical.identity, ["docker-reference"], "critical.identity");
  const digest = image["docker-manifest-digest"];
  if (typeof digest !== "string" || !/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-f0-9]{32,}$/.test(digest))
    throw new Error(`its payload has an invalid docker-manifest-digest ${JSON.stringify(digest)}`);
  const ref = identity["docker-reference"];
  if (typeof ref !== "string" || ref === "") throw new Error(`its payload has an invalid docker-reference ${JSON.stringify(ref)}`);
  const claim: SignedClaim = { manifestDigest: digest, dockerReference: ref };
  const optional = top.optional;
  if (optional === null && type === COSIGN_PAYLOAD_TYPE) return claim;
  if (!optional || typeof optional !== "object" || Array.isArray(optional)) throw new Error("its payload's optional member is not an object");
  const o = optional as Record<string, unknown>;
  if (o.creator !== undefined && typeof o.creator !== "string") throw new Error("its payload's optional.creator is not a string");
  if (o.timestamp !== undefined) {
    if (typeof o.timestamp !== "number" || !Number.isSafeInteger(o.timestamp)) throw new Error("its payload's optional.timestamp is not an integer");
    claim.timestamp = o.timestamp;
  }
  return claim;
}

/** True when `manifest` has the digest `digest` (computed with the digest's own algorithm). */
export function manifestMatches(manifest: Uint8Array, digest: string): boolean {
  const algo = digest.split(":")[0]!;
  if (algo !== "sha256" && algo !== "sha512") return false;
  return digestOf(manifest, algo) === digest;
}

// --- internal ---

function exact(v: unknown, keys: string[], where: string): Record<string, unknown> {
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error(`its payload's ${where} is not a JSON object`);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new Error(`its payload's ${where} has an unexpected member "${k}"`);
  for (const k of keys) if (!(k in o)) throw new Error(`its payload's ${where} has no "${k}" member`);
  return o;
}
