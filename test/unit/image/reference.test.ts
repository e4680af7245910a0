import { describe, expect, test } from "bun:test";
import { formatRef, isShortName, normalize, parseQualified, parseReference } from "../../../src/image/reference.ts";
import { RuntimeError } from "../../../src/errors.ts";

const D = "sha256:" + "a".repeat(64);

describe("parseReference", () => {
  test.each([
    ["busybox", { domain: "", path: "busybox" }],
    ["busybox:1.36", { domain: "", path: "busybox", tag: "1.36" }],
    ["library/busybox", { domain: "", path: "library/busybox" }],
    ["quay.io/a/b/c:v1", { domain: "quay.io", path: "a/b/c", tag: "v1" }],
    ["localhost/x", { domain: "localhost", path: "x" }],
    ["localhost:5000/x:y", { domain: "localhost:5000", path: "x", tag: "y" }],
    ["127.0.0.1:5000/ns/img", { domain: "127.0.0.1:5000", path: "ns/img" }],
    [`reg.example.com/img@${D}`, { domain: "reg.example.com", path: "img", digest: D }],
    [`reg.example.com/img:t@${D}`, { domain: "reg.example.com", path: "img", tag: "t", digest: D }],
    ["[::1]:5000/img", { domain: "[::1]:5000", path: "img" }],
    ["a__b/c-d.e_f", { domain: "", path: "a__b/c-d.e_f" }],
  ])("%s", (input, want) => {
    expect(parseReference(input)).toEqual(want as ReturnType<typeof parseReference>);
  });

  test.each([
    ["", /empty/],
    ["Busybox", /lowercase/],
    ["docker.io/Library/busybox", /lowercase/],
    ["busybox:", /bad tag/],
    ["busybox:-x", /bad tag/],
    [`busybox@sha256:abc`, /bad digest/],
    ["a".repeat(64), /64-hex image id/],
    ["https://quay.io/a", /scheme/],
    ["quay.io/", /repository name is empty/],
    ["a//b", /bad repository path component/],
    ["-bad/x", /bad repository path component/],
  ])("refuses %p", (input, re) => {
    let err: unknown;
    try {
      parseReference(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RuntimeError);
    expect((err as RuntimeError).kind).toBe("invalid-argument");
    expect((err as RuntimeError).message).toMatch(re);
  });
});

describe("normalize", () => {
  test.each([
    ["busybox", "docker.io/library/busybox:latest"],
    ["docker.io/busybox", "docker.io/library/busybox:latest"],
    ["index.docker.io/busybox:1", "docker.io/library/busybox:1"],
    ["docker.io/user/app", "docker.io/user/app:latest"],
    ["quay.io/app", "quay.io/app:latest"],
    [`quay.io/app@${D}`, `quay.io/app@${D}`],
  ])("%s → %s", (input, want) => {
    const r = parseReference(input);
    expect(formatRef(normalize(r))).toBe(want);
  });

  test("short names are recognised", () => {
    expect(isShortName(parseReference("ns/app"))).toBe(true);
    expect(isShortName(parseReference("localhost/app"))).toBe(false);
    expect(() => parseQualified("busybox")).toThrow(/names no registry/);
  });
});
