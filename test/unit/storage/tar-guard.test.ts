import { describe, expect, test } from "bun:test";
import { TarGuard } from "../../../src/storage/tar-guard.ts";
import { readTar, writeTar, type TarEntry } from "../../support/tar.ts";
import { HOSTILE_CASES } from "../../support/images.ts";

/** Runs the guard over `tar` fed in chunks of `step` bytes; returns the bytes it lets through. */
function guard(tar: Uint8Array, step = 4096): Uint8Array {
  const g = new TarGuard("sha256:test");
  const out: Uint8Array[] = [];
  for (let i = 0; i < tar.length; i += step) g.push(tar.subarray(i, i + step), (b) => out.push(b.slice()));
  g.finish();
  return Buffer.concat(out);
}

const file = (name: string, data = "x", extra: Partial<TarEntry> = {}): TarEntry => ({ name, data, ...extra });
const dir = (name: string, extra: Partial<TarEntry> = {}): TarEntry => ({ name, type: "dir", mode: 0o750, uid: 7, gid: 8, mtime: 1000, ...extra });

describe("whiteout conversion", () => {
  const tar = writeTar([
    dir("a/"),
    file("a/keep", "k"),
    { name: "a/.wh.gone", data: "" },
    { name: "a/.wh..wh..opq", data: "" },
    { name: ".wh..wh.plnk", type: "dir" },
    { name: "b/" + "n".repeat(120) + "/.wh.long-name-file", data: "" },
  ]);

  test.each([1, 7, 512, 513, 100000])("in chunks of %i bytes", (step) => {
    const out = readTar(guard(tar, step));
    expect(out.map((e) => ({ name: e.name, type: e.type, dev: [e.devmajor, e.devminor], pax: e.pax }))).toEqual([
      { name: "a/", type: "dir", dev: [undefined, undefined], pax: undefined },
      { name: "a/keep", type: "file", dev: [undefined, undefined], pax: undefined },
      { name: "a/gone", type: "char", dev: [0, 0], pax: undefined },
      { name: "a/", type: "dir", dev: [undefined, undefined], pax: { "SCHILY.xattr.trusted.overlay.opaque": "y" } },
      { name: "b/" + "n".repeat(120) + "/long-name-file", type: "char", dev: [0, 0], pax: undefined },
    ]);
    // the opaque marker repeats the directory's own metadata
    const again = out[3]!;
    expect([again.mode, again.uid, again.gid, again.mtime]).toEqual([0o750, 7, 8, 1000]);
  });

  test("an opaque layer root and whiteouts at the top level", () => {
    const out = readTar(
      guard(
        writeTar([
          { name: ".wh..wh..opq", data: "" },
          { name: ".wh.etc", data: "" },
        ]),
      ),
    );
    expect(out.map((e) => [e.name, e.type])).toEqual([
      ["./", "dir"],
      ["etc", "char"],
    ]);
  });

  test("a layer's own trusted.overlay.* xattrs are dropped, others kept", () => {
    const out = readTar(
      guard(writeTar([file("bin/ping", "elf", { pax: { "SCHILY.xattr.security.capability": "\u0001cap", "SCHILY.xattr.trusted.overlay.redirect": "/etc" } })])),
    );
    expect(out).toHaveLength(1);
    expect(out[0]!.pax).toEqual({ "SCHILY.xattr.security.capability": "\u0001cap" });
    expect(new TextDecoder().decode(out[0]!.data as Uint8Array)).toBe("elf");
  });

  test("stats count entries, file bytes and usage", () => {
    const g = new TarGuard("l");
    g.push(writeTar([dir("d/"), file("d/f", "12345"), { name: "d/l", type: "symlink", linkname: "f" }]), () => {});
    expect(g.finish()).toEqual({ tarBytes: 3072, entries: 3, fileBytes: 5, usageBytes: 8192 });
  });
});

describe("hostile layers", () => {
  const refused = (entries: TarEntry[]) => () => guard(writeTar(entries));

  test.each([
    ["dotdot", /has a "\.\." component/],
    ["symlinkEscape", /lies below the symlink "evil"/],
    ["relativeSymlinkEscape", /lies below the symlink "up"/],
    ["hardlinkOutside", /has a "\.\." component/],
    ["symlinkParent", /lies below the symlink "d\/sub"/],
  ])("%s is refused", (name, re) => {
    expect(refused(HOSTILE_CASES[name]!)).toThrow(re);
  });

  test("absolute names pass unchanged (GNU tar strips the leading /, our bookkeeping too)", () => {
    const out = readTar(guard(writeTar(HOSTILE_CASES.absolute!)));
    expect(out.map((e) => e.name)).toEqual(["/tmp/escaped-absolute"]);
    expect(refused([{ name: "/abs", type: "symlink", linkname: "/" }, file("abs/x")])).toThrow(/below the symlink "abs"/);
  });

  test.each<[string, TarEntry[], RegExp]>([
    [
      "hard link below a symlink",
      [
        { name: "s", type: "symlink", linkname: "/etc" },
        { name: "h", type: "hardlink", linkname: "s/shadow" },
      ],
      /below the symlink/,
    ],
    ["directory over a symlink", [{ name: "s", type: "symlink", linkname: "/etc" }, dir("s/")], /would replace a symlink/],
    ["hard link to the root", [{ name: "h", type: "hardlink", linkname: "./" }], /points at the layer root/],
    ["file named like the root", [file(".", "data")], /would replace the layer root/],
  ])("%s is refused", (_n, entries, re) => {
    expect(refused(entries)).toThrow(re);
  });

  test("links and devices that carry data are refused (tar and the guard must agree on sizes)", () => {
    const tar = writeTar([{ name: "s", type: "symlink", linkname: "x" }]);
    tar[124 + 10] = "1".charCodeAt(0); // size field = 1 (octal) …
    let sum = 0;
    tar.fill(0x20, 148, 156);
    for (let i = 0; i < 512; i++) sum += tar[i]!;
    tar.set(new TextEncoder().encode(sum.toString(8).padStart(6, "0") + "\0 "), 148); // … with a valid checksum
    expect(() => guard(tar)).toThrow(/carries data/);
  });

  test("a NUL in a PAX path, sparse files, bad checksums and truncation are refused", () => {
    expect(refused([file("a", "x", { pax: { path: "a\u0000b" } })])).toThrow(/NUL byte/);
    expect(refused([file("a", "x", { pax: { "GNU.sparse.major": "1" } })])).toThrow(/sparse files/);
    const bad = writeTar([file("a")]);
    bad[0] = 0x62;
    expect(() => guard(bad)).toThrow(/bad header checksum/);
    const whole = writeTar([file("a", "y".repeat(2000))]);
    expect(() => guard(whole.subarray(0, 1024))).toThrow(/truncated/);
  });

  test("entries after a lone zero block are still checked; bytes after the end marker are dropped", () => {
    const lone = Buffer.concat([new Uint8Array(512), writeTar([file("../x")])]);
    expect(() => guard(lone)).toThrow(/"\.\." component/);
    const trailer = Buffer.concat([writeTar([file("ok")]), writeTar([file("../after-end")])]);
    const out = guard(trailer);
    expect(readTar(out).map((e) => e.name)).toEqual(["ok"]);
  });
});
