// Every crio.conf key either has a test that proves what it does (key-proofs.ts PROOFS), or is
// marked noEffect in the schema (one start-up warning, said in `crio config`). A key in neither
// fails here, by name: there is no list of keys used but unproven.
import { expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { HANDLER_KEYS, TABLE_PATH, allFields, flagOf } from "../../../src/config/schema.ts";
import * as keyProofs from "./key-proofs.ts";

const { PROOFS } = keyProofs;

const ROOT = join(import.meta.dir, "..", "..", "..");
const keys = [
  ...allFields().map(({ table, field }) => ({
    key: `${TABLE_PATH[table]}.${field.toml}`,
    names: [field.toml, flagOf(field) ?? field.toml],
    noEffect: field.noEffect,
  })),
  ...Object.keys(HANDLER_KEYS).map((k) => ({ key: `crio.runtime.runtimes.*.${k}`, names: [k], noEffect: undefined as string | undefined })),
];

test("every schema key has a behaviour test or the noEffect marking", () => {
  const missing = keys.filter((k) => !k.noEffect && !PROOFS[k.key]).map((k) => k.key);
  if (missing.length)
    throw new Error(
      `crio.conf keys with no behaviour test and no noEffect marking: ${missing.join(", ")} — add each to test/unit/config/key-proofs.ts PROOFS with the test that proves it (or mark it noEffect in src/config/schema.ts when it cannot apply)`,
    );
  expect(missing).toEqual([]);
});

test("each proof is a test file that names its key; noEffect keys have no proof", () => {
  const bad: string[] = [];
  for (const k of keys) {
    const file = PROOFS[k.key];
    if (k.noEffect && file) bad.push(`${k.key}: marked noEffect and listed in key-proofs.ts`);
    if (!file) continue;
    const path = join(ROOT, file);
    if (!existsSync(path)) {
      bad.push(`${k.key}: ${file} does not exist`);
      continue;
    }
    const text = readFileSync(path, "utf8");
    if (!k.names.some((n) => new RegExp(`(^|[^A-Za-z0-9_-])${n.replace(/-/g, "\\-")}([^A-Za-z0-9_-]|$)`).test(text)))
      bad.push(`${k.key}: ${file} never names it`);
  }
  expect(bad).toEqual([]);
});

test("key-proofs.ts names only keys the schema has", () => {
  const known = new Set(keys.map((k) => k.key));
  expect(Object.keys(PROOFS).filter((k) => !known.has(k))).toEqual([]);
});

test("key-proofs.ts exports PROOFS alone: no list of keys used but unproven", () => {
  expect(Object.keys(keyProofs)).toEqual(["PROOFS"]);
  console.log(`crio.conf keys: ${keys.length}; proven ${Object.keys(PROOFS).length}, noEffect ${keys.filter((k) => k.noEffect).length}`);
});
