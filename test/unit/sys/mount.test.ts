import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { offloadSpawns } from "../../../src/sys/exec.ts";
import { isMounted, mount, mountAsync, mountShm, MS, parseMountinfo, readMountinfo, umount2Async, unmount, unmountAsync } from "../../../src/sys/mount.ts";

const root = process.getuid?.() === 0;

test("parseMountinfo decodes escapes and optional fields", () => {
  const t = parseMountinfo(
    "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n" +
      "45 27 0:39 / /tmp/ovt/merged rw,relatime shared:5 - overlay overlay rw,lowerdir=l/0:l/1,upperdir=upper\n",
  );
  expect(t[0]).toEqual({
    id: 36,
    parent: 35,
    root: "/mnt1",
    mountPoint: "/mnt/with space",
    options: "rw,noatime",
    fsType: "ext3",
    source: "/dev/root",
    superOptions: "rw,errors=continue",
  });
  expect(t[1]?.fsType).toBe("overlay");
  expect(isMounted("/tmp/ovt/merged/", t)).toBe(true);
  expect(isMounted("/tmp/ovt", t)).toBe(false);
});

test("this process's table has a root mount", () => {
  expect(readMountinfo().some((m) => m.mountPoint === "/")).toBe(true);
});

describe.if(root)("as root", () => {
  test("mountShm, idempotent; unmount reports whether something was unmounted", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shm-test-"));
    const shm = join(dir, "shm");
    try {
      await mountShm(shm, 1024 * 1024);
      await mountShm(shm, 1024 * 1024);
      const m = readMountinfo().filter((x) => x.mountPoint === shm);
      expect(m).toHaveLength(1);
      expect(m[0]).toMatchObject({ fsType: "tmpfs" });
      expect(m[0]?.options).toContain("nosuid");
      expect(m[0]?.superOptions).toContain("size=1024k");
      expect(unmount(shm)).toBe(true);
      expect(unmount(shm)).toBe(false);
      expect(isMounted(shm)).toBe(false);
      await expect(mountShm(shm, -1)).rejects.toMatchObject({ kind: "invalid-argument" });
    } finally {
      unmount(shm);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a busy mount falls back to a lazy unmount", () => {
    const dir = mkdtempSync(join(tmpdir(), "busy-test-"));
    const target = join(dir, "t");
    mkdirSync(target);
    try {
      mount("tmpfs", target, "tmpfs", MS.NOSUID, "size=64k");
      writeFileSync(join(target, "f"), "x");
      // Keep the mount busy with an open directory handle (cwd of a child process).
      const child = Bun.spawn(["sleep", "30"], { cwd: target });
      try {
        expect(unmount(target)).toBe(true);
        expect(isMounted(target)).toBe(false);
      } finally {
        child.kill();
      }
    } finally {
      unmount(target);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("mount errors carry the errno", () => {
    expect(() => mount("none", "/nonexistent/target/x", "tmpfs", 0)).toThrow(expect.objectContaining({ code: "ENOENT" }));
    expect(existsSync("/nonexistent/target/x")).toBe(false);
  });
});

// The daemon's request paths mount and unmount off the event loop (on the spawner thread once it
// offloads, sys/exec.ts): the same results and errors in both modes.
for (const mode of ["in-thread", "spawner thread"] as const) {
  describe.if(root)(`mountAsync / unmountAsync / umount2Async, ${mode}`, () => {
    const on = () => offloadSpawns(mode === "spawner thread");
    afterAll(() => offloadSpawns(false));

    test("mount, unmount, and what an unmount of nothing answers", async () => {
      on();
      const dir = mkdtempSync(join(tmpdir(), "async-mount-"));
      const target = join(dir, "t");
      mkdirSync(target);
      try {
        await mountAsync("tmpfs", target, "tmpfs", MS.NOSUID, "size=64k");
        expect(readMountinfo().find((m) => m.mountPoint === target)).toMatchObject({ fsType: "tmpfs" });
        expect(await unmountAsync(target)).toBe(true);
        expect(isMounted(target)).toBe(false);
        expect(await unmountAsync(target)).toBe(false); // EINVAL: not a mount point
        expect(await unmountAsync(join(dir, "missing"))).toBe(false); // ENOENT
        expect(await umount2Async(target, 0)).toBe(22); // the errno itself
        await mountShm(join(dir, "shm"), 1024 * 1024); // new dir: mounted without reading the table
        await mountShm(join(dir, "shm"), 1024 * 1024); // existing: the table says it is mounted already
        expect(readMountinfo().filter((m) => m.mountPoint === join(dir, "shm"))).toHaveLength(1);
        expect(await unmountAsync(join(dir, "shm"), { detach: true })).toBe(true);
      } finally {
        unmount(target);
        unmount(join(dir, "shm"));
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test("a busy mount falls back to a lazy unmount; mount errors carry the errno", async () => {
      on();
      const dir = mkdtempSync(join(tmpdir(), "async-busy-"));
      const target = join(dir, "t");
      mkdirSync(target);
      try {
        await mountAsync("tmpfs", target, "tmpfs", MS.NOSUID, "size=64k");
        const child = Bun.spawn(["sleep", "30"], { cwd: target });
        try {
          expect(await unmountAsync(target)).toBe(true);
          expect(isMounted(target)).toBe(false);
        } finally {
          child.kill();
        }
        // (.catch, not expect().rejects: bun test's rejects does not wait for a Worker's answer)
        const e = await mountAsync("none", "/nonexistent/target/x", "tmpfs", 0).catch((x: unknown) => x);
        expect(e).toMatchObject({ code: "ENOENT" });
      } finally {
        unmount(target);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
