// Overlay root filesystems. These mount for real, so they need root; each test cleans up its mounts.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRootfs, diskUsage, mountImageVolume, removeRootfs, rootfsPaths, unmountRootfs } from "../../../src/storage/index.ts";
import { isMounted, mount, MS, readMountinfo, unmount } from "../../../src/sys/mount.ts";

const root = process.getuid?.() === 0;
let dir = "";
let storage = "";

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "overlay-test-"));
  storage = join(dir, "storage");
});

afterEach(() => {
  for (const m of readMountinfo()
    .filter((x) => x.mountPoint.startsWith(dir))
    .reverse())
    unmount(m.mountPoint, { detach: true });
  rmSync(dir, { recursive: true, force: true });
});

function layer(name: string, files: Record<string, string>): string {
  const d = join(dir, "layers", name);
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(join(d, p, ".."), { recursive: true });
    writeFileSync(join(d, p), content);
  }
  mkdirSync(d, { recursive: true });
  return d;
}

test("rootfsPaths rejects hostile ids", () => {
  expect(() => rootfsPaths("/s", "../etc")).toThrow(expect.objectContaining({ kind: "invalid-argument" }));
  expect(() => rootfsPaths("/s", "a/b")).toThrow();
  expect(rootfsPaths("/s", "abc").merged).toBe("/s/abc/merged");
});

describe.if(root)("overlay rootfs", () => {
  test("two layers: the upper one wins, writes land in upper, usage counts them", async () => {
    const base = layer("base", { "etc/os-release": "base\n", "bin/tool": "v1" });
    const top = layer("top", { "bin/tool": "v2", "app/main": "app" });
    const merged = await createRootfs(storage, "c1", [base, top]);
    expect(isMounted(merged)).toBe(true);
    expect(readFileSync(join(merged, "bin/tool"), "utf8")).toBe("v2");
    expect(readFileSync(join(merged, "etc/os-release"), "utf8")).toBe("base\n");
    writeFileSync(join(merged, "new-file"), "12345");
    expect(readFileSync(join(storage, "c1", "upper", "new-file"), "utf8")).toBe("12345");
    expect(readFileSync(join(base, "bin/tool"), "utf8")).toBe("v1");
    const usage = await diskUsage(storage, "c1");
    expect(usage).toEqual({ bytes: 5, inodes: 2 });
    // Idempotent: the same mount is returned, not stacked.
    expect(await createRootfs(storage, "c1", [base, top])).toBe(merged);
    expect(readMountinfo().filter((m) => m.mountPoint === merged)).toHaveLength(1);

    await removeRootfs(storage, "c1");
    expect(isMounted(merged)).toBe(false);
    expect(existsSync(join(storage, "c1"))).toBe(false);
    await removeRootfs(storage, "c1"); // idempotent
    await expect(diskUsage(storage, "c1")).rejects.toMatchObject({ kind: "not-found" });
  });

  test("removal unmounts a rootfs mounted on itself, its image volumes and what is busy or mounted below them, without leaving a mount", async () => {
    const base = layer("base", { a: "a" });
    const merged = await createRootfs(storage, "stacked", [base]);
    mount("tmpfs", merged, "tmpfs", MS.NOSUID, "size=64k"); // stacked, as after a crash
    mount("tmpfs", merged, "tmpfs", MS.NOSUID, "size=64k");
    const v0 = await mountImageVolume(storage, "stacked", 0, [base]);
    const v1 = await mountImageVolume(storage, "stacked", 1, [base]);
    writeFileSync(join(dir, "file"), "x");
    mount(join(dir, "file"), join(v1, "a"), "", MS.BIND); // a mount below a volume: the volume is busy
    const child = Bun.spawn(["sleep", "30"], { cwd: v0 }); // a busy volume
    try {
      expect(readMountinfo().filter((m) => m.mountPoint.startsWith(join(storage, "stacked"))).length).toBe(6);
      await removeRootfs(storage, "stacked");
    } finally {
      child.kill();
    }
    expect(readMountinfo().some((m) => m.mountPoint.startsWith(join(storage, "stacked")))).toBe(false);
    expect(existsSync(join(storage, "stacked"))).toBe(false);
  });

  test("an image without layers gets an empty, writable rootfs", async () => {
    const merged = await createRootfs(storage, "empty", []);
    expect(readdirSync(merged)).toEqual([]);
    writeFileSync(join(merged, "x"), "1");
    await removeRootfs(storage, "empty");
    expect(readMountinfo().some((m) => m.mountPoint.startsWith(dir))).toBe(false);
  });

  test("unmount keeps the writable layer; a new mount sees it again", async () => {
    const base = layer("base", { a: "a" });
    const merged = await createRootfs(storage, "c2", [base]);
    writeFileSync(join(merged, "kept"), "yes");
    unmountRootfs(storage, "c2");
    expect(isMounted(merged)).toBe(false);
    await createRootfs(storage, "c2", [base]);
    expect(readFileSync(join(merged, "kept"), "utf8")).toBe("yes");
    await removeRootfs(storage, "c2");
  });

  test("25 layers with long paths (option string over a page) mount through short links", async () => {
    const long = "x".repeat(180);
    const layers = Array.from({ length: 25 }, (_, i) => layer(`${long}-${String(i).padStart(2, "0")}`, { [`f${i}`]: String(i), shared: String(i) }));
    expect(layers.join(":").length).toBeGreaterThan(4096);
    const merged = await createRootfs(storage, "deep", layers);
    expect(readFileSync(join(merged, "shared"), "utf8")).toBe("24"); // the last (topmost) layer wins
    expect(readFileSync(join(merged, "f0"), "utf8")).toBe("0");
    expect(readdirSync(join(storage, "deep", "l"))).toHaveLength(25);
    await removeRootfs(storage, "deep");
    expect(isMounted(merged)).toBe(false);
  });

  test("a missing layer is invalid-argument and leaves nothing behind", async () => {
    await expect(createRootfs(storage, "bad", [join(dir, "nope")])).rejects.toMatchObject({ kind: "invalid-argument" });
    expect(existsSync(join(storage, "bad"))).toBe(false);
  });
});
