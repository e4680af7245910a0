// The layering rules of STYLE.md §3.2, as a test: a rule that is not tested won't hold.
import { expect, test } from "bun:test";
import { folderCycles, importsOf, seamViolations } from "./architecture-scan.ts";

const DOMAIN_FORBIDDEN = /@grpc\/grpc-js|from "(\.\.\/)+cri\/|^import (?!type)[^;]*\/gen\//m;
const rules: Array<[string, RegExp, string]> = [
  [
    "src/conmon/",
    /from "(\.\.\/)+(cri|gen|image|sandbox|container|daemon|network|config|cli|storage)\/|from "(\.\.\/)+oci\/(?!command\.ts")|@grpc|@bufbuild|citty|smol-toml/,
    "the monitor imports only sys/, util/, log/, errors.ts, oci/command.ts and its own files",
  ],
  ["src/sandbox/", DOMAIN_FORBIDDEN, "no gRPC and only type imports of generated code"],
  ["src/container/", DOMAIN_FORBIDDEN, "no gRPC and only type imports of generated code"],
  ["src/image/", DOMAIN_FORBIDDEN, "no gRPC and only type imports of generated code"],
  ["src/network/", DOMAIN_FORBIDDEN, "no gRPC and only type imports of generated code"],
  ["src/storage/", DOMAIN_FORBIDDEN, "no gRPC and only type imports of generated code"],
  ["src/oci/", DOMAIN_FORBIDDEN, "no gRPC and only type imports of generated code"],
  ["src/monitor/", DOMAIN_FORBIDDEN, "no gRPC and only type imports of generated code"],
  ["src/store/", DOMAIN_FORBIDDEN, "no gRPC"],
];

test.each(rules)("%s respects the import rules (%#)", async (dir, re) => {
  const bad: string[] = [];
  for await (const f of new Bun.Glob(`${dir}**/*.ts`).scan(".")) if (re.test(await Bun.file(f).text())) bad.push(f);
  expect(bad).toEqual([]);
});

test("gRPC is imported only under src/cri/", async () => {
  const bad: string[] = [];
  for await (const f of new Bun.Glob("src/**/*.ts").scan(".")) if (!f.startsWith("src/cri/") && /@grpc\/grpc-js/.test(await Bun.file(f).text())) bad.push(f);
  expect(bad).toEqual([]);
});

test("bun:ffi is used only under src/sys/", async () => {
  const bad: string[] = [];
  for await (const f of new Bun.Glob("src/**/*.ts").scan(".")) if (!f.startsWith("src/sys/") && /from "bun:ffi"/.test(await Bun.file(f).text())) bad.push(f);
  expect(bad).toEqual([]);
});

test("nothing below cli/ imports daemon/ or cri/", async () => {
  const bad: string[] = [];
  for await (const f of new Bun.Glob("src/**/*.ts").scan(".")) {
    if (/^src\/(cli|daemon|cri)\//.test(f) || f === "src/main.ts") continue;
    if (/from "(\.\.\/)+(daemon|cri)\//.test(await Bun.file(f).text())) bad.push(f);
  }
  expect(bad).toEqual([]);
});

test("the monitor role loads no node: module (node:fs alone costs each monitor ~0.35 MB)", async () => {
  const seen = new Set<string>();
  const nodeImports: string[] = [];
  const walk = async (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = await Bun.file(file).text();
    // value imports and re-exports only: `import type` and `export type` are erased
    for (const m of text.matchAll(/^(?:import|export) (?!type )[^;]*?from "([^"]+)";/gms)) {
      const spec = m[1]!;
      if (spec.startsWith("node:")) nodeImports.push(`${file}: ${spec}`);
      else if (spec.startsWith(".")) await walk(new URL(spec, `file://${process.cwd()}/${file}`).pathname.slice(process.cwd().length + 1));
    }
  };
  await walk("src/conmon/main.ts");
  expect(seen.size).toBeGreaterThan(5);
  expect(nodeImports).toEqual([]);
});

test("one builder of runtime command lines: only src/oci/command.ts spells a runtime's global flags or verbs", async () => {
  const bad: string[] = [];
  // a runtime argv starts with "--root" (and --systemd-cgroup); --pid-file, --console-socket and
  // --log-format are its create/exec flags: none of them belongs anywhere else in src/
  const flags = /"--(root|systemd-cgroup|pid-file|console-socket|log-format)"/;
  for await (const f of new Bun.Glob("src/**/*.ts").scan(".")) if (f !== "src/oci/command.ts" && flags.test(await Bun.file(f).text())) bad.push(f);
  expect(bad).toEqual([]);
  // the builder is a leaf the monitor may load
  expect(await Bun.file("src/oci/command.ts").text()).not.toMatch(/^import /m);
});

// --- one runtime seam (issue #14): sys/ is the only Linux seam ------------------------------

test("Linux seams: dlopen only in sys/libc.ts (one libc handle); Bun.spawn, spawnSync and child_process only in sys/spawn.ts (one spawner); bun:ffi only in sys/", async () => {
  expect(await seamViolations("src")).toEqual([]);
});

/**
 * Known cycles between top folders, each an exception with a reason and an owner. The lead
 * removes an entry once the branch that breaks it is merged; a stale entry fails the test below.
 */
const KNOWN_CYCLES: string[] = [
  // none: sandbox <-> container, the last one, went when the infra spec moved to container/spec/
  // (an entry reads "a <-> b", with the reason above it and who breaks it)
];

test("no import cycle between the top folders of src/ (value, type, re-export and dynamic imports)", async () => {
  const cycles = await folderCycles("src");
  expect(cycles.filter((c) => !KNOWN_CYCLES.includes(c.cycle))).toEqual([]);
  // an exception that no longer happens must go (see KNOWN_CYCLES)
  expect({ stale: KNOWN_CYCLES.filter((k) => !cycles.some((c) => c.cycle === k)) }).toEqual({ stale: [] });
});

test("conmon stays a leaf: it imports only sys/, util/, log/, errors.ts and oci/command.ts", async () => {
  const allowed = new Set(["sys", "util", "log", "errors.ts", "oci/command.ts"]);
  const bad = [...(await importsOf("src", "conmon/"))].filter(([to]) => !allowed.has(to)).map(([, why]) => why);
  expect(bad).toEqual([]);
});

test("sys/ is the bottom: it imports only util/ and errors.ts", async () => {
  const bad = [...(await importsOf("src", "sys/"))].filter(([to]) => to !== "util" && to !== "errors.ts").map(([, why]) => why);
  expect(bad).toEqual([]);
});

test("the checkers find planted violations (test/fixtures/architecture/src)", async () => {
  const root = "test/fixtures/architecture/src";
  // a spawn and a child_process outside sys/, a second dlopen inside sys/; a comment is no violation
  expect(await seamViolations(root)).toEqual(["a/spawner.ts: Bun.spawn", "c/shell.ts: child_process", "sys/mount.ts: dlopen"]);
  // a -> b by a value import, b -> a by a type-only one
  expect(await folderCycles(root)).toEqual([{ cycle: "a <-> b", evidence: ["a/spawner.ts -> b/index.ts", "b/index.ts -> a/types.ts"] }]);
  expect([...(await importsOf(root, "conmon/")).keys()]).toEqual(["b", "sys"]);
});
