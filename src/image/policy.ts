import { existsSync, readFileSync } from "node:fs";
import { RuntimeError, invalid, messageOf } from "../errors.ts";
import { formatRef, repoName, type ImageRef } from "./reference.ts";

/**
 * containers-policy.json(5) for the "docker" transport. The most specific scope wins:
 * "host/repo:tag" (or "@digest"), "host/repo", each parent namespace, "host", "*.domain"
 * wildcards (narrowest first), the transport's "" scope, then "default". Every requirement of the
 * chosen list must hold. We can honour insecureAcceptAnything and reject; a signature requirement
 * (signedBy, sigstoreSigned, signedBaseLayer) cannot be checked here, so it refuses the pull
 * with a clear error instead of being silently accepted.
 */

/** One requirement of a policy list. */
export interface PolicyRequirement {
  type: "insecureAcceptAnything" | "reject" | "signedBy" | "sigstoreSigned" | "signedBaseLayer";
}

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
    throw new RuntimeError("failed-precondition", `signature policy file ${file} does not exist; create it (e.g. {"default":[{"type":"insecureAcceptAnything"}]})`);
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

/**
 * Throws unless every requirement for `ref` is satisfied: permission-denied for reject,
 * failed-precondition for a signature requirement we cannot verify.
 */
export function checkPolicy(policy: Policy, ref: ImageRef): void {
  const { scope, requirements: reqs } = decide(policy, ref);
  const name = formatRef(ref);
  for (const r of reqs) {
    if (r.type === "insecureAcceptAnything") continue;
    if (r.type === "reject")
      throw new RuntimeError("permission-denied", `image "${name}" is rejected by the signature policy ${policy.file} (scope ${scope}: reject)`);
    throw new RuntimeError(
      "failed-precondition",
      `signature policy ${policy.file} requires ${r.type} signatures for "${name}" (scope ${scope}), and signature verification is not supported by this runtime; the pull is refused`,
    );
  }
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

const TYPES = new Set(["insecureAcceptAnything", "reject", "signedBy", "sigstoreSigned", "signedBaseLayer"]);

function requirements(v: unknown, where: string, bad: (m: string) => Error): PolicyRequirement[] {
  if (!Array.isArray(v)) throw bad(`${where} must be a list of requirements`);
  if (v.length === 0) throw bad(`${where} is an empty requirement list (use [{"type":"insecureAcceptAnything"}] or [{"type":"reject"}])`);
  return v.map((r, i) => {
    const t = (r as { type?: unknown } | null)?.type;
    if (typeof t !== "string" || !TYPES.has(t)) throw bad(`${where}[${i}] has unknown requirement type ${JSON.stringify(t)}`);
    return { type: t as PolicyRequirement["type"] };
  });
}
