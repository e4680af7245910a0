import { describe, expect, test } from "bun:test";
import { MEDIA, hostPlatform, parseManifest, parsePlatform, selectManifest, type Descriptor } from "../../../src/image/manifest.ts";

const dg = (c: string) => "sha256:" + c.repeat(64);
const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
const d = (c: string, os: string, architecture: string, variant?: string): Descriptor => ({
  mediaType: MEDIA.ociManifest,
  digest: dg(c),
  size: 10,
  platform: { os, architecture, ...(variant ? { variant } : {}) },
});

describe("manifests", () => {
  test("OCI index, Docker list, OCI manifest and Docker schema 2 are recognised", () => {
    expect(parseManifest(enc({ schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: [d("a", "linux", "amd64")] }), "", "x").kind).toBe("index");
    expect(parseManifest(enc({ schemaVersion: 2, manifests: [] }), MEDIA.dockerList, "x").kind).toBe("index");
    const img = {
      schemaVersion: 2,
      config: { mediaType: MEDIA.dockerConfig, digest: dg("c"), size: 5 },
      layers: [{ mediaType: "x", digest: dg("e"), size: 7 }],
    };
    const m = parseManifest(enc(img), MEDIA.dockerManifest, "x");
    expect(m).toEqual({
      kind: "image",
      mediaType: MEDIA.dockerManifest,
      config: { mediaType: MEDIA.dockerConfig, digest: dg("c"), size: 5 },
      layers: [{ mediaType: "x", digest: dg("e"), size: 7 }],
    });
  });

  test("schema 1 is refused with a message that says so", () => {
    expect(() => parseManifest(enc({ schemaVersion: 1, name: "x", fsLayers: [] }), MEDIA.dockerV1Signed, "reg/x:1")).toThrow(
      /schema 1 manifest format, which is deprecated and not supported/,
    );
  });

  test("an artifact is not an image", () => {
    const art = { schemaVersion: 2, config: { mediaType: "application/vnd.cncf.helm.config.v1+json", digest: dg("c"), size: 5 }, layers: [] };
    expect(() => parseManifest(enc(art), MEDIA.ociManifest, "x")).toThrow(/not a container image/);
  });

  test("bad descriptors are refused", () => {
    expect(() => parseManifest(enc({ config: { digest: "sha256:zz", size: 1 }, layers: [] }), "", "x")).toThrow(/bad digest/);
  });
});

describe("platform selection", () => {
  const index = [
    d("1", "linux", "amd64"),
    d("2", "linux", "arm64", "v8"),
    d("3", "linux", "arm", "v6"),
    d("4", "linux", "arm", "v7"),
    d("5", "windows", "amd64"),
    d("6", "unknown", "unknown"),
  ];

  test.each([
    ["linux/amd64", "1"],
    ["linux/arm64", "2"],
    ["linux/arm64/v8", "2"],
    ["linux/arm/v7", "4"],
    ["linux/arm/v6", "3"],
    ["linux/arm/v8", "4"],
    ["windows/amd64", "5"],
  ])("%s picks %s", (p, want) => {
    expect(selectManifest(index, parsePlatform(p), "x").digest).toBe(dg(want));
  });

  test("no match: not-found listing what the image has", () => {
    expect(() => selectManifest(index, parsePlatform("linux/s390x"), "reg/x:1")).toThrow(
      /no manifest for platform linux\/s390x \(it has: linux\/amd64, linux\/arm64\/v8/,
    );
  });

  test("host platform and bad platform strings", () => {
    expect(hostPlatform().os).toBe("linux");
    expect(parsePlatform("linux/x86_64")).toEqual({ os: "linux", architecture: "amd64" });
    expect(() => parsePlatform("amd64")).toThrow(/expected os\/architecture/);
  });
});
