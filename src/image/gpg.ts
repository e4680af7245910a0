import { createHash } from "node:crypto";
import * as openpgp from "openpgp";

/**
 * OpenPGP verification of simple-signing signatures (containers-signature(5)) with OpenPGP.js.
 * Loaded only when a policy has a signedBy requirement (verify.ts imports it lazily). Besides the
 * signature itself, the key that made it must be valid now: a signature by a key that has since
 * expired or been revoked is refused, as GPGME refuses it for containers/image.
 */

/** A verified signature: the signed payload and the signing (primary) key's fingerprint. */
export interface GpgResult {
  payload: Uint8Array;
  fingerprint: string;
}

/** Parses keyrings (binary or ASCII-armoured); parsed keyrings are cached by content. Throws when one holds no key. */
export async function readKeyring(data: Uint8Array, where: string): Promise<openpgp.Key[]> {
  const id = createHash("sha256").update(data).digest("hex");
  const hit = keyCache.get(id);
  if (hit) return hit;
  const text = Buffer.from(data).toString("latin1");
  let keys: openpgp.Key[];
  try {
    keys = text.includes("-----BEGIN PGP PUBLIC KEY BLOCK-----") ? await openpgp.readKeys({ armoredKeys: text }) : await openpgp.readKeys({ binaryKeys: data });
  } catch (e) {
    throw new Error(`${where} is not an OpenPGP keyring: ${(e as Error).message}`);
  }
  if (keys.length === 0) throw new Error(`${where} holds no OpenPGP key`);
  if (keyCache.size > 64) keyCache.clear();
  keyCache.set(id, keys);
  return keys;
}

/**
 * Verifies an OpenPGP signed message against `keys`; returns its literal data. Throws an Error
 * whose message says why (not signed by one of the keys, bad signature, key expired or revoked,
 * not an OpenPGP message).
 */
export async function verifyGpg(sig: Uint8Array, keys: openpgp.Key[]): Promise<GpgResult> {
  let message: openpgp.Message<Uint8Array>;
  try {
    message = await openpgp.readMessage({ binaryMessage: sig });
  } catch (e) {
    throw new Error(`it is not an OpenPGP signed message (${(e as Error).message})`);
  }
  const now = new Date();
  let result: Awaited<ReturnType<typeof openpgp.verify<Uint8Array>>>;
  try {
    result = await openpgp.verify({ message, verificationKeys: keys, expectSigned: true, format: "binary", date: now });
  } catch (e) {
    throw new Error(`its OpenPGP signature is not valid: ${describe(e)}`);
  }
  if (result.signatures.length !== 1) throw new Error(`it carries ${result.signatures.length} OpenPGP signatures, expected exactly 1`);
  const s = result.signatures[0]!;
  const key = keys.find((k) => k.getKeys(s.keyID).length > 0);
  if (!key) throw new Error(`it was signed by key ${s.keyID.toHex().toUpperCase()}, which is not among the trusted keys`);
  // The key must be usable for signing now (not expired, not revoked), not only when it signed.
  try {
    await key.getSigningKey(s.keyID, now);
  } catch (e) {
    throw new Error(`the key ${key.getFingerprint().toUpperCase()} that made it is not valid now: ${describe(e)}`);
  }
  return { payload: result.data as Uint8Array, fingerprint: key.getFingerprint().toUpperCase() };
}

// --- internal ---

const keyCache = new Map<string, openpgp.Key[]>();

function describe(e: unknown): string {
  const m = (e as Error).message ?? String(e);
  return m
    .replace(/^Error verifying signed message: /, "")
    .replace(/^Could not find signing key with key ID (\w+)$/, (_, id: string) => `signed by key ${id.toUpperCase()}, which is not among the trusted keys`);
}
