import { describe, expect, test } from "bun:test";
import { createHash, generateKeyPairSync, sign } from "node:crypto";
import { pemBlocks, readPublicKeys, verifyRekorSet, verifySigstore } from "../../../src/image/sigstore.ts";

const pair = () => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { privateKey, publicKey, pem: publicKey.export({ type: "spki", format: "pem" }).toString() };
};
const signer = pair();
const rekor = pair();
const payload = Buffer.from('{"critical":{}}');
const signature = sign("sha256", payload, signer.privateKey).toString("base64");

/** A bundle whose Payload members are written in the order given (canonicalisation must sort them). */
function bundle(o: { order?: string[]; hash?: string; sig?: string; keyPem?: string; setKey?: typeof rekor; extra?: Record<string, unknown> } = {}) {
  const body = {
    apiVersion: "0.0.1",
    kind: "hashedrekord",
    spec: {
      data: { hash: { algorithm: "sha256", value: o.hash ?? createHash("sha256").update(payload).digest("hex") } },
      signature: { content: o.sig ?? signature, publicKey: { content: Buffer.from(o.keyPem ?? signer.pem).toString("base64") } },
    },
  };
  const members: Record<string, unknown> = {
    body: Buffer.from(JSON.stringify(body)).toString("base64"),
    integratedTime: 1700000000,
    logIndex: 3,
    logID: "c0ffee",
    ...o.extra,
  };
  const sorted = JSON.stringify(
    Object.fromEntries(
      Object.keys(members)
        .sort()
        .map((k) => [k, members[k]]),
    ),
  );
  const Payload = Object.fromEntries((o.order ?? Object.keys(members)).map((k) => [k, members[k]]));
  return JSON.stringify({ SignedEntryTimestamp: sign("sha256", Buffer.from(sorted), (o.setKey ?? rekor).privateKey).toString("base64"), Payload });
}
const der = (pem: string) => pemBlocks(pem, /PUBLIC KEY/)[0]!;

describe("sigstore verification", () => {
  test("a key's signature verifies; another key's does not; the annotation must be base64", () => {
    const keys = readPublicKeys(Buffer.from(signer.pem), "k");
    expect(verifySigstore(keys, payload, signature).asymmetricKeyType).toBe("ec");
    expect(() => verifySigstore(readPublicKeys(Buffer.from(pair().pem), "k"), payload, signature)).toThrow(/does not verify with the trusted public key/);
    expect(() => verifySigstore(keys, payload, "")).toThrow(/no dev\.cosignproject\.cosign\/signature/);
    expect(() => verifySigstore(keys, payload, "**")).toThrow(/not base64/);
    expect(() => readPublicKeys(Buffer.from("nothing"), "k")).toThrow(/holds no PEM public key/);
  });

  test("a Rekor bundle verifies over the canonical (sorted) Payload whatever its member order", () => {
    const keys = readPublicKeys(Buffer.from(rekor.pem), "r");
    expect(verifyRekorSet(keys, bundle(), der(signer.pem), signature, payload)).toBe(1700000000);
    expect(verifyRekorSet(keys, bundle({ order: ["logIndex", "logID", "body", "integratedTime"] }), der(signer.pem), signature, payload)).toBe(1700000000);
  });

  test.each([
    [{ setKey: pair() }, /does not verify with the trusted Rekor key/],
    [{ hash: "00".repeat(32) }, /payload hash in its Rekor entry does not match/],
    [{ sig: sign("sha256", Buffer.from("x"), signer.privateKey).toString("base64") }, /signature in its Rekor entry is not the image signature/],
    [{ keyPem: pair().pem }, /public key or certificate in its Rekor entry is not the one that signed/],
    [{ extra: { more: 1 } }, /Payload has an unexpected member "more"/],
  ])("a bad Rekor bundle is refused %#", (o, re) => {
    expect(() =>
      verifyRekorSet(readPublicKeys(Buffer.from(rekor.pem), "r"), bundle(o as Parameters<typeof bundle>[0]), der(signer.pem), signature, payload),
    ).toThrow(re);
  });

  test("a bundle that is not JSON, or lacks members", () => {
    const keys = readPublicKeys(Buffer.from(rekor.pem), "r");
    expect(() => verifyRekorSet(keys, "{", der(signer.pem), signature, payload)).toThrow(/not valid JSON/);
    expect(() => verifyRekorSet(keys, JSON.stringify({ Payload: {} }), der(signer.pem), signature, payload)).toThrow(/no "SignedEntryTimestamp" member/);
  });
});
