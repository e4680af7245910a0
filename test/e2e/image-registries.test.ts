// registries.conf and policy.json against a real registry: mirrors (with the primary
// unreachable), prefix rewriting, insecure registries, blocking, signature policy, the pull
// progress timeout, and a corrupt mirror.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startRegistry, type Registry } from "../support/registry.ts";
import { busyboxImage, pushImage, type PushedImage } from "../support/images.ts";
import { insecureRegistries, rejection, startProxy, testImages } from "./image-support.ts";

let reg: Registry;
let busybox: PushedImage;

beforeAll(async () => {
  reg = await startRegistry();
  const img = await busyboxImage();
  busybox = await pushImage(reg, img);
  await pushImage(reg, img, { name: "mirror-path/bar", tag: "1" }); // CRI-O's example, on our mirror
  await pushImage(reg, img, { name: "team-a/busybox", tag: "latest" });
}, 120_000);
afterAll(async () => {
  await reg?.stop();
});

describe("mirrors and rewriting", () => {
  test("CRI-O's example: example.com/foo/bar:1 comes from the mirror, the primary is never reached", async () => {
    await using t = await testImages([]);
    t.setRegistries(`
[[registry]]
prefix = "example.com/foo"
location = "example.com/foo"
mirror = [{ location = "${reg.host}/mirror-path", insecure = true }]
`);
    const r = await t.svc.pull("example.com/foo/bar:1");
    expect(r.id).toBe(busybox.imageId);
    expect(r.repoTags).toEqual(["example.com/foo/bar:1"]); // named as asked, not after the mirror
    expect(r.repoDigests).toEqual([`example.com/foo/bar@${busybox.manifestDigest}`]);
    expect(t.svc.status("example.com/foo/bar:1")?.id).toBe(r.id);
  });

  test("mirrors in order: an unreachable or failing mirror is skipped", async () => {
    using broken = startProxy(reg, "fail-500");
    using good = startProxy(reg);
    await using t = await testImages([]);
    t.setRegistries(`
[[registry]]
prefix = "127.0.0.1:1"
mirror = [{ location = "127.0.0.1:2", insecure = true }, { location = "${broken.host}", insecure = true }, { location = "${good.host}", insecure = true }]
`);
    const r = await t.svc.pull("127.0.0.1:1/busybox:latest");
    expect(r.id).toBe(busybox.imageId);
    expect(broken.counts.size).toBeGreaterThan(0);
    expect(good.counts.get("/v2/busybox/manifests/latest")).toBe(1);
  });

  test("the registry itself after its mirrors; every failure is reported when all fail", async () => {
    await using t = await testImages([]);
    t.setRegistries(`
[[registry]]
location = "${reg.host}"
insecure = true
mirror = [{ location = "127.0.0.1:2", insecure = true }]
`);
    expect((await t.svc.pull(busybox.ref)).id).toBe(busybox.imageId);
    t.setRegistries(`
[[registry]]
location = "127.0.0.1:1"
insecure = true
mirror = [{ location = "127.0.0.1:2", insecure = true }]
`);
    const e = await rejection(t.svc.pull("127.0.0.1:1/busybox:latest"));
    expect(e.kind).toBe("unavailable");
    expect(e.message).toMatch(
      /failed from every source: 127\.0\.0\.1:2\/busybox:latest: cannot reach registry 127\.0\.0\.1:2.*127\.0\.0\.1:1\/busybox:latest: cannot reach registry 127\.0\.0\.1:1/,
    );
  });

  test("a prefix rewrite (location) sends the pull elsewhere", async () => {
    await using t = await testImages([]);
    t.setRegistries(`
[[registry]]
prefix = "registry.internal.example/platform"
location = "${reg.host}/team-a"
insecure = true
`);
    const r = await t.svc.pull("registry.internal.example/platform/busybox");
    expect(r.id).toBe(busybox.imageId);
    expect(r.repoTags).toEqual(["registry.internal.example/platform/busybox:latest"]);
  });

  test("a corrupt mirror fails verification and the registry is used instead", async () => {
    using corrupt = startProxy(reg, "corrupt-blobs");
    await using t = await testImages([]);
    t.setRegistries(`
[[registry]]
location = "${reg.host}"
insecure = true
mirror = [{ location = "${corrupt.host}", insecure = true }]
`);
    const events: string[] = [];
    const r = await t.svc.pull(busybox.ref, { onProgress: (p) => p.type === "resolving" && events.push(p.source) });
    expect(r.id).toBe(busybox.imageId);
    expect(events).toEqual([`${corrupt.host}/busybox:latest`, busybox.ref]);
    t.setRegistries(`[[registry]]\nlocation = "${corrupt.host}"\ninsecure = true\n`);
    await t.svc.remove(r.id, () => false);
    const e = await rejection(t.svc.pull(`${corrupt.host}/busybox:latest`));
    expect(e.message).toMatch(/failed verification: digest mismatch/);
    expect(t.layerDirs()).toEqual([]);
    expect(t.tempEntries()).toEqual([]);
  });
});

describe("access rules", () => {
  test("a plain-HTTP registry must be marked insecure", async () => {
    await using t = await testImages([]);
    const e = await rejection(t.svc.pull(busybox.ref));
    expect(e.kind).toBe("unavailable");
    expect(e.message).toMatch(/TLS handshake with registry 127\.0\.0\.1:\d+ failed .*marked insecure/);
    t.setRegistries(insecureRegistries([reg.host]));
    expect((await t.svc.pull(busybox.ref)).id).toBe(busybox.imageId);
  });

  test("a blocked registry is refused and says so", async () => {
    await using t = await testImages([]);
    t.setRegistries(`[[registry]]\nlocation = "${reg.host}"\ninsecure = true\nblocked = true\n`);
    const e = await rejection(t.svc.pull(busybox.ref));
    expect([e.kind, e.message]).toEqual(["permission-denied", expect.stringMatching(/is blocked in registries\.conf/)]);
  });

  test("policy.json: reject and unverifiable signature requirements refuse, insecureAcceptAnything allows; a missing file refuses", async () => {
    await using t = await testImages([reg.host]);
    const policy = join(t.dir, "policy.json");
    const write = (docker: object) => writeFileSync(policy, JSON.stringify({ default: [{ type: "insecureAcceptAnything" }], transports: { docker } }));
    write({ [`${reg.host}/busybox`]: [{ type: "reject" }] });
    t.svc.reload({ policyPath: policy });
    const rej = await rejection(t.svc.pull(busybox.ref));
    expect([rej.kind, rej.message]).toEqual([
      "permission-denied",
      expect.stringMatching(/rejected by the signature policy .* \(scope 127\.0\.0\.1:\d+\/busybox: reject\)/),
    ]);
    write({ [reg.host]: [{ type: "signedBy", keyType: "GPGKeys", keyPath: "/nonexistent.gpg" }] });
    t.svc.reload();
    const sig = await rejection(t.svc.pull(busybox.ref));
    expect([sig.kind, sig.message]).toEqual([
      "failed-precondition",
      expect.stringMatching(
        /is refused by the signature policy .* \(scope 127\.0\.0\.1:\d+: signedBy\): its signatures cannot be checked: key file \/nonexistent\.gpg cannot be read/,
      ),
    ]);
    write({ [`${reg.host}/busybox:latest`]: [{ type: "insecureAcceptAnything" }], [reg.host]: [{ type: "reject" }] });
    t.svc.reload();
    expect((await t.svc.pull(busybox.ref)).id).toBe(busybox.imageId);
    t.svc.reload({ policyPath: join(t.dir, "missing-policy.json") });
    expect((await rejection(t.svc.pull(busybox.ref))).message).toMatch(/signature policy file .* does not exist/);
  });

  test("a malformed registries.conf on reload keeps the previous configuration", async () => {
    await using t = await testImages([reg.host]);
    expect(() => t.setRegistries("[[registry]]\nlocation = 5\n")).toThrow(/location must be a string/);
    expect((await t.svc.pull(busybox.ref)).id).toBe(busybox.imageId);
  });
});

describe("progress timeout", () => {
  test("a pull that makes no progress for pull_progress_timeout is cancelled and leaves nothing", async () => {
    using stall = startProxy(reg, "stall-blobs");
    await using t = await testImages([stall.host], { pullProgressTimeoutMs: 800 });
    const start = Date.now();
    const e = await rejection(t.svc.pull(`${stall.host}/busybox:latest`));
    expect([e.kind, e.message]).toEqual([
      "deadline-exceeded",
      expect.stringMatching(/made no progress for 0\.8 s \(pull_progress_timeout\) and was cancelled/),
    ]);
    expect(Date.now() - start).toBeLessThan(5000);
    expect(t.svc.list()).toEqual([]);
    expect(t.tempEntries()).toEqual([]);
  });

  test("a caller's cancellation stops the pull", async () => {
    using stall = startProxy(reg, "stall-blobs");
    await using t = await testImages([stall.host]);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const e = await rejection(t.svc.pull(`${stall.host}/busybox:latest`, { signal: ac.signal }));
    expect(e.kind).toBe("canceled");
  });
});
