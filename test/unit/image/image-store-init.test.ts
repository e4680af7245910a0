import { expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../../harness.ts";
import { ImageStore } from "../../../src/image/image-store.ts";

test("init leaves an index it has nothing to clean in untouched (no write), and rewrites one it cleaned", async () => {
  using d = tempDir();
  const store = new ImageStore(d.path);
  await store.init();
  expect(existsSync(store.indexPath)).toBe(false); // an empty store: nothing written
  const clean = { v: 1, images: {}, layers: {} };
  writeFileSync(store.indexPath, JSON.stringify(clean));
  const before = statSync(store.indexPath);
  await new ImageStore(d.path).init();
  const after = statSync(store.indexPath);
  expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  // an image whose layer is gone, and an unreferenced blob: cleaned, and the index rewritten
  const lost = "sha256:" + "a".repeat(64);
  const broken = {
    v: 1,
    images: { [lost]: { id: lost, repoTags: ["x:1"], repoDigests: [], manifestDigest: lost, layers: ["sha256:" + "b".repeat(64)], blobs: [], pulledAt: 1 } },
    layers: {},
  };
  writeFileSync(store.indexPath, JSON.stringify(broken));
  writeFileSync(join(d.path, "blobs", "sha256", "c".repeat(64)), "orphan");
  await new ImageStore(d.path).init();
  expect(JSON.parse(readFileSync(store.indexPath, "utf8")).images).toEqual({});
  expect(existsSync(join(d.path, "blobs", "sha256", "c".repeat(64)))).toBe(false);
});
