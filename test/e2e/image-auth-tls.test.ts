// A TLS registry whose CA is only in a certs.d directory, behind htpasswd basic auth: the
// pull's own credentials (username/password, base64 auth), auth files, and the errors a user
// sees for missing or wrong credentials and an untrusted certificate.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startRegistry, type Registry } from "../support/registry.ts";
import { busyboxImage, pushImage, type PushedImage } from "../support/images.ts";
import { rejection, testImages, type TestImages } from "./image-support.ts";

const user = "puller";
const password = "s3cret-pass";
let reg: Registry;
let busybox: PushedImage;

beforeAll(async () => {
  reg = await startRegistry({ tls: true, htpasswd: { user, password } });
  busybox = await pushImage(reg, await busyboxImage());
}, 120_000);
afterAll(async () => {
  await reg?.stop();
});

/** Puts the registry's CA where containers-certs.d(5) says: <certsDir>/<host:port>/ca.crt. */
function trustCa(t: TestImages): void {
  mkdirSync(join(t.dir, "certs.d", reg.host), { recursive: true });
  copyFileSync(reg.caFile!, join(t.dir, "certs.d", reg.host, "ca.crt"));
}

describe("TLS with a certs.d CA and basic auth", () => {
  test("credentials from the pull (username/password, then base64 auth)", async () => {
    await using t = await testImages([]);
    trustCa(t);
    const r = await t.svc.pull(busybox.ref, { auth: { username: user, password } });
    expect(r.id).toBe(busybox.imageId);
    await t.svc.remove(r.id, () => false);
    const b64 = Buffer.from(`${user}:${password}`).toString("base64");
    expect((await t.svc.pull(busybox.ref, { auth: { auth: b64, serverAddress: reg.host } })).id).toBe(busybox.imageId);
  });

  test("no credentials and wrong credentials are unauthenticated, and say so", async () => {
    await using t = await testImages([]);
    trustCa(t);
    const none = await rejection(t.svc.pull(busybox.ref));
    expect([none.kind, none.message]).toEqual(["unauthenticated", expect.stringMatching(/requires authentication .* no credentials were found/)]);
    const bad = await rejection(t.svc.pull(busybox.ref, { auth: { username: user, password: "wrong" } }));
    expect([bad.kind, bad.message]).toEqual([
      "unauthenticated",
      expect.stringMatching(/authentication to registry 127\.0\.0\.1:\d+ failed .*check the username and password/),
    ]);
    expect(t.svc.list()).toEqual([]);
  });

  test("credentials from global_auth_file, then the other auth files; the pull's own win", async () => {
    await using t = await testImages([]);
    trustCa(t);
    const good = join(t.dir, "global-auth.json");
    const other = join(t.dir, "run-auth.json");
    writeFileSync(good, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${user}:${password}`).toString("base64") } } }));
    writeFileSync(other, JSON.stringify({ auths: { [`${reg.host}/busybox`]: { auth: Buffer.from(`${user}:nope`).toString("base64") } } }));
    t.svc.reload({ globalAuthFile: good, authFiles: [other] });
    expect((await t.svc.pull(busybox.ref)).id).toBe(busybox.imageId);
    t.svc.reload({ globalAuthFile: join(t.dir, "missing.json"), authFiles: [other] });
    expect((await rejection(t.svc.pull(busybox.ref))).kind).toBe("unauthenticated");
    expect((await t.svc.pull(busybox.ref, { auth: { username: user, password } })).id).toBe(busybox.imageId);
    // a per-pull auth file (pause_image_auth_file) comes before the configured ones
    await t.svc.remove(busybox.imageId, () => false);
    expect((await t.svc.pull(busybox.ref, { authFile: good })).id).toBe(busybox.imageId);
  });

  test("an untrusted certificate is refused with a hint; insecure = true skips verification", async () => {
    await using t = await testImages([]);
    const e = await rejection(t.svc.pull(busybox.ref, { auth: { username: user, password } }));
    expect([e.kind, e.message]).toEqual([
      "unavailable",
      expect.stringMatching(/cannot verify the TLS certificate of registry 127\.0\.0\.1:\d+ .*certs\.d\/127\.0\.0\.1:\d+\/ca\.crt/),
    ]);
    t.setRegistries(`[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
    expect((await t.svc.pull(busybox.ref, { auth: { username: user, password } })).id).toBe(busybox.imageId);
  });
});
