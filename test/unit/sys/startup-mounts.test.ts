// The recovery helpers that read the mount table only when something could be mounted: their
// answers stay those of a full read.
import { expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clearStaging } from "../../../src/sys/idmap.ts";
import { isMounted, mount, MS } from "../../../src/sys/mount.ts";
import { namespacePinCheck } from "../../../src/sys/namespaces.ts";

const root = process.getuid?.() === 0;

test("namespacePinCheck: missing paths and plain files are not pinned; a mount point is", () => {
  const dir = mkdtempSync(join(tmpdir(), "pincheck-"));
  try {
    const check = namespacePinCheck();
    expect(check(join(dir, "missing"))).toBe(false);
    expect(check(dir)).toBe(false);
    expect(check("/")).toBe(true); // the first existing path reads the table
    expect(check(join(dir, "missing-too"))).toBe(false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.skipIf(!root)("clearStaging: a missing or empty dir is left as is; mounts below a dir with entries are detached", () => {
  const base = mkdtempSync(join(tmpdir(), "staging-"));
  try {
    clearStaging(join(base, "missing"));
    clearStaging(base);
    expect(existsSync(base)).toBe(true);
    const mp = join(base, "d0");
    mkdirSync(mp);
    mount("tmpfs", mp, "tmpfs", MS.NOSUID, "size=1m");
    expect(isMounted(mp)).toBe(true);
    clearStaging(base);
    expect(isMounted(mp)).toBe(false);
    expect(existsSync(mp)).toBe(true); // the mount point stays, for reuse
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
