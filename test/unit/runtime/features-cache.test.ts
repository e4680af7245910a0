import { expect, test } from "bun:test";
import { chmodSync, copyFileSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../../harness.ts";
import type { RuntimeFeatures } from "../../../src/oci/index.ts";
import { FEATURES_CACHE_FILE, FeaturesCache, type FeaturesCacheIo } from "../../../src/runtime/index.ts";

const RUNC: RuntimeFeatures = {
  source: "features",
  ociVersionMax: "1.1.0",
  mountOptions: ["bind", "rro"],
  namespaces: ["user", "net"],
  rro: true,
  idmap: true,
  seccomp: true,
  apparmor: true,
  selinux: false,
  cgroup: { v1: true, v2: true, systemd: true },
};
const STATIC: RuntimeFeatures = { ...RUNC, source: "static", rro: false, mountOptions: ["bind"] };

/** A file system of one binary stamp per path, the kernel, and the cache file, in memory. */
function fakeIo() {
  const files = new Map<string, string>();
  const stamps = new Map<string, { dev: number; ino: number; size: number; mtimeMs: number; ctimeMs: number }>();
  let kernel = "6.1.0-18-amd64";
  const io: FeaturesCacheIo = {
    stat: (p) => stamps.get(p),
    kernel: () => kernel,
    read: (f) => files.get(f),
    write: async (f, t) => void files.set(f, t),
  };
  return {
    io,
    files,
    stamps,
    setKernel: (k: string) => void (kernel = k),
  };
}

function asker(answer: RuntimeFeatures) {
  let calls = 0;
  return {
    ask: async () => {
      calls++;
      return answer;
    },
    get calls() {
      return calls;
    },
  };
}

const BIN = "/usr/bin/runc";
const STAMP = { dev: 1, ino: 42, size: 10_000, mtimeMs: 1_700_000_000_000, ctimeMs: 1_700_000_000_000 };

test("a miss asks the runtime and keeps the answer; the next start (a new cache) does not ask", async () => {
  const f = fakeIo();
  f.stamps.set(BIN, STAMP);
  const a = asker(RUNC);
  expect(await new FeaturesCache("/run/crio", f.io).features(BIN, a.ask)).toEqual(RUNC);
  expect(a.calls).toBe(1);
  expect(f.files.has(`/run/crio/${FEATURES_CACHE_FILE}`)).toBe(true);
  const b = asker(STATIC);
  expect(await new FeaturesCache("/run/crio", f.io).features(BIN, b.ask)).toEqual(RUNC);
  expect(b.calls).toBe(0);
});

test.each([
  ["the binary was replaced (new inode and ctime)", { ino: 43, ctimeMs: STAMP.ctimeMs + 5 }],
  ["the binary's size changed", { size: 10_001 }],
  ["the binary's mtime changed", { mtimeMs: STAMP.mtimeMs + 1000 }],
  ["the binary's ctime changed (same size and mtime kept by the installer)", { ctimeMs: STAMP.ctimeMs + 1 }],
  ["the binary is on another device", { dev: 2 }],
])("a stale entry is not used when %s: the runtime is asked again and the entry replaced", async (_why, change) => {
  const f = fakeIo();
  f.stamps.set(BIN, STAMP);
  await new FeaturesCache("/run/crio", f.io).features(BIN, asker(RUNC).ask);
  f.stamps.set(BIN, { ...STAMP, ...change });
  const newer: RuntimeFeatures = { ...RUNC, ociVersionMax: "1.2.0", rro: false, mountOptions: ["bind"] };
  const a = asker(newer);
  expect(await new FeaturesCache("/run/crio", f.io).features(BIN, a.ask)).toEqual(newer);
  expect(a.calls).toBe(1);
  const b = asker(RUNC);
  expect(await new FeaturesCache("/run/crio", f.io).features(BIN, b.ask)).toEqual(newer); // the replaced entry
  expect(b.calls).toBe(0);
});

test("an entry of another kernel release is not used", async () => {
  const f = fakeIo();
  f.stamps.set(BIN, STAMP);
  await new FeaturesCache("/run/crio", f.io).features(BIN, asker(RUNC).ask);
  f.setKernel("6.12.0-1-amd64");
  const a = asker(STATIC);
  await new FeaturesCache("/run/crio", f.io).features(BIN, a.ask);
  expect(a.calls).toBe(1);
});

test.each([
  ["not JSON", "{not json"],
  ["another version", JSON.stringify({ v: 2, entries: { [BIN]: { stamp: { ...STAMP, kernel: "6.1.0-18-amd64" }, features: RUNC } } })],
  ["a malformed answer", JSON.stringify({ v: 1, entries: { [BIN]: { stamp: { ...STAMP, kernel: "6.1.0-18-amd64" }, features: { rro: true } } } })],
  ["a static answer planted", JSON.stringify({ v: 1, entries: { [BIN]: { stamp: { ...STAMP, kernel: "6.1.0-18-amd64" }, features: STATIC } } })],
  ["no stamp", JSON.stringify({ v: 1, entries: { [BIN]: { features: RUNC } } })],
])("a cache file with %s is not trusted: the runtime is asked", async (_why, text) => {
  const f = fakeIo();
  f.stamps.set(BIN, STAMP);
  f.files.set(`/run/crio/${FEATURES_CACHE_FILE}`, text);
  const a = asker(RUNC);
  expect(await new FeaturesCache("/run/crio", f.io).features(BIN, a.ask)).toEqual(RUNC);
  expect(a.calls).toBe(1);
  expect(JSON.parse(f.files.get(`/run/crio/${FEATURES_CACHE_FILE}`)!).v).toBe(1); // rewritten
});

test("a static answer (no `features`, or asking failed) is not kept; a binary that cannot be stat'ed is not cached", async () => {
  const f = fakeIo();
  f.stamps.set(BIN, STAMP);
  const a = asker(STATIC);
  await new FeaturesCache("/run/crio", f.io).features(BIN, a.ask);
  await new FeaturesCache("/run/crio", f.io).features(BIN, a.ask);
  expect(a.calls).toBe(2);
  expect(f.files.size).toBe(0);
  const b = asker(RUNC);
  await new FeaturesCache("/run/crio", f.io).features("/nowhere/crun", b.ask);
  await new FeaturesCache("/run/crio", f.io).features("/nowhere/crun", b.ask);
  expect(b.calls).toBe(2);
  expect(f.files.size).toBe(0);
});

test("two runtimes asked at once both end up in the file", async () => {
  const f = fakeIo();
  f.stamps.set(BIN, STAMP);
  f.stamps.set("/usr/bin/crun", { ...STAMP, ino: 7 });
  const crun: RuntimeFeatures = { ...RUNC, ociVersionMax: "1.0.2" };
  const c = new FeaturesCache("/run/crio", f.io);
  await Promise.all([c.features(BIN, asker(RUNC).ask), c.features("/usr/bin/crun", asker(crun).ask)]);
  const later = new FeaturesCache("/run/crio", f.io);
  const none = asker(STATIC);
  expect(await later.features(BIN, none.ask)).toEqual(RUNC);
  expect(await later.features("/usr/bin/crun", none.ask)).toEqual(crun);
  expect(none.calls).toBe(0);
});

test("on a real file system: touching the binary invalidates its entry", async () => {
  using dir = tempDir();
  const bin = join(dir.path, "runc");
  copyFileSync("/bin/true", bin);
  chmodSync(bin, 0o755);
  const a = asker(RUNC);
  await new FeaturesCache(dir.path).features(bin, a.ask);
  await new FeaturesCache(dir.path).features(bin, a.ask);
  expect(a.calls).toBe(1);
  expect(JSON.parse(readFileSync(join(dir.path, FEATURES_CACHE_FILE), "utf8")).entries[bin].features).toEqual(RUNC);
  utimesSync(bin, new Date(), new Date(Date.now() + 60_000));
  await new FeaturesCache(dir.path).features(bin, a.ask);
  expect(a.calls).toBe(2);
  writeFileSync(bin, "#!/bin/sh\n"); // rewritten in place: size and ctime change
  await new FeaturesCache(dir.path).features(bin, a.ask);
  expect(a.calls).toBe(3);
});
