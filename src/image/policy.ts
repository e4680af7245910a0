import { existsSync, readFileSync } from "node:fs";
import { RuntimeError, invalid, messageOf } from "../errors.ts";
import { parseIdentityRule, type IdentityRule } from "./identity.ts";
import { formatRef, repoName, type ImageRef } from "./reference.ts";

/**
 * containers-policy.json(5) for the "docker" transport. The most specific scope wins:
 * "host/repo:tag" (or "@digest"), "host/repo", each parent namespace, "host", "*.domain"
 * wildcards (narrowest first), the transport's "" scope, then "default". Every requirement of the
 * chosen list must hold. insecureAcceptAnything and reject are decided here, before any network;
 * signedBy and sigstoreSigned need the image's manifest and its signatures, and are checked by
 * verify.ts once the manifest is fetched. Requirements are parsed as strictly as containers/image
 * does: an unknown field or a missing key is an error of the file, never ignored.
 */

/** A GPG (simple signing) requirement: one of the keys must have signed the manifest. */
export interface SignedByRequirement {
  type: "signedBy";
  keyType: "GPGKeys";
  /** keyPath / keyPaths: keyrings read when a pull needs them. */
  keyPaths?: string[];
  /** keyData: the keyring itself (binary or ASCII-armoured). */
  keyData?: Uint8Array;
  signedIdentity: IdentityRule;
}

/** Keyless (Fulcio) verification settings of a sigstoreSigned requirement. */
export interface FulcioSettings {
  caPath?: string;
  caData?: Uint8Array;
  oidcIssuer: string;
  subjectEmail: string;
}

/** A sigstore (cosign) requirement: a public key, or Fulcio certificates plus Rekor. */
export interface SigstoreRequirement {
  type: "sigstoreSigned";
  /** keyPath / keyPaths: PEM public keys; any one may have signed. */
  keyPaths?: string[];
  keyData?: Uint8Array;
  fulcio?: FulcioSettings;
  rekorPublicKeyPath?: string;
  rekorPublicKeyData?: Uint8Array;
  signedIdentity: IdentityRule;
}

/** One requirement of a policy list. */
export type PolicyRequirement =
  | { type: "insecureAcceptAnything" }
  | { type: "reject" }
  | SignedByRequirement
  | SigstoreRequirement
  | { type: "signedBaseLayer"; baseLayerIdentity: IdentityRule };

/** A parsed policy. */
export interface Policy {
  file: string;
  default: PolicyRequirement[];
  transports: Record<string, Record<string, PolicyRequirement[]>>;
}

/** The outcome of a check: the scope that decided and its requirements. */
export interface PolicyDecision {
  scope: string;
  requirements: PolicyRequirement[];
}

/** Reads and validates a policy file; throws invalid-argument (bad file) or failed-precondition (missing). */
export function loadPolicy(file: string): Policy {
  if (!existsSync(file))
    throw new RuntimeError(
      "failed-precondition",
      `signature policy file ${file} does not exist; create it (e.g. {"default":[{"type":"insecureAcceptAnything"}]})`,
    );
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw invalid(`signature policy ${file}: invalid JSON: ${messageOf(e)}`);
  }
  return parsePolicy(doc, file);
}

/** Validates a parsed policy document. */
export function parsePolicy(doc: unknown, file = "policy.json"): Policy {
  const bad = (m: string) => invalid(`signature policy ${file}: ${m}`);
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw bad("must be a JSON object");
  const d = doc as Record<string, unknown>;
  if (d.default === undefined) throw bad(`has no "default" requirement list`);
  const policy: Policy = { file, default: requirements(d.default, "default", bad), transports: {} };
  const ts = d.transports ?? {};
  if (typeof ts !== "object" || Array.isArray(ts)) throw bad(`"transports" must be an object`);
  for (const [t, scopes] of Object.entries(ts as Record<string, unknown>)) {
    if (!scopes || typeof scopes !== "object" || Array.isArray(scopes)) throw bad(`transport "${t}" must map scopes to requirement lists`);
    policy.transports[t] = {};
    for (const [scope, reqs] of Object.entries(scopes as Record<string, unknown>))
      policy.transports[t]![scope] = requirements(reqs, `transports.${t}["${scope}"]`, bad);
  }
  return policy;
}

/** The scope and requirements that apply to `ref` pulled through the docker transport. */
export function decide(policy: Policy, ref: ImageRef): PolicyDecision {
  const scopes = policy.transports.docker ?? {};
  for (const s of scopeCandidates(ref)) if (scopes[s]) return { scope: s, requirements: scopes[s]! };
  if (scopes[""]) return { scope: `docker ""`, requirements: scopes[""]! };
  return { scope: "default", requirements: policy.default };
}

/** True when a requirement needs the image's signatures (verify.ts). */
export function needsSignatures(r: PolicyRequirement): boolean {
  return r.type !== "insecureAcceptAnything" && r.type !== "reject";
}

/**
 * The checks that need no image: throws permission-denied when a requirement of the deciding
 * scope is reject. Returns the decision; the caller verifies signatures when
 * `requirements.some(needsSignatures)`.
 */
export function checkPolicy(policy: Policy, ref: ImageRef): PolicyDecision {
  const decision = decide(policy, ref);
  if (decision.requirements.some((r) => r.type === "reject"))
    throw new RuntimeError(
      "permission-denied",
      `image "${formatRef(ref)}" is rejected by the signature policy ${policy.file} (scope ${decision.scope}: reject)`,
    );
  return decision;
}

/** The docker-transport scopes of `ref`, most specific first (without "" and default). */
export function scopeCandidates(ref: ImageRef): string[] {
  const out: string[] = [];
  const repo = repoName(ref);
  if (ref.tag) out.push(`${repo}:${ref.tag}`);
  if (ref.digest) out.push(`${repo}@${ref.digest}`);
  const parts = repo.split("/");
  for (let n = parts.length; n >= 1; n--) out.push(parts.slice(0, n).join("/"));
  const host = ref.domain.replace(/:\d+$/, "").split(".");
  for (let i = 1; i < host.length; i++) out.push(`*.${host.slice(i).join(".")}`);
  return out;
}

// --- internal ---

type Bad = (m: string) => Error;

function requirements(v: unknown, where: string, bad: Bad): PolicyRequirement[] {
  if (!Array.isArray(v)) throw bad(`${where} must be a list of requirements`);
  if (v.length === 0) throw bad(`${where} is an empty requirement list (use [{"type":"insecureAcceptAnything"}] or [{"type":"reject"}])`);
  return v.map((r, i) => requirement(r, `${where}[${i}]`, bad));
}

function requirement(r: unknown, where: string, bad: Bad): PolicyRequirement {
  const o = object(r, where, bad);
  const t = o.type;
  switch (t) {
    case "insecureAcceptAnything":
    case "reject":
      only(o, ["type"], where, bad);
      return { type: t };
    case "signedBy": {
      only(o, ["type", "keyType", "keyPath", "keyPaths", "keyData", "signedIdentity"], where, bad);
      if (o.keyType !== "GPGKeys") throw bad(`${where}: keyType ${JSON.stringify(o.keyType)} is not supported (only "GPGKeys", as in containers/image)`);
      const keys = keySource(o, where, bad, true)!;
      return { type: t, keyType: "GPGKeys", ...keys, signedIdentity: identity(o.signedIdentity, where, bad) };
    }
    case "sigstoreSigned": {
      only(o, ["type", "keyPath", "keyPaths", "keyData", "fulcio", "rekorPublicKeyPath", "rekorPublicKeyData", "signedIdentity"], where, bad);
      const keys = keySource(o, where, bad, false);
      const fulcio = o.fulcio === undefined ? undefined : fulcioSettings(o.fulcio, `${where}.fulcio`, bad);
      if (!keys && !fulcio) throw bad(`${where}: sigstoreSigned needs one of keyPath, keyPaths, keyData or fulcio`);
      if (keys && fulcio) throw bad(`${where}: sigstoreSigned takes either a public key or fulcio, not both`);
      const out: SigstoreRequirement = { type: t, ...keys, signedIdentity: identity(o.signedIdentity, where, bad) };
      if (fulcio) out.fulcio = fulcio;
      if (o.rekorPublicKeyPath !== undefined && o.rekorPublicKeyData !== undefined)
        throw bad(`${where}: give rekorPublicKeyPath or rekorPublicKeyData, not both`);
      if (o.rekorPublicKeyPath !== undefined) out.rekorPublicKeyPath = path(o.rekorPublicKeyPath, `${where}.rekorPublicKeyPath`, bad);
      if (o.rekorPublicKeyData !== undefined) out.rekorPublicKeyData = base64(o.rekorPublicKeyData, `${where}.rekorPublicKeyData`, bad);
      if (fulcio && !out.rekorPublicKeyPath && !out.rekorPublicKeyData)
        throw bad(`${where}: fulcio needs rekorPublicKeyPath or rekorPublicKeyData (containers/image requires a Rekor SET with Fulcio)`);
      return out;
    }
    case "signedBaseLayer":
      only(o, ["type", "baseLayerIdentity"], where, bad);
      if (o.baseLayerIdentity === undefined) throw bad(`${where}: signedBaseLayer needs baseLayerIdentity`);
      return { type: t, baseLayerIdentity: identity(o.baseLayerIdentity, `${where}.baseLayerIdentity`, bad) };
    default:
      throw bad(`${where} has unknown requirement type ${JSON.stringify(t)}`);
  }
}

function keySource(o: Record<string, unknown>, where: string, bad: Bad, required: boolean): { keyPaths?: string[]; keyData?: Uint8Array } | undefined {
  const given = ["keyPath", "keyPaths", "keyData"].filter((k) => o[k] !== undefined);
  if (given.length > 1) throw bad(`${where}: give only one of keyPath, keyPaths and keyData (got ${given.join(", ")})`);
  if (given.length === 0) {
    if (required) throw bad(`${where}: ${o.type} needs one of keyPath, keyPaths and keyData`);
    return undefined;
  }
  if (o.keyPath !== undefined) return { keyPaths: [path(o.keyPath, `${where}.keyPath`, bad)] };
  if (o.keyPaths !== undefined) {
    if (!Array.isArray(o.keyPaths) || o.keyPaths.length === 0) throw bad(`${where}.keyPaths must be a non-empty list of paths`);
    return { keyPaths: o.keyPaths.map((p, i) => path(p, `${where}.keyPaths[${i}]`, bad)) };
  }
  return { keyData: base64(o.keyData, `${where}.keyData`, bad) };
}

function fulcioSettings(v: unknown, where: string, bad: Bad): FulcioSettings {
  const o = object(v, where, bad);
  only(o, ["caPath", "caData", "oidcIssuer", "subjectEmail"], where, bad);
  if ((o.caPath === undefined) === (o.caData === undefined)) throw bad(`${where}: give exactly one of caPath and caData`);
  for (const k of ["oidcIssuer", "subjectEmail"]) if (typeof o[k] !== "string" || o[k] === "") throw bad(`${where}.${k} must be a non-empty string`);
  const out: FulcioSettings = { oidcIssuer: o.oidcIssuer as string, subjectEmail: o.subjectEmail as string };
  if (o.caPath !== undefined) out.caPath = path(o.caPath, `${where}.caPath`, bad);
  else out.caData = base64(o.caData, `${where}.caData`, bad);
  return out;
}

function identity(v: unknown, where: string, bad: Bad): IdentityRule {
  if (v === undefined) return { type: "matchRepoDigestOrExact" };
  return parseIdentityRule(v, `${where}.signedIdentity`, bad);
}

function object(v: unknown, where: string, bad: Bad): Record<string, unknown> {
  if (!v || typeof v !== "object" || Array.isArray(v)) throw bad(`${where} must be a JSON object`);
  return v as Record<string, unknown>;
}

function only(o: Record<string, unknown>, keys: string[], where: string, bad: Bad): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw bad(`${where} (${o.type}) has unknown field "${k}"`);
}

function path(v: unknown, where: string, bad: Bad): string {
  if (typeof v !== "string" || v === "") throw bad(`${where} must be a path (got ${JSON.stringify(v)})`);
  return v;
}

function base64(v: unknown, where: string, bad: Bad): Uint8Array {
  if (typeof v !== "string" || v === "" || !/^[A-Za-z0-9+/]*={0,2}$/.test(v.replace(/\s+/g, ""))) throw bad(`${where} must be base64 text`);
  return Buffer.from(v, "base64");
}
