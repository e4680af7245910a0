import { describe, expect, test } from "bun:test";
import { checkPolicy, decide, parsePolicy, scopeCandidates } from "../../../src/image/policy.ts";
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

  test("accept, reject and unverifiable signatures", () => {
    expect(kindOf(() => checkPolicy(policy, ref("docker.io/library/busybox")))).toBeUndefined();
    expect(kindOf(() => checkPolicy(policy, ref("quay.io/trusted/app:1")))).toBeUndefined();
    expect(kindOf(() => checkPolicy(policy, ref("quay.io/other:1")))).toBe("permission-denied");
    expect(() => checkPolicy(policy, ref("quay.io/other:1"))).toThrow(/rejected by the signature policy/);
    expect(kindOf(() => checkPolicy(policy, ref("signed.example.com/x")))).toBe("failed-precondition");
    expect(() => checkPolicy(policy, ref("signed.example.com/x"))).toThrow(/requires signedBy signatures .* not supported/);
    expect(() => checkPolicy(policy, ref("sigstore.example.com/x"))).toThrow(/requires sigstoreSigned/);
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
  ])("refuses a malformed policy %#", (doc, re) => {
    expect(() => parsePolicy(doc)).toThrow(re);
  });
});
