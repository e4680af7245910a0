import { describe, expect, test } from "bun:test";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadRegistriesConf, emptyRegistriesConf, mergeInto, parseRegistriesConf, type RegistriesConf } from "../../../src/image/registries-conf.ts";
import { candidates, findRegistry, pullSources } from "../../../src/image/pull-sources.ts";
import { formatRef, normalize, parseReference } from "../../../src/image/reference.ts";

const D = "sha256:" + "b".repeat(64);

function conf(text: string): RegistriesConf {
  const c = emptyRegistriesConf();
  mergeInto(c, parseRegistriesConf(text));
  return c;
}

function sources(c: RegistriesConf, ref: string) {
  return pullSources(c, normalize(parseReference(ref))).map((s) => ({ ref: formatRef(s.ref), insecure: s.insecure, mirror: s.mirror }));
}

describe("registries.conf v2 pull sources", () => {
  test("CRI-O's mirror example: the mirror first, then the registry", () => {
    const c = conf(`
[[registry]]
prefix = "example.com/foo"
location = "example.com/foo"
mirror = [{ location = "example-mirror-0.local/path" }]
`);
    expect(sources(c, "example.com/foo/bar:1")).toEqual([
      { ref: "example-mirror-0.local/path/bar:1", insecure: false, mirror: true },
      { ref: "example.com/foo/bar:1", insecure: false, mirror: false },
    ]);
  });

  test("the man page example: mirrors in order, then the rewritten location", () => {
    const c = conf(`
unqualified-search-registries = ["example.com"]
[[registry]]
prefix = "example.com/foo"
insecure = false
blocked = false
location = "internal-registry-for-example.com/bar"
[[registry.mirror]]
location = "example-mirror-0.local/mirror-for-foo"
[[registry.mirror]]
location = "example-mirror-1.local/mirrors/foo"
insecure = true
`);
    expect(sources(c, "example.com/foo/image:latest")).toEqual([
      { ref: "example-mirror-0.local/mirror-for-foo/image:latest", insecure: false, mirror: true },
      { ref: "example-mirror-1.local/mirrors/foo/image:latest", insecure: true, mirror: true },
      { ref: "internal-registry-for-example.com/bar/image:latest", insecure: false, mirror: false },
    ]);
    // a name that only shares a string prefix does not match
    expect(sources(c, "example.com/foobar/image:1")).toEqual([{ ref: "example.com/foobar/image:1", insecure: false, mirror: false }]);
  });

  test("the longest prefix wins; docker.io names are normalised before matching", () => {
    const c = conf(`
[[registry]]
location = "docker.io"
mirror = [{ location = "hub-mirror.local" }]
[[registry]]
prefix = "docker.io/library/busybox"
location = "busybox-mirror.local/bb"
`);
    expect(sources(c, "busybox:1.36")).toEqual([{ ref: "busybox-mirror.local/bb:1.36", insecure: false, mirror: false }]);
    expect(sources(c, "docker.io/library/alpine")).toEqual([
      { ref: "hub-mirror.local/library/alpine:latest", insecure: false, mirror: true },
      { ref: "docker.io/library/alpine:latest", insecure: false, mirror: false },
    ]);
  });

  test("wildcard prefixes match subdomains only; mirrors replace the host", () => {
    const c = conf(`
[[registry]]
prefix = "*.example.com"
insecure = true
mirror = [{ location = "mirror.local/ex" }]
`);
    expect(findRegistry(c, normalize(parseReference("a.example.com/x")))?.prefix).toBe("*.example.com");
    expect(findRegistry(c, normalize(parseReference("example.com/x")))).toBeUndefined();
    expect(sources(c, "a.b.example.com:5000/ns/x:1")).toEqual([
      { ref: "mirror.local/ex/ns/x:1", insecure: false, mirror: true },
      { ref: "a.b.example.com:5000/ns/x:1", insecure: true, mirror: false },
    ]);
  });

  test("blocked registries are refused with a clear error", () => {
    const c = conf(`
[[registry]]
location = "bad.example.com"
blocked = true
`);
    expect(() => sources(c, "bad.example.com/x:1")).toThrow(/blocked in registries.conf/);
    try {
      sources(c, "bad.example.com/x:1");
    } catch (e) {
      expect((e as { kind: string }).kind).toBe("permission-denied");
    }
  });

  test("mirror-by-digest-only and pull-from-mirror", () => {
    const c = conf(`
[[registry]]
location = "r.example.com"
mirror-by-digest-only = true
mirror = [{ location = "m1.local" }]
[[registry]]
location = "s.example.com"
mirror = [{ location = "d.local", pull-from-mirror = "digest-only" }, { location = "t.local", pull-from-mirror = "tag-only" }, { location = "a.local" }]
`);
    expect(sources(c, "r.example.com/x:1").map((s) => s.ref)).toEqual(["r.example.com/x:1"]);
    expect(sources(c, `r.example.com/x@${D}`).map((s) => s.ref)).toEqual([`m1.local/x@${D}`, `r.example.com/x@${D}`]);
    expect(sources(c, "s.example.com/x:1").map((s) => s.ref)).toEqual(["t.local/x:1", "a.local/x:1", "s.example.com/x:1"]);
    expect(sources(c, `s.example.com/x@${D}`).map((s) => s.ref)).toEqual([`d.local/x@${D}`, `a.local/x@${D}`, `s.example.com/x@${D}`]);
  });
});

describe("short names", () => {
  test("aliases win over the search list; tags and digests carry over", () => {
    const c = conf(`
unqualified-search-registries = ["quay.io", "docker.io"]
short-name-mode = "permissive"
[aliases]
"app" = "registry.example.com/team/app"
`);
    expect(candidates(c, "app:2").map(formatRef)).toEqual(["registry.example.com/team/app:2"]);
    expect(candidates(c, "busybox").map(formatRef)).toEqual(["quay.io/busybox:latest", "docker.io/library/busybox:latest"]);
    expect(candidates(c, "quay.io/x").map(formatRef)).toEqual(["quay.io/x:latest"]);
  });

  test("enforcing mode refuses an ambiguous short name; a single search registry is fine", () => {
    const c = conf(`unqualified-search-registries = ["quay.io", "docker.io"]\nshort-name-mode = "enforcing"\n`);
    expect(() => candidates(c, "busybox")).toThrow(/ambiguous/);
    expect(candidates(c, "busybox", true)).toHaveLength(2);
    const one = conf(`unqualified-search-registries = ["docker.io"]\nshort-name-mode = "enforcing"\n`);
    expect(candidates(one, "busybox").map(formatRef)).toEqual(["docker.io/library/busybox:latest"]);
  });

  test("no search registries: a clear invalid-argument error", () => {
    expect(() => candidates(emptyRegistriesConf(), "busybox")).toThrow(/no unqualified-search-registries/);
  });
});

describe("loading and validation", () => {
  test("drop-ins override by prefix, replace the search list, merge and erase aliases", () => {
    const dir = mkdtempSync(join(tmpdir(), "regconf-"));
    try {
      writeFileSync(
        join(dir, "registries.conf"),
        `unqualified-search-registries = ["a.io"]\n[aliases]\n"x" = "a.io/x"\n"y" = "a.io/y"\n[[registry]]\nlocation = "a.io"\ninsecure = true\n`,
      );
      mkdirSync(join(dir, "d"));
      writeFileSync(
        join(dir, "d", "10-b.conf"),
        `unqualified-search-registries = ["b.io"]\n[aliases]\n"y" = ""\n"z" = "b.io/z"\n[[registry]]\nlocation = "a.io"\nblocked = true\n`,
      );
      writeFileSync(join(dir, "d", "ignored.txt"), `not toml [[[`);
      const c = loadRegistriesConf(join(dir, "registries.conf"), join(dir, "d"));
      expect(c.unqualifiedSearchRegistries).toEqual(["b.io"]);
      expect(c.aliases).toEqual({ x: "a.io/x", z: "b.io/z" });
      expect(c.registries).toEqual([{ prefix: "a.io", location: "a.io", insecure: false, blocked: true, mirrorByDigestOnly: false, mirrors: [] }]);
      expect(c.files).toHaveLength(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("missing files give an empty configuration", () => {
    expect(loadRegistriesConf("/nonexistent/registries.conf", "/nonexistent/d")).toEqual(emptyRegistriesConf());
  });

  test("version 1 lists are understood", () => {
    const c = conf(`[registries.search]\nregistries = ["r1.io"]\n[registries.insecure]\nregistries = ["r2.io"]\n[registries.block]\nregistries = ["r3.io"]\n`);
    expect(c.unqualifiedSearchRegistries).toEqual(["r1.io"]);
    expect(sources(c, "r2.io/x:1")[0]!.insecure).toBe(true);
    expect(() => sources(c, "r3.io/x:1")).toThrow(/blocked/);
  });

  test.each([
    [`[[registry]]\nprefix = "*.x.com"\nlocation = "y.com"\n`, /wildcard prefix .* cannot have a location/],
    [`[[registry]]\nlocation = "https://x.com"\n`, /must not have a scheme/],
    [`[[registry]]\ninsecure = "yes"\nlocation = "x.com"\n`, /insecure must be true or false/],
    [`short-name-mode = "strict"\n`, /short-name-mode must be/],
    [`[aliases]\n"x" = "x:1"\n`, /must be fully qualified/],
    [`[aliases]\n"quay.io/x" = "quay.io/x"\n`, /must be a short name/],
    [`[[registry]]\nlocation = "x.com"\nmirror-by-digest-only = true\nmirror = [{ location = "m.com", pull-from-mirror = "all" }]\n`, /conflicts/],
    [`[[registry]]\nlocation = "x.com"\n[[registry]]\nlocation = "x.com"\n`, /two \[\[registry\]\] tables/],
    [`this is = not toml =`, /invalid TOML/],
  ])("refuses %p", (text, re) => {
    expect(() => parseRegistriesConf(text, "/etc/containers/registries.conf")).toThrow(re);
  });
});
