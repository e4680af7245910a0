// Every crio.conf key either has a test that proves what it does (key-proofs.ts PROOFS), or is
// marked noEffect in the schema (one start-up warning, said in `crio config`), or is listed as
// PENDING debt with a reason. A key in none of them fails here, by name.
import { expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { HANDLER_KEYS, TABLE_PATH, allFields, flagOf } from "../../../src/config/schema.ts";
import { PENDING, PROOFS } from "./key-proofs.ts";

const ROOT = join(import.meta.dir, "..", "..", "..");
const keys = [
  ...allFields().map(({ table, field }) => ({ key: `${TABLE_PATH[table]}.${field.toml}`, names: [field.toml, flagOf(field) ?? field.toml], noEffect: field.noEffect })),
  ...Object.keys(HANDLER_KEYS).map((k) => ({ key: `crio.runtime.runtimes.*.${k}`, names: [k], noEffect: undefined as string | undefined })),
];

test("every schema key has a behaviour test, the noEffect marking, or a PENDING reason", () => {
  const missing = keys.filter((k) => !k.noEffect && !PROOFS[k.key] && !PENDING[k.key]).map((k) => k.key);
  if (missing.length) throw new Error(`crio.conf keys with no behaviour test and no noEffect marking: ${missing.join(", ")} — add each to test/unit/config/key-proofs.ts PROOFS with the test that proves it (or mark it noEffect in src/config/schema.ts when it cannot apply)`);
  expect(missing).toEqual([]);
});

test("each proof is a test file that names its key; noEffect keys have no proof", () => {
  const bad: string[] = [];
  for (const k of keys) {
    const file = PROOFS[k.key];
    if (k.noEffect && (file || PENDING[k.key])) bad.push(`${k.key}: marked noEffect and listed in key-proofs.ts`);
    if (!file) continue;
    if (PENDING[k.key]) bad.push(`${k.key}: both proven and PENDING`);
    const path = join(ROOT, file);
    if (!existsSync(path)) {
      bad.push(`${k.key}: ${file} does not exist`);
      continue;
    }
    const text = readFileSync(path, "utf8");
    if (!k.names.some((n) => new RegExp(`(^|[^A-Za-z0-9_-])${n.replace(/-/g, "\\-")}([^A-Za-z0-9_-]|$)`).test(text))) bad.push(`${k.key}: ${file} never names it`);
  }
  expect(bad).toEqual([]);
});

test("key-proofs.ts names only keys the schema has", () => {
  const known = new Set(keys.map((k) => k.key));
  expect([...Object.keys(PROOFS), ...Object.keys(PENDING)].filter((k) => !known.has(k))).toEqual([]);
});

test("the PENDING debt is printed for whoever runs this", () => {
  const ignored = Object.entries(PENDING).filter(([, why]) => why.startsWith("ACCEPTED AND IGNORED"));
  console.log(`crio.conf keys: ${keys.length}; proven ${Object.keys(PROOFS).length}, noEffect ${keys.filter((k) => k.noEffect).length}, pending ${Object.keys(PENDING).length} (accepted and ignored: ${ignored.map(([k]) => k).join(", ") || "none"})`);
  expect(ignored).toEqual([]); // a key accepted and ignored is a bug: fix it or mark it noEffect
});
