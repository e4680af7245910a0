// The layout of the test tree, as a test: the e2e files are tests, not a library. Code shared
// with bench/ or with the unit tests lives in test/support/, so nothing outside test/e2e/ may
// import test/e2e/, directly or through another file it imports.
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");

test("bench/ imports nothing from test/e2e/, directly or through the files it imports", async () => {
  const entries: string[] = [];
  for await (const f of new Bun.Glob("bench/**/*.ts").scan(ROOT)) entries.push(join(ROOT, f));
  expect(entries.length).toBeGreaterThan(0);
  expect(await e2eReachedFrom(entries)).toEqual([]);
});

test.each(["test/support", "test/unit", "test/regression", "test/systemd-node"])("%s imports nothing from test/e2e/", async (dir) => {
  const entries: string[] = [];
  for await (const f of new Bun.Glob(`${dir}/**/*.ts`).scan(ROOT)) entries.push(join(ROOT, f));
  expect(entries.length).toBeGreaterThan(0);
  expect(await e2eReachedFrom(entries)).toEqual([]);
});

test("the check sees every form of import (a planted violation)", () => {
  const from = join(ROOT, "bench/x.ts");
  const src = [
    `import { a } from "../test/e2e/a.ts";`,
    `import type { B } from '../test/e2e/b.ts';`,
    `export { c } from "../test/e2e/c.ts";`,
    `import "../test/e2e/d.ts";`,
    `const e = await import("../test/e2e/e.ts");`,
    `import {\n  f,\n} from "../test/e2e/f.ts";`,
    `import { g } from "../test/support/g.ts";`,
    `import { h } from "node:fs";`,
    `// a comment naming test/e2e/robust-crash.test.ts is not an import`,
  ].join("\n");
  expect(relativeImports(from, src).map((p) => relative(ROOT, p))).toEqual([
    "test/e2e/a.ts",
    "test/e2e/b.ts",
    "test/e2e/c.ts",
    "test/e2e/d.ts",
    "test/e2e/e.ts",
    "test/e2e/f.ts",
    "test/support/g.ts",
  ]);
});

// --- internal ---

/** Files under test/e2e/ reached by following relative imports from `entries`, as "importer -> imported". */
async function e2eReachedFrom(entries: string[]): Promise<string[]> {
  const e2e = join(ROOT, "test/e2e") + "/";
  const bad: string[] = [];
  const seen = new Set<string>();
  const queue = [...entries];
  while (queue.length > 0) {
    const file = queue.shift() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const dep of relativeImports(file, await Bun.file(file).text())) {
      if (dep.startsWith(e2e)) bad.push(`${relative(ROOT, file)} -> ${relative(ROOT, dep)}`);
      else if (dep.endsWith(".ts") && !dep.startsWith(join(ROOT, "src") + "/") && existsSync(dep)) queue.push(dep); // (a string in a fixture may look like an import)
    }
  }
  return bad.sort();
}

/** Absolute paths of the relative module specifiers in `src` (static, re-export, side-effect and dynamic imports). */
function relativeImports(file: string, src: string): string[] {
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)(["'])(\.{1,2}\/[^"']+)\1/gm;
  return [...src.matchAll(re)].map((m) => resolve(dirname(file), m[2] as string));
}
