import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { identityMismatch, signedReference, type IdentityRule } from "../../../src/image/identity.ts";
import { normalize, parseReference } from "../../../src/image/reference.ts";
import { loadRegistriesD, lookasideFor, usesSigstoreAttachments } from "../../../src/image/registries-d.ts";
import { lookasideURL, simpleSigningBlob } from "../../../src/image/signatures.ts";
import { COSIGN_PAYLOAD_TYPE, GPG_PAYLOAD_TYPE, manifestMatches, parsePayload } from "../../../src/image/simple-signing.ts";
import { digestOf } from "../../../src/image/registry-client.ts";

const ref = (s: string) => normalize(parseReference(s));
const D = `sha256:${"a".repeat(64)}`;
const ok = (rule: IdentityRule, image: string, signed: string) => identityMismatch(rule, ref(image), signedReference(signed)) === undefined;

describe("signedIdentity rules (containers-policy.json(5))", () => {
  test("matchRepoDigestOrExact: a tag needs the same name and tag; a digest the same repository", () => {
    const r: IdentityRule = { type: "matchRepoDigestOrExact" };
    expect(ok(r, "quay.io/a/b:1", "quay.io/a/b:1")).toBe(true);
    expect(ok(r, "quay.io/a/b:1", "quay.io/a/b:2")).toBe(false);
    expect(ok(r, `quay.io/a/b@${D}`, "quay.io/a/b:anything")).toBe(true);
    expect(ok(r, `quay.io/a/b@${D}`, "quay.io/a/c:1")).toBe(false);
    // Docker Hub names are normalised on both sides
    expect(ok(r, "docker.io/library/busybox:latest", "busybox:latest")).toBe(true);
  });
  test("matchExact, matchRepository, exactReference, exactRepository", () => {
    expect(ok({ type: "matchExact" }, "quay.io/a:1", "quay.io/a:1")).toBe(true);
    expect(ok({ type: "matchExact" }, `quay.io/a@${D}`, "quay.io/a:1")).toBe(false);
    expect(ok({ type: "matchExact" }, "quay.io/a:1", "quay.io/a")).toBe(false);
    expect(ok({ type: "matchRepository" }, "quay.io/a:1", "quay.io/a:2")).toBe(true);
    expect(ok({ type: "matchRepository" }, "quay.io/a:1", "quay.io/b:1")).toBe(false);
    expect(ok({ type: "exactReference", dockerReference: "quay.io/x:1" }, "quay.io/a:1", "quay.io/x:1")).toBe(true);
    expect(ok({ type: "exactReference", dockerReference: "quay.io/x:1" }, "quay.io/a:1", "quay.io/a:1")).toBe(false);
    expect(ok({ type: "exactRepository", dockerRepository: "quay.io/x" }, "quay.io/a:1", "quay.io/x:7")).toBe(true);
    expect(ok({ type: "exactRepository", dockerRepository: "quay.io/x" }, "quay.io/a:1", "quay.io/a:1")).toBe(false);
  });
  test("remapIdentity rewrites the prefix at a boundary, then matches repo-digest-or-exact", () => {
    const r: IdentityRule = { type: "remapIdentity", prefix: "mirror.local/quay", signedPrefix: "quay.io" };
    expect(ok(r, "mirror.local/quay/a/b:1", "quay.io/a/b:1")).toBe(true);
    expect(ok(r, "mirror.local/quay/a/b:1", "mirror.local/quay/a/b:1")).toBe(false);
    // "mirror.local/quayx" does not start with the prefix at a boundary: no remapping
    expect(ok(r, "mirror.local/quayx/a:1", "quay.iox/a:1")).toBe(false);
    expect(ok(r, "mirror.local/quayx/a:1", "mirror.local/quayx/a:1")).toBe(true);
    expect(identityMismatch(r, ref("mirror.local/quay/a:1"), signedReference("quay.io/b:1"))).toMatch(/remapped from "mirror\.local\/quay\/a:1"/);
  });
});

describe("simple-signing payloads", () => {
  const payload = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  const good = {
    critical: { type: GPG_PAYLOAD_TYPE, image: { "docker-manifest-digest": D }, identity: { "docker-reference": "quay.io/a:1" } },
    optional: { creator: "x", timestamp: 5 },
  };
  test("a well-formed payload gives its claims", () => {
    expect(parsePayload(payload(good), GPG_PAYLOAD_TYPE)).toEqual({ manifestDigest: D, dockerReference: "quay.io/a:1", timestamp: 5 });
    expect(
      parsePayload(payload({ ...good, critical: { ...good.critical, type: COSIGN_PAYLOAD_TYPE }, optional: null }), COSIGN_PAYLOAD_TYPE).manifestDigest,
    ).toBe(D);
  });
  test.each([
    [{ ...good, extra: 1 }, /unexpected member "extra"/],
    [{ critical: good.critical }, /no "optional" member/],
    [{ ...good, critical: { ...good.critical, type: "other" } }, /critical\.type "other"/],
    [{ ...good, critical: { ...good.critical, image: { "docker-manifest-digest": D, x: 1 } } }, /critical\.image has an unexpected member "x"/],
    [{ ...good, critical: { ...good.critical, image: { "docker-manifest-digest": "nope" } } }, /invalid docker-manifest-digest/],
    [{ ...good, critical: { ...good.critical, identity: {} } }, /no "docker-reference"/],
    [{ ...good, optional: null }, /optional member is not an object/],
    [{ ...good, optional: { timestamp: "x" } }, /timestamp is not an integer/],
  ])("refuses %#", (doc, re) => {
    expect(() => parsePayload(payload(doc), GPG_PAYLOAD_TYPE)).toThrow(re);
  });
  test("not JSON; the manifest digest is computed with the claim's algorithm", () => {
    expect(() => parsePayload(new Uint8Array([1, 2]), GPG_PAYLOAD_TYPE)).toThrow(/not valid JSON/);
    const m = new TextEncoder().encode("{}");
    expect(manifestMatches(m, digestOf(m))).toBe(true);
    expect(manifestMatches(m, digestOf(m, "sha512"))).toBe(true);
    expect(manifestMatches(m, D)).toBe(false);
  });
});

describe("registries.d and lookaside layout", () => {
  test("the most specific namespace with a lookaside wins, then default-docker; files may not repeat a namespace", () => {
    const dir = mkdtempSync(join(tmpdir(), "regd-"));
    try {
      writeFileSync(
        join(dir, "a.yaml"),
        "default-docker:\n  lookaside: https://sigs.example/d\ndocker:\n  quay.io:\n    lookaside: file:///q\n    use-sigstore-attachments: true\n",
      );
      writeFileSync(
        join(dir, "b.yaml"),
        "docker:\n  quay.io/team/app:\n    lookaside: https://team.example/s/\n  quay.io/plain:\n    use-sigstore-attachments: false\n",
      );
      writeFileSync(join(dir, "ignored.txt"), "docker: [");
      const c = loadRegistriesD(dir);
      expect(lookasideFor(c, ref("quay.io/team/app:1"))).toBe("https://team.example/s/team/app");
      expect(lookasideFor(c, ref("quay.io/other/x:1"))).toBe("file:///q/other/x");
      expect(lookasideFor(c, ref("quay.io/plain:1"))).toBe("file:///q/plain");
      expect(lookasideFor(c, ref("docker.io/library/busybox:1"))).toBe("https://sigs.example/d/library/busybox");
      expect(usesSigstoreAttachments(c, ref("quay.io/x:1"))).toBe(true);
      expect(usesSigstoreAttachments(c, ref("quay.io/plain:1"))).toBe(false);
      expect(usesSigstoreAttachments(c, ref("docker.io/x:1"))).toBe(false);
      writeFileSync(join(dir, "c.yaml"), "docker:\n  quay.io:\n    lookaside: file:///other\n");
      expect(() => loadRegistriesD(dir)).toThrow(/c\.yaml: namespace "quay.io" is already configured in .*a\.yaml/);
      writeFileSync(join(dir, "c.yaml"), "docker:\n  x.io:\n    lookaside: ftp://x\n");
      expect(() => loadRegistriesD(dir)).toThrow(/must be a file:\/\/, http:\/\/ or https:\/\/ URL/);
      writeFileSync(join(dir, "c.yaml"), "docker:\n  x.io:\n    lookaside-typo: file:///x\n");
      expect(() => loadRegistriesD(dir)).toThrow(/unknown key "lookaside-typo"/);
      writeFileSync(join(dir, "c.yaml"), "default-docker:\n  lookaside: file:///x\n");
      expect(() => loadRegistriesD(dir)).toThrow(/default-docker is already set/);
      expect(loadRegistriesD(join(dir, "missing")).docker).toEqual({});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test("signature URLs and stored formats", () => {
    expect(lookasideURL("file:///l/library/busybox", D, 2)).toBe(`file:///l/library/busybox@sha256=${"a".repeat(64)}/signature-2`);
    expect(simpleSigningBlob(new Uint8Array([0xa3, 1]), "s")).toEqual(new Uint8Array([0xa3, 1]));
    expect(simpleSigningBlob(new Uint8Array([0, ...new TextEncoder().encode("simple-signing\n"), 0x90]), "s")).toEqual(new Uint8Array([0x90]));
    expect(() => simpleSigningBlob(new Uint8Array([]), "s")).toThrow(/is empty/);
    expect(() => simpleSigningBlob(new Uint8Array([0x13]), "s")).toThrow(/unrecognized format, starting with byte 0x13/);
    expect(() => simpleSigningBlob(new Uint8Array([0, ...new TextEncoder().encode("sigstore-json\n{}")]), "s")).toThrow(/format "sigstore-json"/);
  });
});
