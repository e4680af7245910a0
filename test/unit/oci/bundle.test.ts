import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readBundle, removeBundle, specToJson, writeBundle } from "../../../src/oci/bundle.ts";
import { OCI_VERSION, RLIM_INFINITY, type Spec } from "../../../src/oci/spec-types.ts";

const spec: Spec = {
  ociVersion: OCI_VERSION,
  process: {
    user: { uid: 0, gid: 0 },
    args: ["sh"],
    cwd: "/",
    rlimits: [
      { type: "RLIMIT_CORE", soft: RLIM_INFINITY, hard: RLIM_INFINITY },
      { type: "RLIMIT_NOFILE", soft: 1024, hard: 2048 },
    ],
  },
  root: { path: "/rootfs" },
};

test("unlimited rlimits are written as 2^64-1 and read back as the marker", () => {
  const text = specToJson(spec);
  expect(text).toContain('"soft": 18446744073709551615');
  expect(text).toContain('"soft": 1024');
  expect(text).not.toContain(String(RLIM_INFINITY));
});

test("write, read and remove a bundle", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bundle-test-"));
  try {
    const b = join(dir, "bundle");
    await writeBundle(b, spec);
    expect(statSync(join(b, "config.json")).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(join(b, "config.json"), "utf8").replace(/18446744073709551615/g, "0")).root).toEqual({ path: "/rootfs" });
    expect(await readBundle(b)).toEqual(spec);
    await removeBundle(b);
    await removeBundle(b);
    expect(existsSync(b)).toBe(false);
    await expect(readBundle(b)).rejects.toMatchObject({ kind: "not-found" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
