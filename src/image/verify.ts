import { readFile } from "node:fs/promises";
import { RuntimeError, messageOf } from "../errors.ts";
import { identityMismatch, signedReference } from "./identity.ts";
import { needsSignatures, type Policy, type PolicyDecision, type PolicyRequirement, type SignedByRequirement, type SigstoreRequirement } from "./policy.ts";
import { formatRef, type ImageRef } from "./reference.ts";
import type { SigstoreSignature } from "./signatures.ts";
import { COSIGN_PAYLOAD_TYPE, GPG_PAYLOAD_TYPE, manifestMatches, parsePayload } from "./simple-signing.ts";

/**
 * Checks the signature requirements of a policy decision against one image manifest, before
 * anything of the image is stored. For each requirement at least one signature must be accepted:
 * its cryptography verifies with a trusted key, its payload parses strictly, names exactly the
 * manifest digest pulled, and its identity satisfies the signedIdentity rule for the name the user
 * wrote. A refusal is failed-precondition naming the image, the policy file, the scope and why.
 * The OpenPGP and sigstore code is imported on first use, so a daemon whose policy requires no
 * signatures never loads it.
 */

/** The image being checked: its name as written (resolved, never a mirror's) and its manifest. */
export interface VerifyTarget {
  ref: ImageRef;
  manifest: Uint8Array;
  /** The manifest's digest (what signatures must name). */
  digest: string;
}

/** How the signatures of the target are read (each called at most once per check). */
export interface SignatureAccess {
  /** Lookaside signatures (signedBy): raw OpenPGP messages. */
  lookaside(): Promise<Uint8Array[]>;
  /** Sigstore attachments (sigstoreSigned). */
  sigstore(): Promise<SigstoreSignature[]>;
}

/** Throws failed-precondition unless every signature requirement of `decision` holds for `t`. */
export async function verifyImage(policy: Policy, decision: PolicyDecision, t: VerifyTarget, access: SignatureAccess): Promise<void> {
  const cached = memo(access);
  for (const r of decision.requirements) {
    if (!needsSignatures(r)) continue;
    const refuse = (why: string, cause?: unknown) =>
      new RuntimeError(
        "failed-precondition",
        `image "${formatRef(t.ref)}" is refused by the signature policy ${policy.file} (scope ${decision.scope}: ${r.type}): ${why}`,
        cause ? { cause } : undefined,
      );
    let reason: string | undefined;
    try {
      reason = await check(r, t, cached);
    } catch (e) {
      // reading keys or signatures failed: the image cannot be verified
      const err = RuntimeError.from(e);
      if (err.kind === "canceled" || err.kind === "deadline-exceeded") throw err;
      throw refuse(`its signatures cannot be checked: ${err.message}`, e);
    }
    if (reason) throw refuse(reason);
  }
}

// --- internal ---

/** undefined when the requirement holds, else the reason. */
async function check(r: PolicyRequirement, t: VerifyTarget, access: SignatureAccess): Promise<string | undefined> {
  switch (r.type) {
    case "signedBy":
      return checkSignedBy(r, t, await access.lookaside());
    case "sigstoreSigned":
      return checkSigstore(r, t, await access.sigstore());
    case "signedBaseLayer":
      return "signedBaseLayer cannot be satisfied: containers/image does not implement it either, and refuses every image it applies to";
    default:
      return undefined;
  }
}

async function checkSignedBy(r: SignedByRequirement, t: VerifyTarget, sigs: Uint8Array[]): Promise<string | undefined> {
  const gpg = await import("./gpg.ts");
  const keys: Awaited<ReturnType<typeof gpg.readKeyring>> = [];
  for (const k of await keyData(r.keyPaths, r.keyData)) keys.push(...(await gpg.readKeyring(k.data, k.where)));
  if (sigs.length === 0) return `a signature is required, but the image (${t.digest}) has none in its lookaside`;
  return firstAccepted(sigs, async (sig) => {
    const { payload } = await gpg.verifyGpg(sig, keys);
    return claimMismatch(r.signedIdentity, t, payload, GPG_PAYLOAD_TYPE);
  });
}

async function checkSigstore(r: SigstoreRequirement, t: VerifyTarget, sigs: SigstoreSignature[]): Promise<string | undefined> {
  const sigstore = await import("./sigstore.ts");
  const rekorSource = await keyData(r.rekorPublicKeyPath ? [r.rekorPublicKeyPath] : undefined, r.rekorPublicKeyData);
  const rekorKeys = rekorSource.flatMap((k) => sigstore.readPublicKeys(k.data, `Rekor public key ${k.where}`));
  if (rekorKeys.some((k) => k.asymmetricKeyType !== "ec")) throw new RuntimeError("failed-precondition", "the Rekor public key is not an ECDSA key");
  let fulcio: import("./sigstore.ts").FulcioTrust | undefined;
  let keys: import("node:crypto").KeyObject[] = [];
  if (r.fulcio) {
    const ca = await keyData(r.fulcio.caPath ? [r.fulcio.caPath] : undefined, r.fulcio.caData);
    fulcio = {
      roots: ca.flatMap((c) => sigstore.readCertificates(c.data, `Fulcio CA ${c.where.replace(/^key file/, "file")}`)),
      oidcIssuer: r.fulcio.oidcIssuer,
      subjectEmail: r.fulcio.subjectEmail,
    };
  } else {
    keys = (await keyData(r.keyPaths, r.keyData)).flatMap((k) => sigstore.readPublicKeys(k.data, k.where));
  }
  if (sigs.length === 0)
    return `a signature is required, but the image (${t.digest}) has no sigstore signature attached (is use-sigstore-attachments set in registries.d?)`;
  return firstAccepted(sigs, async (s) => {
    if (fulcio) {
      // keyless: the Rekor entry vouches for the certificate at its integrated time, the certificate for the key
      if (!s.bundle) throw new Error("it has no dev.sigstore.cosign/bundle annotation (a Rekor bundle is required with fulcio)");
      if (!s.certificate) throw new Error("it has no dev.sigstore.cosign/certificate annotation");
      const leaf = sigstore.pemBlocks(s.certificate, /^CERTIFICATE$/);
      if (leaf.length !== 1) throw new Error(`its certificate annotation holds ${leaf.length} certificates, expected 1`);
      const at = sigstore.verifyRekorSet(rekorKeys, s.bundle, leaf[0]!, s.signature, s.payload);
      const key = sigstore.verifyFulcio(fulcio, s.certificate, s.chain, at);
      sigstore.verifySigstore([key], s.payload, s.signature, "certificate's key");
    } else {
      const key = sigstore.verifySigstore(keys, s.payload, s.signature);
      if (rekorKeys.length > 0) {
        if (!s.bundle) throw new Error("it has no dev.sigstore.cosign/bundle annotation (the policy requires a Rekor bundle)");
        sigstore.verifyRekorSet(rekorKeys, s.bundle, key.export({ type: "spki", format: "der" }), s.signature, s.payload);
      }
    }
    return claimMismatch(r.signedIdentity, t, s.payload, COSIGN_PAYLOAD_TYPE);
  });
}

/** The first signature `accept` accepts wins (undefined); otherwise the reasons of all. */
async function firstAccepted<S>(sigs: S[], accept: (s: S) => Promise<string | undefined>): Promise<string | undefined> {
  const reasons: string[] = [];
  for (const s of sigs) {
    let why: string | undefined;
    try {
      why = await accept(s);
    } catch (e) {
      why = messageOf(e);
    }
    if (!why) return undefined;
    reasons.push(why);
  }
  if (reasons.length === 1) return `its signature is not accepted: ${reasons[0]}`;
  return `none of its ${reasons.length} signatures is accepted: ${reasons.map((w, i) => `signature ${i + 1}: ${w}`).join("; ")}`;
}

/** The payload's claims against the image: manifest digest, then identity. */
function claimMismatch(rule: SignedByRequirement["signedIdentity"], t: VerifyTarget, payload: Uint8Array, type: string): string | undefined {
  const claim = parsePayload(payload, type);
  if (!manifestMatches(t.manifest, claim.manifestDigest)) return `it signs manifest ${claim.manifestDigest}, not the image's ${t.digest}`;
  let signed: ImageRef;
  try {
    signed = signedReference(claim.dockerReference);
  } catch (e) {
    return `its docker-reference "${claim.dockerReference}" is not a valid reference: ${messageOf(e)}`;
  }
  return identityMismatch(rule, t.ref, signed);
}

async function keyData(paths: string[] | undefined, data: Uint8Array | undefined): Promise<Array<{ data: Uint8Array; where: string }>> {
  if (data) return [{ data, where: "keyData" }];
  const out = [];
  for (const p of paths ?? []) {
    try {
      out.push({ data: new Uint8Array(await readFile(p)), where: `key file ${p}` });
    } catch (e) {
      throw new RuntimeError("failed-precondition", `key file ${p} cannot be read: ${messageOf(e)}`, { cause: e });
    }
  }
  return out;
}

function memo(a: SignatureAccess): SignatureAccess {
  let l: Promise<Uint8Array[]> | undefined;
  let s: Promise<SigstoreSignature[]> | undefined;
  return { lookaside: () => (l ??= a.lookaside()), sigstore: () => (s ??= a.sigstore()) };
}
