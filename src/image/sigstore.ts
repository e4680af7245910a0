import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from "node:crypto";

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

/** Verifies with any of `keys`; throws an Error saying why when none verifies. */
export function verifySigstore(keys: KeyObject[], payload: Uint8Array, signatureB64: string): void {
  if (!signatureB64) throw new Error("it has no dev.cosignproject.cosign/signature annotation");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signatureB64)) throw new Error("its dev.cosignproject.cosign/signature annotation is not base64");
  if (!keys.some((k) => verifyWithKey(k, payload, signatureB64)))
    throw new Error(`its signature does not verify with ${keys.length === 1 ? "the trusted public key" : `any of the ${keys.length} trusted public keys`}`);
}

/** sha256 hex of bytes (the payload hash a Rekor entry records). */
export function sha256Hex(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}
