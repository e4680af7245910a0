import { createHash, createPublicKey, verify as cryptoVerify, X509Certificate, type KeyObject } from "node:crypto";

/**
 * Sigstore (cosign) signature verification with node:crypto: the signature annotation is a
 * base64 signature over the payload bytes, made with the private half of one of the policy's
 * public keys (PEM; ECDSA P-256/P-384 with SHA-256 as cosign makes them, also RSA PKCS#1 v1.5
 * and Ed25519 as containers/image accepts). Loaded lazily by verify.ts.
 */

/** Parses every PEM public key in `data`; throws when there is none or one is malformed. */
export function readPublicKeys(data: Uint8Array, where: string): KeyObject[] {
  const text = Buffer.from(data).toString("utf8");
  const blocks = text.match(/-----BEGIN [A-Z ]*PUBLIC KEY-----[\s\S]*?-----END [A-Z ]*PUBLIC KEY-----/g) ?? [];
  if (blocks.length === 0) throw new Error(`${where} holds no PEM public key`);
  return blocks.map((b) => {
    try {
      return createPublicKey(b);
    } catch (e) {
      throw new Error(`${where} holds a malformed public key: ${(e as Error).message}`);
    }
  });
}

/** True when `signatureB64` is a valid signature of `payload` by `key`. */
export function verifyWithKey(key: KeyObject, payload: Uint8Array, signatureB64: string): boolean {
  const sig = Buffer.from(signatureB64, "base64");
  if (sig.length === 0) return false;
  try {
    switch (key.asymmetricKeyType) {
      case "ec":
        return cryptoVerify("sha256", payload, { key, dsaEncoding: "der" }, sig);
      case "rsa":
        return cryptoVerify("sha256", payload, key, sig);
      case "ed25519":
        return cryptoVerify(null, payload, key, sig);
      default:
        return false;
    }
  } catch {
    return false;
  }
}

/** Verifies with any of `keys`; returns the key that verifies, or throws an Error saying why none does. */
export function verifySigstore(keys: KeyObject[], payload: Uint8Array, signatureB64: string, what = "trusted public key"): KeyObject {
  if (!signatureB64) throw new Error("it has no dev.cosignproject.cosign/signature annotation");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signatureB64)) throw new Error("its dev.cosignproject.cosign/signature annotation is not base64");
  const key = keys.find((k) => verifyWithKey(k, payload, signatureB64));
  if (!key) throw new Error(`its signature does not verify with ${keys.length === 1 ? `the ${what}` : `any of the ${keys.length} ${what}s`}`);
  return key;
}

/** sha256 hex of bytes (the payload hash a Rekor entry records). */
export function sha256Hex(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/** The PEM blocks of `text` with a label matching `label`, as DER. */
export function pemBlocks(text: string, label: RegExp): Buffer[] {
  const out: Buffer[] = [];
  for (const m of text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g))
    if (label.test(m[1]!)) out.push(Buffer.from(m[2]!.replace(/\s+/g, ""), "base64"));
  return out;
}

/** Every certificate in PEM `data`; throws when there is none. */
export function readCertificates(data: Uint8Array, where: string): X509Certificate[] {
  const ders = pemBlocks(Buffer.from(data).toString("utf8"), /^CERTIFICATE$/);
  if (ders.length === 0) throw new Error(`${where} holds no PEM certificate`);
  return ders.map((d) => {
    try {
      return new X509Certificate(d);
    } catch (e) {
      throw new Error(`${where} holds a malformed certificate: ${(e as Error).message}`);
    }
  });
}

/**
 * Verifies a cosign Rekor bundle (the dev.sigstore.cosign/bundle annotation) offline, as
 * containers/image does: the SignedEntryTimestamp is the Rekor key's ECDSA signature over the
 * canonical JSON (RFC 8785) of Payload; Payload.body is a hashedrekord 0.0.1 entry whose public
 * key (or certificate) is `keyOrCertDer`, whose signature is the image signature, and whose
 * sha256 is the payload's. Returns the entry's integratedTime (seconds); throws why not.
 */
export function verifyRekorSet(rekorKeys: KeyObject[], bundle: string, keyOrCertDer: Buffer, signatureB64: string, payload: Uint8Array): number {
  const set = strictObject(parseJson(bundle, "its Rekor bundle"), ["SignedEntryTimestamp", "Payload"], "its Rekor bundle");
  if (typeof set.SignedEntryTimestamp !== "string") throw new Error("its Rekor bundle has no SignedEntryTimestamp");
  const p = strictObject(set.Payload, ["body", "integratedTime", "logIndex", "logID"], "its Rekor bundle's Payload");
  if (typeof p.body !== "string" || !Number.isSafeInteger(p.integratedTime) || !Number.isSafeInteger(p.logIndex) || typeof p.logID !== "string")
    throw new Error("its Rekor bundle's Payload has members of the wrong types");
  const canonical = Buffer.from(canonicalJson(p));
  const setSig = Buffer.from(set.SignedEntryTimestamp, "base64");
  if (!rekorKeys.some((k) => verifyWithKey(k, canonical, setSig.toString("base64"))))
    throw new Error("its Rekor SignedEntryTimestamp does not verify with the trusted Rekor key");
  const body = strictObject(parseJson(Buffer.from(p.body, "base64").toString("utf8"), "its Rekor entry"), ["apiVersion", "kind", "spec"], "its Rekor entry");
  if (body.kind !== "hashedrekord" || body.apiVersion !== "0.0.1")
    throw new Error(`its Rekor entry is ${JSON.stringify(body.kind)} ${JSON.stringify(body.apiVersion)}, not hashedrekord 0.0.1`);
  const spec = body.spec as
    | { data?: { hash?: { algorithm?: unknown; value?: unknown } }; signature?: { content?: unknown; publicKey?: { content?: unknown } } }
    | undefined;
  const keyPem = spec?.signature?.publicKey?.content;
  if (typeof keyPem !== "string") throw new Error("its Rekor entry has no signature.publicKey");
  const recorded = pemBlocks(Buffer.from(keyPem, "base64").toString("utf8"), /./);
  if (recorded.length !== 1 || !recorded[0]!.equals(keyOrCertDer))
    throw new Error("the public key or certificate in its Rekor entry is not the one that signed");
  if (typeof spec?.signature?.content !== "string" || !Buffer.from(spec.signature.content, "base64").equals(Buffer.from(signatureB64, "base64")))
    throw new Error("the signature in its Rekor entry is not the image signature");
  if (spec?.data?.hash?.algorithm !== "sha256" || spec.data.hash.value !== sha256Hex(payload))
    throw new Error("the payload hash in its Rekor entry does not match the payload");
  return p.integratedTime as number;
}

/** What a Fulcio certificate must show (policy fulcio settings, CA parsed). */
export interface FulcioTrust {
  roots: X509Certificate[];
  oidcIssuer: string;
  subjectEmail: string;
}

/**
 * Verifies a Fulcio leaf certificate (PEM, exactly one) at `atSeconds` (the Rekor integrated
 * time): it chains, through the intermediates of `chainPem` (all but its last, the root), to one
 * of the trusted CA certificates, each certificate valid at that time; it allows code signing;
 * its Fulcio OIDC issuer extension (1.3.6.1.4.1.57264.1.1) and an email SAN match the policy.
 * Returns the leaf's public key; throws why not.
 */
export function verifyFulcio(trust: FulcioTrust, certPem: string, chainPem: string | undefined, atSeconds: number): KeyObject {
  const leaves = pemBlocks(certPem, /^CERTIFICATE$/);
  if (leaves.length !== 1) throw new Error(`its certificate annotation holds ${leaves.length} certificates, expected 1`);
  const leaf = new X509Certificate(leaves[0]!);
  const chain = chainPem ? pemBlocks(chainPem, /^CERTIFICATE$/).map((d) => new X509Certificate(d)) : [];
  const intermediates = chain.slice(0, -1);
  const at = atSeconds * 1000;
  const validAt = (c: X509Certificate) => Date.parse(c.validFrom) <= at && at <= Date.parse(c.validTo);
  let cert = leaf;
  for (let depth = 0; ; depth++) {
    if (!validAt(cert)) throw new Error(`certificate "${cert.subject.replace(/\n/g, ", ")}" is not valid at the Rekor time ${new Date(at).toISOString()}`);
    const root = trust.roots.find((r) => cert.checkIssued(r) && cert.verify(r.publicKey));
    if (root) {
      if (!validAt(root)) throw new Error(`the Fulcio CA certificate is not valid at the Rekor time ${new Date(at).toISOString()}`);
      break;
    }
    const next = depth < 8 ? intermediates.find((i) => i.ca && cert.checkIssued(i) && cert.verify(i.publicKey)) : undefined;
    if (!next) throw new Error("its certificate does not chain to the trusted Fulcio CA");
    cert = next;
  }
  const eku = leaf.keyUsage;
  if (eku && !eku.includes("1.3.6.1.5.5.7.3.3")) throw new Error("its certificate is not for code signing");
  const issuer = fulcioIssuer(leaf.raw);
  if (issuer === undefined) throw new Error("its certificate has no Fulcio OIDC issuer extension");
  if (issuer !== trust.oidcIssuer) throw new Error(`its certificate's OIDC issuer is "${issuer}", not "${trust.oidcIssuer}"`);
  const emails = (leaf.subjectAltName ?? "")
    .split(/,\s*/)
    .filter((s) => s.startsWith("email:"))
    .map((s) => s.slice(6));
  if (!emails.includes(trust.subjectEmail))
    throw new Error(`its certificate is for ${emails.length ? emails.join(", ") : "no email"}, not ${trust.subjectEmail}`);
  return leaf.publicKey;
}

// --- internal ---

/** RFC 8785 canonical JSON for the values a Rekor payload holds (strings, integers, objects, arrays). */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

function parseJson(s: string, what: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    throw new Error(`${what} is not valid JSON`);
  }
}

function strictObject(v: unknown, keys: string[], what: string): Record<string, unknown> {
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error(`${what} is not a JSON object`);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new Error(`${what} has an unexpected member "${k}"`);
  for (const k of keys) if (!(k in o)) throw new Error(`${what} has no "${k}" member`);
  return o;
}

/** The DER encoding of OID 1.3.6.1.4.1.57264.1.1 (Fulcio's OIDC issuer, v1). */
const FULCIO_ISSUER_OID = Buffer.from([0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xbf, 0x30, 0x01, 0x01]);

/** The raw value of the Fulcio issuer extension of a certificate (DER), walking tbsCertificate's extensions. */
function fulcioIssuer(der: Buffer): string | undefined {
  const cert = tlv(der, 0);
  const tbs = tlv(der, cert.start);
  let found: string | undefined;
  for (const f of children(der, tbs.start, tbs.end)) {
    if (f.tag !== 0xa3) continue; // [3] extensions
    const list = tlv(der, f.start);
    for (const ext of children(der, list.start, list.end)) {
      const parts = children(der, ext.start, ext.end);
      const oid = parts[0];
      if (!oid || !der.subarray(oid.headerStart, oid.end).equals(FULCIO_ISSUER_OID)) continue;
      const value = parts[parts.length - 1]!;
      if (value.tag !== 0x04) throw new Error("its certificate's Fulcio issuer extension is malformed");
      if (found !== undefined) throw new Error("its certificate has two Fulcio issuer extensions");
      found = der.subarray(value.start, value.end).toString("utf8");
    }
  }
  return found;
}

interface Tlv {
  tag: number;
  headerStart: number;
  start: number;
  end: number;
}

function tlv(b: Buffer, at: number): Tlv {
  if (at + 2 > b.length) throw new Error("its certificate is truncated");
  const tag = b[at]!;
  let len = b[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > b.length) throw new Error("its certificate has a bad DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[start + i]!;
    start += n;
  }
  if (start + len > b.length) throw new Error("its certificate is truncated");
  return { tag, headerStart: at, start, end: start + len };
}

function children(b: Buffer, start: number, end: number): Tlv[] {
  const out: Tlv[] = [];
  for (let at = start; at < end; ) {
    const t = tlv(b, at);
    out.push(t);
    at = t.end;
  }
  return out;
}
