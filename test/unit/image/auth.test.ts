import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentialsFromFiles, credentialsFromPullAuth, parseWwwAuthenticate } from "../../../src/image/auth.ts";
import { normalize, parseReference } from "../../../src/image/reference.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("WWW-Authenticate", () => {
  test("Docker Hub's bearer challenge", () => {
    expect(parseWwwAuthenticate(`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`)).toEqual([
      { scheme: "bearer", params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/busybox:pull" } },
    ]);
  });

  test("basic, unquoted values, escapes and several challenges", () => {
    expect(parseWwwAuthenticate(`Basic realm="my \\"registry\\"", Bearer realm=https://t.example/token, error="invalid_token"`)).toEqual([
      { scheme: "basic", params: { realm: 'my "registry"' } },
      { scheme: "bearer", params: { realm: "https://t.example/token", error: "invalid_token" } },
    ]);
    expect(parseWwwAuthenticate("")).toEqual([]);
    expect(parseWwwAuthenticate("Negotiate")).toEqual([{ scheme: "negotiate", params: {} }]);
  });
});

describe("credentials", () => {
  test("from the CRI AuthConfig: registry token, identity token, username/password, base64 auth", () => {
    expect(credentialsFromPullAuth(undefined)).toBeUndefined();
    expect(credentialsFromPullAuth({ username: "", password: "", auth: "" })).toBeUndefined();
    expect(credentialsFromPullAuth({ registryToken: "rt", username: "u" })).toEqual({ registryToken: "rt" });
    expect(credentialsFromPullAuth({ identityToken: "it", username: "u" })).toEqual({ identityToken: "it", username: "u" });
    expect(credentialsFromPullAuth({ username: "u", password: "p:w" })).toEqual({ username: "u", password: "p:w" });
    expect(credentialsFromPullAuth({ auth: b64("user:pa:ss") })).toEqual({ username: "user", password: "pa:ss" });
    expect(() => credentialsFromPullAuth({ auth: b64("nocolon") })).toThrow(/username:password/);
  });

  test("from auth files: first file with a match wins, most specific key first, legacy keys understood", () => {
    const dir = mkdtempSync(join(tmpdir(), "auth-"));
    try {
      const a = join(dir, "a.json");
      const b = join(dir, "b.json");
      writeFileSync(a, JSON.stringify({ auths: { "quay.io/team": { auth: b64("team:1") }, "quay.io": { auth: b64("any:2") } } }));
      writeFileSync(
        b,
        JSON.stringify({
          auths: { "https://index.docker.io/v1/": { auth: b64("hub:3") }, "reg.local:5000": { identitytoken: "tok" }, "quay.io": { auth: b64("other:4") } },
        }),
      );
      const files = [join(dir, "missing.json"), a, b];
      const r = (s: string) => normalize(parseReference(s));
      expect(credentialsFromFiles(files, r("quay.io/team/app"))).toEqual({ username: "team", password: "1" });
      expect(credentialsFromFiles(files, r("quay.io/else/app"))).toEqual({ username: "any", password: "2" });
      expect(credentialsFromFiles(files, r("busybox"))).toEqual({ username: "hub", password: "3" });
      expect(credentialsFromFiles(files, r("reg.local:5000/x"))).toEqual({ identityToken: "tok", username: undefined });
      expect(credentialsFromFiles(files, r("nowhere.io/x"))).toBeUndefined();
      writeFileSync(a, "{not json");
      expect(() => credentialsFromFiles(files, r("quay.io/x"))).toThrow(/auth file .*a\.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
