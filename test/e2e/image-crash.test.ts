// Crash safety and sharing of one store between processes: a pull killed with SIGKILL at any
// phase leaves no visible image and, after the next start, no stray layer or temp file; two
// processes pulling into the same store at once both succeed and the index stays consistent.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ImageService } from "../../src/image/index.ts";
import { startRegistry, type Registry } from "../support/registry.ts";
import { bigImage, busyboxImage, multilayerImage, pushImage, zstdImage, type PushedImage } from "../support/images.ts";
import { waitFor } from "../harness.ts";
import { testImages, type TestImages } from "./image-support.ts";

const CHILD = join(import.meta.dir, "..", "support", "pull-child.ts");
let reg: Registry;
let big: PushedImage;
let busybox: PushedImage;
let multilayer: PushedImage;
let zstd: PushedImage;

beforeAll(async () => {
  reg = await startRegistry();
  [big, busybox, multilayer, zstd] = await Promise.all([
    bigImage().then((i) => pushImage(reg, i)),
    busyboxImage().then((i) => pushImage(reg, i)),
    multilayerImage().then((i) => pushImage(reg, i)),
    zstdImage().then((i) => pushImage(reg, i)),
  ]);
}, 180_000);
afterAll(async () => {
  await reg?.stop();
});

/** Starts a child pulling `refs` into the store of `t`. */
function child(t: TestImages, refs: string[]) {
  const p = Bun.spawn([process.execPath, CHILD, t.root, join(t.dir, "registries.conf"), ...refs], { stdout: "pipe", stderr: "pipe" });
  const lines: Array<Record<string, unknown>> = [];
  const done = (async () => {
    let buf = "";
    for await (const chunk of p.stdout as ReadableStream<Uint8Array>) {
      buf += new TextDecoder().decode(chunk);
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        lines.push(JSON.parse(buf.slice(0, i)));
        buf = buf.slice(i + 1);
      }
    }
  })();
  return { p, lines, done };
}

/** No process still has the store's root in its command line (tar, zstd, flock of the child). */
function noneUsing(root: string): boolean {
  for (const pid of readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(root)) return false;
    } catch {
      // gone
    }
  }
  return true;
}

describe("a pull killed with SIGKILL", () => {
  test.each([
    ["while downloading", (l: Record<string, unknown>) => l.type === "layer" && l.state === "downloading"],
    ["while unpacking", (l: Record<string, unknown>) => l.type === "layer" && l.state === "unpacking"],
    ["after a layer was placed", (l: Record<string, unknown>) => l.type === "layer" && l.state === "done"],
  ])(
    "%s leaves no image and, after the next start, no stray layer",
    async (_phase, when) => {
      await using t = await testImages([reg.host], { maxParallelDownloads: 1 });
      const c = child(t, [big.ref]);
      await waitFor(() => c.lines.some(when), 60_000, "the phase to kill in");
      c.p.kill("SIGKILL");
      await c.p.exited;
      await c.done;
      expect(c.lines.some((l) => l.type === "result")).toBe(false);
      await waitFor(() => noneUsing(t.root), 10_000, "the child's helpers to exit");
      // another process sees no image, before and after its start-up cleanup
      const other = new ImageService({ root: t.root, registriesConfPath: join(t.dir, "registries.conf") });
      expect(other.list()).toEqual([]);
      await other.init();
      expect(other.list()).toEqual([]);
      expect(t.layerDirs()).toEqual([]);
      expect(t.tempEntries()).toEqual([]);
      expect(readdirSync(join(t.root, "blobs", "sha256"))).toEqual([]);
      // and the store still works
      expect((await other.pull(busybox.ref)).id).toBe(busybox.imageId);
    },
    120_000,
  );
});

describe("two processes on one store", () => {
  test("concurrent pulls from two processes and this one all land; the index stays consistent", async () => {
    await using t = await testImages([reg.host]);
    const a = child(t, [busybox.ref, multilayer.ref]);
    const b = child(t, [multilayer.ref, zstd.ref]);
    const mine = t.svc.pull(zstd.ref);
    const [codeA, codeB] = await Promise.all([a.p.exited, b.p.exited, a.done, b.done]);
    expect([codeA, codeB, new TextDecoder().decode(await new Response(a.p.stderr as ReadableStream).arrayBuffer()).slice(-500)]).toEqual([0, 0, ""]);
    expect((await mine).id).toBe(zstd.imageId);
    const fresh = new ImageService({ root: t.root, registriesConfPath: join(t.dir, "registries.conf") });
    await fresh.init();
    const ids = fresh
      .list()
      .map((i) => i.id)
      .sort();
    expect(ids).toEqual([busybox.imageId, multilayer.imageId, zstd.imageId].sort());
    const wanted = new Set(fresh.list().flatMap((i) => i.layers.map((d) => d.slice("sha256:".length))));
    expect(t.layerDirs().sort()).toEqual([...wanted].sort());
    expect(t.tempEntries()).toEqual([]);
    // the in-process service sees what the children wrote
    expect(t.svc.status(multilayer.ref)?.id).toBe(multilayer.imageId);
    // a removal in one process is seen by the other
    await fresh.remove(busybox.ref, () => false);
    expect(t.svc.status(busybox.ref)).toBeUndefined();
  }, 120_000);
});
