// The hostile layer corpus, pulled for real: each layer tries to write outside its directory.
// Every attempt is refused (or made harmless) and nothing appears outside the store.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startRegistry, type Registry } from "../support/registry.ts";
import { HOSTILE_CASES, hostileImage, pushImage } from "../support/images.ts";
import type { TarEntry } from "../support/tar.ts";
import { unpackLayer } from "../../src/storage/unpack.ts";
import { rejection, testImages } from "./image-support.ts";

let reg: Registry;
beforeAll(async () => {
  reg = await startRegistry();
}, 60_000);
afterAll(async () => {
  await reg?.stop();
});

/** Paths the corpus aims at; none may exist after any case. */
const TARGETS = [
  "/tmp/escaped-absolute",
  "/tmp/escaped-through-symlink",
  "/tmp/escaped-relative",
  "/tmp/escaped-parent",
  "/escaped-dotdot",
  "/escaped-dotdot2",
];

describe("hostile layers pulled from a registry", () => {
  test.each(Object.keys(HOSTILE_CASES))("%s", async (name) => {
    const img = await pushImage(reg, await hostileImage(HOSTILE_CASES[name]!, { base: true }), { tag: name.toLowerCase() });
    await using t = await testImages([reg.host]);
    const before = TARGETS.filter((p) => existsSync(p));
    if (name === "absolute") {
      // GNU tar strips the leading "/": the file lands inside the layer, which is harmless
      const r = await t.svc.pull(img.ref);
      const top = t.svc.layers(r.id).at(-1)!;
      expect(readFileSync(join(top, "tmp/escaped-absolute"), "utf8")).toBe("escaped\n");
    } else {
      const e = await rejection(t.svc.pull(img.ref));
      expect(e.message).toMatch(name === "hardlinkOutside" ? /"\.\." component|Cannot hard link/ : /refused: /);
      expect(t.svc.list()).toEqual([]);
      expect(t.layerDirs()).toEqual([]);
      expect(t.tempEntries()).toEqual([]);
    }
    expect(TARGETS.filter((p) => existsSync(p))).toEqual(before);
    for (const p of TARGETS) if (!before.includes(p)) rmSync(p, { force: true });
  });
});

describe("unpacking directly", () => {
  test("a symlink pointing out, then a file through it, never writes outside (each step refused)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hostile-"));
    try {
      const outside = join(dir, "outside");
      const dest = join(dir, "dest");
      await Bun.$`mkdir -p ${outside} ${dest}`;
      const { writeTar } = await import("../support/tar.ts");
      const cases: TarEntry[][] = [
        [
          { name: "link", type: "symlink", linkname: outside },
          { name: "link/pwned", data: "x" },
        ],
        [
          { name: "a/b", type: "symlink", linkname: "../../outside" },
          { name: "a/b/pwned", data: "x" },
        ],
        [
          { name: "h", type: "symlink", linkname: outside },
          { name: "hl", type: "hardlink", linkname: "h/file" },
        ],
      ];
      for (const entries of cases) {
        const blob = join(dir, "layer.tar");
        writeFileSync(blob, writeTar(entries));
        const e = await rejection(unpackLayer({ blobFile: blob, diffId: "sha256:" + "0".repeat(64), dest, layer: "hostile" }));
        expect(e.kind).toBe("invalid-argument");
        expect(existsSync(join(outside, "pwned"))).toBe(false);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
