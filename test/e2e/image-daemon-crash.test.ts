// kill -9 of the compiled daemon in the middle of a PullImage (the registry slowed down by a
// throttling proxy), after some layers were placed and while another downloads; then a restart
// on the same directories: no image is visible, no stray layer or temp file is left, and a new
// pull works.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removeDaemonDirs, startDaemon, waitFor, type TestDaemon } from "../harness.ts";
import { startRegistry, type Registry } from "../support/registry.ts";
import { multilayerImage, pushImage, type PushedImage } from "../support/images.ts";
import { startThrottleProxy, storeState, type ThrottleProxy } from "./image-daemon-support.ts";

let reg: Registry;
let proxy: ThrottleProxy;
let multilayer: PushedImage;

beforeAll(async () => {
  reg = await startRegistry();
  multilayer = await pushImage(reg, await multilayerImage());
  proxy = startThrottleProxy(reg);
}, 60_000);
afterAll(async () => {
  proxy?.stop();
  await reg?.stop();
});

test("a daemon killed with SIGKILL mid-pull leaves, after its restart, no image, no stray layer, and a store that works", async () => {
  const dir = mkdtempSync(join(process.env.CRIO_TEST_TMP ?? tmpdir(), "crio-img-crash-"));
  writeFileSync(join(dir, "registries.conf"), [reg.host, proxy.host].map((h) => `[[registry]]\nlocation = "${h}"\ninsecure = true\n`).join("\n"));
  let d: TestDaemon | undefined;
  let runroot = "/nonexistent";
  try {
    d = await startDaemon({ dir });
    runroot = d.runroot;
    const store = join(d.root, "images");
    const pid = d.proc.pid;
    // multilayer: two tiny layers land at once; the ~1 MB busybox layer takes ~8 s at 128 KiB/s
    proxy.rate = 128 * 1024;
    const pulling = d.cri.pullImage({ image: { image: multilayer.ref.replace(reg.host, proxy.host) } }).then(
      () => "finished",
      () => "failed",
    );
    await waitFor(
      () => {
        const s = storeState(store);
        return s.strayLayers.length >= 2 && s.temps.some((t) => t.startsWith(`${pid}.blob.`));
      },
      30_000,
      "two layers placed while the third downloads",
    );
    d.proc.kill("SIGKILL");
    await d.proc.exited;
    expect(await pulling).toBe("failed");
    proxy.rate = 0;
    await d[Symbol.asyncDispose]();
    // the kill took the daemon's helpers (flock, tar) with it
    await waitFor(() => noneUsing(store), 10_000, "the daemon's helpers to exit");
    expect(storeState(store).images).toEqual([]); // nothing half-made is visible, even before a restart

    d = await startDaemon({ dir });
    expect((await d.cri.listImages({})).images).toEqual([]);
    expect((await d.cri.imageStatus({ image: { image: multilayer.ref } })).image).toBeUndefined();
    expect(storeState(store)).toEqual({ images: [], strayLayers: [], temps: [] });
    expect(readdirSync(join(store, "layers"))).toEqual([]);
    expect((await d.cri.pullImage({ image: { image: multilayer.ref } })).imageRef).toBe(multilayer.imageId);
    expect(storeState(store)).toEqual({ images: [multilayer.imageId], strayLayers: [], temps: [] });
  } finally {
    proxy.rate = 0;
    await d?.[Symbol.asyncDispose]();
    removeDaemonDirs(dir, runroot);
  }
}, 120_000);

/** No process has the store's path in its command line (flock, tar, zstd of the killed daemon). */
function noneUsing(store: string): boolean {
  for (const p of readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      if (readFileSync(`/proc/${p}/cmdline`, "utf8").includes(store)) return false;
    } catch {
      // gone
    }
  }
  return true;
}
