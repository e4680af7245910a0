import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CdiRegistry } from "../../../src/container/cdi-registry.ts";
import type { Logger } from "../../../src/log/index.ts";

const root = mkdtempSync(join(tmpdir(), "cdi-reg-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const warnings: string[] = [];
const log = { warn: (m: string) => warnings.push(m), debug: () => {} } as unknown as Logger;

const dev = (kind: string, devices: Array<[string, string]>) =>
  JSON.stringify({ cdiVersion: "0.6.0", kind, devices: devices.map(([name, v]) => ({ name, containerEdits: { env: [`V=${v}`] } })) });

test("later dirs override, same-dir duplicates conflict, bad files are skipped (warned once), changes are seen", () => {
  const [a, b] = [join(root, "a"), join(root, "b")];
  mkdirSync(a);
  mkdirSync(b);
  writeFileSync(
    join(a, "1.json"),
    dev("v.com/c", [
      ["x", "a"],
      ["dup", "1"],
      ["only-a", "a"],
    ]),
  );
  writeFileSync(join(a, "2.yaml"), 'cdiVersion: "0.6.0"\nkind: v.com/c\ndevices:\n  - name: dup\n    containerEdits:\n      env: [V=2]\n');
  writeFileSync(join(b, "1.json"), dev("v.com/c", [["x", "b"]]));
  writeFileSync(join(b, "bad.json"), "{");
  writeFileSync(join(b, "ignored.txt"), "not a spec");
  const reg = new CdiRegistry(() => [a, b, join(root, "missing")], log);
  expect(reg.list()).toEqual(["v.com/c=only-a", "v.com/c=x"]);
  expect(reg.resolve(["v.com/c=x"])[0]!.edits.env).toEqual(["V=b"]);
  expect(() => reg.resolve(["v.com/c=x", "v.com/c=dup", "v.com/c=none"])).toThrow(
    /unresolvable CDI devices v\.com\/c=dup, v\.com\/c=none .*conflicting device "v\.com\/c=dup"/,
  );
  expect(() => reg.resolve(["v.com/c=none"])).toThrow(expect.objectContaining({ kind: "invalid-argument" }));
  reg.list();
  expect(warnings.filter((w) => w.includes("bad.json"))).toHaveLength(1);
  // a change in a dir is picked up at the next lookup
  rmSync(join(a, "2.yaml"));
  writeFileSync(join(b, "new.json"), dev("w.com/d", [["y", "new"]]));
  expect(reg.list()).toEqual(["v.com/c=dup", "v.com/c=only-a", "v.com/c=x", "w.com/d=y"]);
  expect(reg.resolve([])).toEqual([]);
});
