// `crio pull` (the compiled binary) beside a running daemon on the same store: both pulling at
// once, the daemon seeing what the CLI pulled, plain and terminal output, --platform,
// --auth-file, one-line failures, and cancellation with SIGINT.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createCipheriv, createHash } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CRIO, waitFor } from "../harness.ts";
import { startRegistry, type Registry } from "../support/registry.ts";
import { busyboxImage, hostileImage, multilayerImage, multiplatformImage, pushImage, zstdImage, type PushedImage } from "../support/images.ts";
import { crioPull, spawnPull, startImageDaemon, startThrottleProxy, storeState, type ImageDaemon, type ThrottleProxy } from "./image-daemon-support.ts";

const user = "puller";
const password = "s3cret-pass";
let reg: Registry;
let authReg: Registry;
let proxy: ThrottleProxy;
let env: ImageDaemon;
let busybox: PushedImage;
let multilayer: PushedImage;
let zstd: PushedImage;
let multiplatform: PushedImage;
let ttyImage: PushedImage;
let sigintImage: PushedImage;
let bothImage: PushedImage;
let besideImage: PushedImage;
const tmp = mkdtempSync(join(tmpdir(), "crio-pull-cli-"));

beforeAll(async () => {
  [reg, authReg] = await Promise.all([startRegistry(), startRegistry({ htpasswd: { user, password } })]);
  await Promise.all([
    (async () => (busybox = await pushImage(reg, await busyboxImage())))(),
    (async () => (multilayer = await pushImage(reg, await multilayerImage())))(),
    (async () => (zstd = await pushImage(reg, await zstdImage())))(),
    (async () => (multiplatform = await pushImage(reg, await multiplatformImage())))(),
  ]);
  // the busybox-based images share one layer (one diff_id): these have a layer of their own
  ttyImage = await pushImage(reg, await freshImage("tty", 1024));
  bothImage = await pushImage(reg, await freshImage("both", 1024));
  besideImage = await pushImage(reg, await freshImage("beside", 64, false));
  sigintImage = await pushImage(reg, await freshImage("sigint", 1024));
  await pushImage(authReg, await busyboxImage());
  proxy = startThrottleProxy(reg);
  env = await startImageDaemon({
    registries: [reg.host, authReg.host, proxy.host].map((h) => `[[registry]]\nlocation = "${h}"\ninsecure = true\n`).join("\n"),
  });
}, 120_000);
afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
  proxy?.stop();
  await Promise.all([reg?.stop(), authReg?.stop()]);
  rmSync(tmp, { recursive: true, force: true });
});

const cri = () => env.d.cri;
const through = (img: PushedImage) => img.ref.replace(reg.host, proxy.host);

describe("crio pull beside a running daemon", () => {
  test("a crio pull starting while the daemon is mid-pull leaves the daemon's placed layers alone", async () => {
    proxy.rate = 256 * 1024; // multilayer: two tiny layers land at once, the ~1 MB one takes ~4 s
    const daemonPull = cri().pullImage({ image: { image: through(multilayer) } });
    try {
      await waitFor(() => storeState(env.store).strayLayers.length >= 2, 20_000, "the daemon to place two layers");
      const placed = storeState(env.store).strayLayers;
      // the CLI's start-up cleanup runs now: layers held by a live pull of another process stay
      const r = await crioPull(env.d, [besideImage.ref]);
      expect([r.code, r.stdout]).toEqual([0, `${besideImage.imageId}\n`]);
      expect(placed.filter((l) => existsSync(join(env.store, "layers", l)))).toEqual(placed);
    } finally {
      proxy.rate = 0;
    }
    expect((await daemonPull).imageRef).toBe(multilayer.imageId);
    expect(storeState(env.store)).toEqual({ images: [multilayer.imageId, besideImage.imageId].sort(), strayLayers: [], temps: [] });
  }, 60_000);

  test("both pull the same image at once; the daemon sees what the CLI pulled; the store stays consistent", async () => {
    proxy.rate = 512 * 1024; // ~2 s for the fresh layer: the two pulls overlap
    const ref = through(bothImage);
    const [cli, rpc] = await Promise.all([crioPull(env.d, [ref]), cri().pullImage({ image: { image: ref } })]);
    proxy.rate = 0;
    expect([cli.code, cli.stdout, rpc.imageRef]).toEqual([0, `${bothImage.imageId}\n`, bothImage.imageId]);
    const alone = await crioPull(env.d, [zstd.ref]);
    expect([alone.code, alone.stdout]).toEqual([0, `${zstd.imageId}\n`]);
    const st = await cri().imageStatus({ image: { image: zstd.ref } });
    expect([st.image?.id, st.image?.repoTags]).toEqual([zstd.imageId, [zstd.ref]]);
    expect((await cri().listImages({})).images.map((i) => i.id)).toEqual(expect.arrayContaining([bothImage.imageId, zstd.imageId]));
    expect(storeState(env.store)).toMatchObject({ strayLayers: [], temps: [] });
    // a removal by the daemon, then the CLI pulls the image again
    await cri().removeImage({ image: { image: zstd.ref } });
    expect((await cri().imageStatus({ image: { image: zstd.ref } })).image).toBeUndefined();
    expect((await crioPull(env.d, [zstd.ref])).code).toBe(0);
    expect((await cri().imageStatus({ image: { image: zstd.ref } })).image?.id).toBe(zstd.imageId);
  }, 60_000);

  test("plain output: a line per step on stderr, only the image id on stdout", async () => {
    const r = await crioPull(env.d, [busybox.ref]);
    expect([r.code, r.stdout]).toEqual([0, `${busybox.imageId}\n`]);
    expect(r.stderr).toContain(`Trying to pull ${busybox.ref}...\n`);
    expect(r.stderr).toMatch(/^Manifest sha256:[0-9a-f]{64}: 1 layer, [\d.]+ [kM]B$/m);
    expect(r.stderr).toMatch(/^Layer [0-9a-f]{12}: (already exists|done)$/m);
    expect(r.stderr).toContain(`Stored ${busybox.ref} as ${busybox.imageId}\n`);
    expect(r.stderr).not.toContain("\x1b[");
  });

  test("on a terminal: one bar per layer, redrawn in place", async () => {
    proxy.rate = 1024 * 1024; // ~1 s for the fresh layer: several redraws
    const r = await crioPull(env.d, [through(ttyImage)], { tty: true });
    proxy.rate = 0;
    const out = r.stdout; // script(1) merges stdout and stderr
    expect(r.code).toBe(0);
    expect(out).toMatch(
      /\x1b\[2A\r\x1b\[2K[0-9a-f]{12} exists +\[=+\] [\d.]+ MB\r\n\r\x1b\[2K[0-9a-f]{12} downloading +\[=*>? *\] [\d.]+ [kM]?B \/ [\d.]+ [kM]B/,
    );
    expect(out).toMatch(/[0-9a-f]{12} done +\[=+\]/);
    expect(out.trim().split(/\r?\n/).at(-1)).toBe(ttyImage.imageId);
  }, 30_000);

  test("--platform chooses the platform of a multi-platform image", async () => {
    const arm = multiplatform.platforms!.find((p) => p.platform.architecture === "arm64")!;
    const r = await crioPull(env.d, ["--platform", "linux/arm64", multiplatform.ref]);
    expect([r.code, r.stdout]).toEqual([0, `${arm.configDigest}\n`]);
    const bad = await crioPull(env.d, ["--platform", "linux/s390x", multiplatform.ref]);
    expect([bad.code, bad.stdout, bad.stderr.trim().split("\n").at(-1)]).toEqual([
      1,
      "",
      expect.stringMatching(/^crio pull: .*no manifest for platform linux\/s390x/),
    ]);
  });

  test("--auth-file gives the credentials; without them the one-line error says authentication is required", async () => {
    const ref = `${authReg.host}/busybox:latest`;
    const none = await crioPull(env.d, [ref]);
    expect([none.code, none.stdout, lastLine(none.stderr)]).toEqual([1, "", expect.stringMatching(/^crio pull: .*requires authentication/)]);
    const file = join(tmp, "auth.json");
    writeFileSync(file, JSON.stringify({ auths: { [authReg.host]: { auth: Buffer.from(`${user}:${password}`).toString("base64") } } }));
    const ok = await crioPull(env.d, ["--auth-file", file, ref]);
    expect([ok.code, ok.stdout]).toEqual([0, `${busybox.imageId}\n`]);
  });

  test("failures are one line and a non-zero exit", async () => {
    const tag = await crioPull(env.d, [`${reg.host}/busybox:no-such-tag`]);
    expect([tag.code, tag.stdout]).toEqual([1, ""]);
    expect(tag.stderr.split("\n").filter((l) => l.startsWith("crio pull:"))).toEqual([
      expect.stringMatching(/^crio pull: pulling image ".*busybox:no-such-tag": manifest .* not found/),
    ]);
    expect(tag.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const bad = await crioPull(env.d, ["Not A Reference"]);
    expect([bad.code, lastLine(bad.stderr)]).toEqual([1, expect.stringMatching(/^crio pull: invalid image reference/)]);
    const conf = Bun.spawn([CRIO, "pull", "--config", join(tmp, "missing.conf"), busybox.ref], { stdout: "pipe", stderr: "pipe" });
    const [code, err] = await Promise.all([conf.exited, new Response(conf.stderr).text()]);
    expect([code, lastLine(err)]).toEqual([1, expect.stringMatching(/^crio pull: invalid configuration: .*missing\.conf/)]);
    const usage = Bun.spawn([CRIO, "pull"], { stdout: "pipe", stderr: "pipe" });
    expect(await usage.exited).not.toBe(0);
  });

  test("SIGINT cancels the pull: exit 130, one line, nothing left behind", async () => {
    proxy.rate = 64 * 1024;
    const run = spawnPull(env.d, [through(sigintImage)]);
    try {
      // a download in progress: the CLI's temp blob exists
      await waitFor(() => storeState(env.store).temps.some((t) => t.startsWith(`${run.proc.pid}.`)), 20_000, "the CLI's download to start");
      run.proc.kill("SIGINT");
      const r = await run.done;
      expect([r.code, r.stdout, lastLine(r.stderr)]).toEqual([130, "", expect.stringMatching(/^crio pull: .*interrupted by SIGINT/)]);
    } finally {
      proxy.rate = 0;
      run.proc.kill("SIGKILL");
    }
    expect(storeState(env.store)).toMatchObject({ strayLayers: [], temps: [] });
    expect((await cri().imageStatus({ image: { image: through(sigintImage) } })).image).toBeUndefined();
  }, 60_000);
});

/** (busybox plus) one layer of `kib` KiB of incompressible bytes, unique to `name`. */
function freshImage(name: string, kib: number, base = true) {
  const key = createHash("sha256").update(name).digest().subarray(0, 16);
  const data = createCipheriv("aes-128-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(kib * 1024));
  return hostileImage(
    [
      { name: "data/", type: "dir" },
      { name: "data/blob.bin", data },
    ],
    { name, tag: "latest", base },
  );
}

function lastLine(s: string): string {
  return s.trim().split("\n").at(-1) ?? "";
}
