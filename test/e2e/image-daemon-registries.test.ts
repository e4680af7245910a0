// registries.conf, certs.d and credentials on the compiled daemon, over its socket: mirrors with
// the primary unreachable, CRI-O's mirror example, prefix rewriting, insecure and blocked
// registries, SIGHUP re-reading registries.conf, and a TLS registry whose CA is only in the
// daemon's certs.d, behind htpasswd auth passed in the CRI AuthConfig.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status as grpc } from "@grpc/grpc-js";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { startRegistry, type Registry } from "../support/registry.ts";
import { busyboxImage, pushImage, type PushedImage } from "../support/images.ts";
import { grpcError, startImageDaemon, startThrottleProxy, type ImageDaemon, type ThrottleProxy } from "./image-daemon-support.ts";

const user = "puller";
const password = "s3cret-pass";
let reg: Registry;
let tls: Registry;
let busybox: PushedImage;
let env: ImageDaemon;

beforeAll(async () => {
  [reg, tls] = await Promise.all([startRegistry(), startRegistry({ tls: true, htpasswd: { user, password } })]);
  const img = await busyboxImage();
  busybox = await pushImage(reg, img);
  await Promise.all([
    pushImage(reg, img, { name: "mirror-path/bar", tag: "1" }), // CRI-O's example, on our mirror
    pushImage(reg, img, { name: "team-a/busybox", tag: "latest" }),
    pushImage(reg, img, { tag: "second" }),
    pushImage(tls, img),
  ]);
  env = await startImageDaemon({ registries: "" });
}, 120_000);
afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
  await Promise.all([reg?.stop(), tls?.stop()]);
});

const cri = () => env.d.cri;
const pull = (image: string, auth?: { username?: string; password?: string; auth?: string; serverAddress?: string }) =>
  cri().pullImage({ image: { image }, auth });
const tagsOf = async (image: string) => (await cri().imageStatus({ image: { image } })).image?.repoTags;

describe("mirrors and rewriting", () => {
  test("a mirror serves the image when the primary is unreachable; the image keeps the name asked for", async () => {
    await env.setRegistries(`
[[registry]]
location = "127.0.0.1:1"

[[registry.mirror]]
location = "${reg.host}"
insecure = true
`);
    expect((await pull("127.0.0.1:1/busybox:latest")).imageRef).toBe(busybox.imageId);
    expect(await tagsOf("127.0.0.1:1/busybox:latest")).toContain("127.0.0.1:1/busybox:latest");
    // without the mirror the same name fails, naming the registry it could not reach
    await env.setRegistries(`[[registry]]\nlocation = "127.0.0.1:1"\ninsecure = true\n`);
    const e = await grpcError(pull("127.0.0.1:1/busybox:other"));
    expect([e.code, e.details]).toEqual([grpc.UNAVAILABLE, expect.stringMatching(/cannot reach registry 127\.0\.0\.1:1/)]);
  });

  test('CRI-O\'s example: mirror = [{ location = "HOST/path" }] under a prefix', async () => {
    await env.setRegistries(`
[[registry]]
prefix = "example.com/foo"
location = "example.com/foo"
mirror = [{ location = "${reg.host}/mirror-path", insecure = true }]
`);
    expect((await pull("example.com/foo/bar:1")).imageRef).toBe(busybox.imageId);
    const st = (await cri().imageStatus({ image: { image: "example.com/foo/bar:1" } })).image!;
    expect(st.repoTags).toContain("example.com/foo/bar:1");
    expect(st.repoDigests).toContain(`example.com/foo/bar@${busybox.manifestDigest}`);
  });

  test("a prefix rewrite (prefix + location) sends the pull elsewhere", async () => {
    await env.setRegistries(`
[[registry]]
prefix = "registry.internal.example/platform"
location = "${reg.host}/team-a"
insecure = true
`);
    expect((await pull("registry.internal.example/platform/busybox")).imageRef).toBe(busybox.imageId);
    expect(await tagsOf("registry.internal.example/platform/busybox:latest")).toContain("registry.internal.example/platform/busybox:latest");
  });

  test("SIGHUP re-reads registries.conf: after a mirror change the pull goes to the new mirror", async () => {
    using a = startThrottleProxy(reg);
    using b = startThrottleProxy(reg);
    const mirrored = (m: ThrottleProxy) =>
      `[[registry]]\nprefix = "mirrored.example"\nlocation = "mirrored.example"\nmirror = [{ location = "${m.host}", insecure = true }]\n`;
    await env.setRegistries(mirrored(a));
    expect((await pull("mirrored.example/busybox:latest")).imageRef).toBe(busybox.imageId);
    expect([a.counts.get("/v2/busybox/manifests/latest"), b.counts.size]).toEqual([1, 0]);
    await env.setRegistries(mirrored(b));
    expect((await pull("mirrored.example/busybox:second")).imageRef).toBe(busybox.imageId);
    expect([a.counts.get("/v2/busybox/manifests/second"), b.counts.get("/v2/busybox/manifests/second")]).toEqual([undefined, 1]);
    expect(env.d.logs()).toMatch(/reloading configuration/);
  });
});

describe("access rules", () => {
  test("a plain-HTTP registry works only when marked insecure", async () => {
    await env.setRegistries("");
    const e = await grpcError(pull(busybox.ref));
    expect([e.code, e.details]).toEqual([grpc.UNAVAILABLE, expect.stringMatching(/TLS handshake with registry 127\.0\.0\.1:\d+ failed .*marked insecure/)]);
    await env.setRegistries(`[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
    expect((await pull(busybox.ref)).imageRef).toBe(busybox.imageId);
  });

  test("a blocked registry is refused and says so", async () => {
    await env.setRegistries(`[[registry]]\nlocation = "${reg.host}"\ninsecure = true\nblocked = true\n`);
    const e = await grpcError(pull(`${reg.host}/busybox:second`));
    expect([e.code, e.details]).toEqual([grpc.PERMISSION_DENIED, expect.stringMatching(/is blocked in registries\.conf/)]);
  });
});

describe("TLS with the CA in certs.d and htpasswd auth", () => {
  test("without the CA the certificate is refused, with a hint at certs.d", async () => {
    await env.setRegistries("");
    const e = await grpcError(pull(`${tls.host}/busybox:latest`, { username: user, password }));
    expect([e.code, e.details]).toEqual([grpc.UNAVAILABLE, expect.stringMatching(/cannot verify the TLS certificate of registry 127\.0\.0\.1:\d+ .*certs\.d/)]);
  });

  test("credentials from the CRI AuthConfig; missing or wrong ones are UNAUTHENTICATED and say so", async () => {
    mkdirSync(join(env.d.dir, "certs.d", tls.host), { recursive: true });
    copyFileSync(tls.caFile!, join(env.d.dir, "certs.d", tls.host, "ca.crt"));
    const ref = `${tls.host}/busybox:latest`;
    const none = await grpcError(pull(ref));
    expect([none.code, none.details]).toEqual([grpc.UNAUTHENTICATED, expect.stringMatching(/requires authentication .*no credentials were found/)]);
    const bad = await grpcError(pull(ref, { username: user, password: "wrong" }));
    expect([bad.code, bad.details]).toEqual([
      grpc.UNAUTHENTICATED,
      expect.stringMatching(/authentication to registry 127\.0\.0\.1:\d+ failed .*check the username and password/),
    ]);
    expect((await cri().imageStatus({ image: { image: ref } })).image).toBeUndefined();
    expect((await pull(ref, { username: user, password })).imageRef).toBe(busybox.imageId);
    await cri().removeImage({ image: { image: ref } });
    const b64 = Buffer.from(`${user}:${password}`).toString("base64");
    expect((await pull(ref, { auth: b64, serverAddress: tls.host })).imageRef).toBe(busybox.imageId);
  });
});
