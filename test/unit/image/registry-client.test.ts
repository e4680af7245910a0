import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RegistryClient, digestOf } from "../../../src/image/registry-client.ts";
import type { RuntimeError } from "../../../src/errors.ts";

// A fake distribution registry with a token service, on 127.0.0.1 (plain HTTP: the client is
// told the registry is insecure, so its HTTPS attempt falls back to HTTP).
const blob = new Uint8Array(300_000).map((_, i) => (i * 7) % 251);
const blobDigest = digestOf(blob);
const manifest = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json" }));
const log: Array<{ path: string; auth: string | null; range: string | null }> = [];
let failNext = 0;
let dropMidway = 0;
const server: ReturnType<typeof Bun.serve> = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req): Promise<Response> {
    const u = new URL(req.url);
    log.push({ path: u.pathname + u.search, auth: req.headers.get("authorization"), range: req.headers.get("range") });
    if (u.pathname === "/token") {
      if (req.method === "POST") {
        const form = new URLSearchParams(await req.text());
        return form.get("refresh_token") === "refresh-ok" && form.get("grant_type") === "refresh_token"
          ? Response.json({ access_token: "T-id" })
          : new Response("no", { status: 401 });
      }
      const a = req.headers.get("authorization");
      if (a === null) return Response.json({ token: "T-anon" });
      return a === `Basic ${btoa("user:good")}` ? Response.json({ token: "T-user" }) : new Response("bad", { status: 401 });
    }
    if (u.pathname.startsWith("/v2/basic/")) {
      if (req.headers.get("authorization") !== `Basic ${btoa("user:good")}`)
        return new Response("", { status: 401, headers: { "www-authenticate": 'Basic realm="fake"' } });
      return new Response(manifest, { headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" } });
    }
    if (u.pathname === "/storage/blob") return new Response(blob); // another origin: no auth
    const auth = req.headers.get("authorization") ?? "";
    const needUser = u.pathname.startsWith("/v2/private/");
    const okAuth = needUser ? auth === "Bearer T-user" || auth === "Bearer T-id" || auth === "Bearer preset" : auth.startsWith("Bearer ");
    if (!okAuth)
      return Response.json(
        { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] },
        {
          status: 401,
          headers: {
            "www-authenticate": `Bearer realm="http://127.0.0.1:${server.port}/token",service="fake",scope="repository:${u.pathname.split("/")[2]}:pull"`,
          },
        },
      );
    if (failNext > 0) {
      failNext--;
      return new Response("busy", { status: 503 });
    }
    if (u.pathname.endsWith("/manifests/latest")) return new Response(manifest, { headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" } });
    if (u.pathname.endsWith(`/blobs/${blobDigest}`)) {
      if (u.pathname.startsWith("/v2/redirect/"))
        return new Response(null, { status: 307, headers: { location: `http://localhost:${server.port}/storage/blob` } });
      const range = req.headers.get("range");
      const start = range ? Number(/bytes=(\d+)-/.exec(range)![1]) : 0;
      const body = blob.subarray(start);
      if (dropMidway > 0 && !range) {
        dropMidway--;
        let sent = false;
        const stream = new ReadableStream({
          async pull(ctl) {
            if (!sent) {
              sent = true;
              ctl.enqueue(body.subarray(0, 100_000));
            } else {
              await Bun.sleep(50); // let the first part reach the client
              ctl.error(Object.assign(new Error("(expected) connection dropped by the fake registry"), { stack: "" }));
            }
          },
        });
        return new Response(stream, { headers: { "content-length": String(body.length) } });
      }
      return new Response(body, { status: range ? 206 : 200 });
    }
    if (u.pathname.endsWith("/blobs/sha256:" + "0".repeat(64))) return new Response(blob);
    return Response.json({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }, { status: 404 });
  },
});
const host = `127.0.0.1:${server.port}`;
const tmp = mkdtempSync(join(tmpdir(), "regclient-"));
afterAll(() => {
  server.stop(true);
  rmSync(tmp, { recursive: true, force: true });
});

const client = (extra: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}) => new RegistryClient({ host, insecure: true, retryBaseMs: 5, ...extra });
const caught = async (p: Promise<unknown>): Promise<RuntimeError> => {
  try {
    await p;
  } catch (e) {
    return e as RuntimeError;
  }
  throw new Error("expected a failure");
};

describe("authentication", () => {
  test("anonymous bearer token from the challenge's realm, reused for the next request", async () => {
    log.length = 0;
    const c = client();
    const m = await c.manifest("public/app", "latest");
    expect(m.digest).toBe(digestOf(manifest));
    await c.manifest("public/app", "latest");
    expect(log.map((l) => [l.path.split("?")[0], l.auth])).toEqual([
      ["/v2/public/app/manifests/latest", null],
      ["/token", null],
      ["/v2/public/app/manifests/latest", "Bearer T-anon"],
      ["/v2/public/app/manifests/latest", "Bearer T-anon"],
    ]);
    expect(log[1]!.path).toContain("scope=repository%3Apublic%2Fapp%3Apull");
    expect(log[1]!.path).toContain("service=fake");
  });

  test("username and password are sent to the token service; bad ones give a clear unauthenticated error", async () => {
    expect((await client({ credentials: { username: "user", password: "good" } }).manifest("private/app", "latest")).bytes.length).toBe(manifest.length);
    const e = await caught(client({ credentials: { username: "user", password: "bad" } }).manifest("private/app", "latest"));
    expect(e.kind).toBe("unauthenticated");
    expect(e.message).toMatch(/authentication to registry 127\.0\.0\.1:\d+ failed .*check the username and password/);
    const anon = await caught(client().manifest("private/app", "latest"));
    expect(anon.kind).toBe("unauthenticated");
    expect(anon.message).toMatch(/rejected the credentials|requires authentication/);
  });

  test("a registry token no HTTP header can carry is INVALID_ARGUMENT, not an unreachable registry (found by the CRI fuzzer)", async () => {
    const e = await caught(client({ credentials: { registryToken: "bad\ntoken" } }).manifest("private/app", "latest"));
    expect({ kind: e.kind, says: /invalid credentials for registry/.test(e.message) }).toEqual({ kind: "invalid-argument", says: true });
  });

  test("identity token (OAuth2 refresh token) and registry token", async () => {
    expect((await client({ credentials: { identityToken: "refresh-ok" } }).manifest("private/app", "latest")).digest).toBe(digestOf(manifest));
    log.length = 0;
    expect((await client({ credentials: { registryToken: "preset" } }).manifest("private/app", "latest")).digest).toBe(digestOf(manifest));
    expect(log.map((l) => l.auth)).toEqual(["Bearer preset"]);
  });

  test("basic auth challenge", async () => {
    expect((await client({ credentials: { username: "user", password: "good" } }).manifest("basic/app", "latest")).digest).toBe(digestOf(manifest));
    expect((await caught(client().manifest("basic/app", "latest"))).message).toMatch(/no credentials were found/);
  });
});

describe("transport", () => {
  test("5xx is retried with backoff, then reported as unavailable", async () => {
    failNext = 2;
    expect((await client().manifest("public/app", "latest")).digest).toBe(digestOf(manifest));
    failNext = 10;
    const e = await caught(client({ attempts: 3 }).manifest("public/app", "latest"));
    failNext = 0;
    expect(e.kind).toBe("unavailable");
    expect(e.message).toMatch(/answered 503/);
  });

  test("an unknown tag is not-found; an unreachable registry is unavailable and named", async () => {
    const nf = await caught(client().manifest("public/app", "nope"));
    expect([nf.kind, nf.message]).toEqual(["not-found", expect.stringMatching(/not found \(MANIFEST_UNKNOWN: manifest unknown\)/)]);
    const down = await caught(new RegistryClient({ host: "127.0.0.1:1", insecure: false, attempts: 2, retryBaseMs: 1 }).manifest("x", "latest"));
    expect([down.kind, down.message]).toEqual(["unavailable", "cannot reach registry 127.0.0.1:1: ECONNREFUSED"]);
  });

  test("plain HTTP needs the registry to be marked insecure", async () => {
    const e = await caught(new RegistryClient({ host, insecure: false, attempts: 1 }).manifest("public/app", "latest"));
    expect(e.kind).toBe("unavailable");
    expect(e.message).toMatch(/TLS handshake .* failed .*insecure/);
  });

  test("a manifest fetched by digest must match it", async () => {
    const e = await caught(client().manifest("public/app", "sha256:" + "1".repeat(64)));
    expect(e.kind).toBe("not-found");
  });
});

describe("blobs", () => {
  test("streamed to a file and verified", async () => {
    const f = join(tmp, "b1");
    let n = 0;
    await client().blobToFile("public/app", blobDigest, blob.length, f, (k) => (n += k));
    expect(n).toBe(blob.length);
    expect(digestOf(readFileSync(f))).toBe(blobDigest);
  });

  test("a dropped connection resumes with a Range request", async () => {
    dropMidway = 1;
    log.length = 0;
    const f = join(tmp, "b2");
    await client().blobToFile("public/app", blobDigest, blob.length, f);
    expect(digestOf(readFileSync(f))).toBe(blobDigest);
    expect(log.filter((l) => l.path.includes("/blobs/")).map((l) => l.range)).toEqual([null, null, "bytes=100000-"]);
  });

  test("redirects are followed without sending credentials to another origin", async () => {
    log.length = 0;
    await client().blobToFile("redirect/app", blobDigest, blob.length, join(tmp, "b3"));
    const storage = log.find((l) => l.path === "/storage/blob")!;
    expect(storage.auth).toBeNull();
  });

  test("wrong content or size is refused", async () => {
    const wrong = "sha256:" + "0".repeat(64);
    const e = await caught(client().blobToFile("public/app", wrong, blob.length, join(tmp, "b4")));
    expect(e.message).toMatch(/failed verification: digest mismatch/);
    const s = await caught(client().blobToFile("public/app", blobDigest, 10, join(tmp, "b5")));
    expect(s.message).toMatch(/more than the 10 bytes/);
  });
});
