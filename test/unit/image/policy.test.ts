import { describe, expect, test } from "bun:test";
import { checkPolicy, decide, needsSignatures, parsePolicy, scopeCandidates } from "../../../src/image/policy.ts";
import { normalize, parseReference } from "../../../src/image/reference.ts";

const ref = (s: string) => normalize(parseReference(s));
const kindOf = (f: () => void): string | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as { kind: string }).kind;
  }
};

const policy = parsePolicy({
  default: [{ type: "reject" }],
  transports: {
    docker: {
      "": [{ type: "insecureAcceptAnything" }],
      "quay.io": [{ type: "reject" }],
      "quay.io/trusted": [{ type: "insecureAcceptAnything" }],
      "quay.io/trusted/app:bad": [{ type: "reject" }],
      "*.corp.example": [{ type: "reject" }],
      "ok.corp.example": [{ type: "insecureAcceptAnything" }],
      "signed.example.com": [{ type: "signedBy", keyType: "GPGKeys", keyPath: "/k.gpg" }],
      "sigstore.example.com": [{ type: "sigstoreSigned", keyPath: "/k.pub" }],
    },
    "docker-daemon": { "": [{ type: "reject" }] },
  },
});

describe("policy.json decisions (docker transport, most specific scope wins)", () => {
  test.each([
    ["docker.io/library/busybox:1", `docker ""`],
    ["quay.io/x:1", "quay.io"],
    ["quay.io/trusted/app:1", "quay.io/trusted"],
    ["quay.io/trusted/app:bad", "quay.io/trusted/app:bad"],
    ["reg.corp.example/x", "*.corp.example"],
    ["ok.corp.example/x", "ok.corp.example"],
  ])("%s is decided by %s", (r, scope) => {
    expect(decide(policy, ref(r)).scope).toBe(scope);
  });

  test("accept and reject are decided before any network; signature requirements are left to verification", () => {
    expect(kindOf(() => checkPolicy(policy, ref("docker.io/library/busybox")))).toBeUndefined();
    expect(kindOf(() => checkPolicy(policy, ref("quay.io/trusted/app:1")))).toBeUndefined();
    expect(kindOf(() => checkPolicy(policy, ref("quay.io/other:1")))).toBe("permission-denied");
    expect(() => checkPolicy(policy, ref("quay.io/other:1"))).toThrow(/rejected by the signature policy/);
    const d = checkPolicy(policy, ref("signed.example.com/x"));
    expect(d.requirements.some(needsSignatures)).toBe(true);
    expect(d.requirements[0]).toEqual({ type: "signedBy", keyType: "GPGKeys", keyPaths: ["/k.gpg"], signedIdentity: { type: "matchRepoDigestOrExact" } });
    expect(checkPolicy(policy, ref("sigstore.example.com/x")).requirements[0]!.type).toBe("sigstoreSigned");
  });

  test("the global default applies when the transport has no matching scope", () => {
    const p = parsePolicy({ default: [{ type: "reject" }], transports: { docker: { "quay.io": [{ type: "insecureAcceptAnything" }] } } });
    expect(decide(p, ref("docker.io/x")).scope).toBe("default");
    expect(() => checkPolicy(p, ref("docker.io/x"))).toThrow(/rejected/);
  });

  test("scope candidates run from the tag to the wildcard domains", () => {
    expect(scopeCandidates(ref("a.b.example.com:5000/ns/app:v1"))).toEqual([
      "a.b.example.com:5000/ns/app:v1",
      "a.b.example.com:5000/ns/app",
      "a.b.example.com:5000/ns",
      "a.b.example.com:5000",
      "*.b.example.com",
      "*.example.com",
      "*.com",
    ]);
  });

  test.each([
    [{}, /no "default"/],
    [{ default: [] }, /empty requirement list/],
    [{ default: [{ type: "trustMe" }] }, /unknown requirement type/],
    [{ default: [{ type: "reject" }], transports: { docker: [] } }, /must map scopes/],
    [{ default: [{ type: "reject", extra: 1 }] }, /unknown field "extra"/],
    [{ default: [{ type: "signedBy", keyPath: "/k" }] }, /keyType undefined is not supported/],
    [{ default: [{ type: "signedBy", keyType: "X509Certificates", keyPath: "/k" }] }, /keyType "X509Certificates" is not supported/],
    [{ default: [{ type: "signedBy", keyType: "GPGKeys" }] }, /needs one of keyPath, keyPaths and keyData/],
    [{ default: [{ type: "signedBy", keyType: "GPGKeys", keyPath: "/a", keyData: "AA==" }] }, /only one of keyPath, keyPaths and keyData/],
    [{ default: [{ type: "signedBy", keyType: "GPGKeys", keyPaths: [] }] }, /keyPaths must be a non-empty list/],
    [{ default: [{ type: "signedBy", keyType: "GPGKeys", keyData: "not base64!" }] }, /keyData must be base64/],
    [
      { default: [{ type: "signedBy", keyType: "GPGKeys", keyPath: "/k", signedIdentity: { type: "matchAnything" } }] },
      /unknown identity type "matchAnything"/,
    ],
    [
      { default: [{ type: "signedBy", keyType: "GPGKeys", keyPath: "/k", signedIdentity: { type: "exactReference", dockerReference: "quay.io/a" } }] },
      /has no tag or digest/,
    ],
    [
      { default: [{ type: "signedBy", keyType: "GPGKeys", keyPath: "/k", signedIdentity: { type: "exactRepository", dockerRepository: "quay.io/a:1" } }] },
      /without tag or digest/,
    ],
    [
      {
        default: [
          { type: "signedBy", keyType: "GPGKeys", keyPath: "/k", signedIdentity: { type: "remapIdentity", prefix: "quay.io/a:1", signedPrefix: "x.io" } },
        ],
      },
      /prefix "quay.io\/a:1" must be/,
    ],
    [{ default: [{ type: "signedBy", keyType: "GPGKeys", keyPath: "/k", signedIdentity: { type: "matchExact", x: 1 } }] }, /unknown field "x"/],
    [{ default: [{ type: "sigstoreSigned" }] }, /needs one of keyPath, keyPaths, keyData or fulcio/],
    [{ default: [{ type: "sigstoreSigned", keyPath: "/k", fulcio: { caPath: "/c", oidcIssuer: "i", subjectEmail: "e" } }] }, /either a public key or fulcio/],
    [{ default: [{ type: "sigstoreSigned", fulcio: { caPath: "/c", oidcIssuer: "i", subjectEmail: "e" } }] }, /fulcio needs rekorPublicKeyPath/],
    [{ default: [{ type: "sigstoreSigned", fulcio: { oidcIssuer: "i", subjectEmail: "e" }, rekorPublicKeyPath: "/r" }] }, /exactly one of caPath and caData/],
    [{ default: [{ type: "signedBaseLayer" }] }, /needs baseLayerIdentity/],
  ])("refuses a malformed policy %#", (doc, re) => {
    expect(() => parsePolicy(doc)).toThrow(re);
  });
});
