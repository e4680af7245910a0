import { expect, test } from "bun:test";
import { RuntimeError } from "../../../src/errors.ts";
import { TokenCache } from "../../../src/streaming/tokens.ts";

test("a token is URL-safe, random and consumable once", () => {
  const c = new TokenCache<string>({ ttlMs: 60_000, max: 10 });
  const a = c.insert("exec-a");
  const b = c.insert("exec-b");
  expect(a).toMatch(/^[A-Za-z0-9_-]{22}$/);
  expect(a).not.toBe(b);
  expect(c.consume(a)).toBe("exec-a");
  expect(c.consume(a)).toBeUndefined(); // reuse
  expect(c.consume("nope")).toBeUndefined();
  expect(c.consume(b)).toBe("exec-b");
});

test("tokens expire after the TTL, and expired ones free their place", () => {
  let now = 1000;
  const c = new TokenCache<number>({ ttlMs: 60_000, max: 2, now: () => now });
  const t1 = c.insert(1);
  c.insert(2);
  now += 60_000;
  expect(c.consume(t1)).toBe(1); // still valid at exactly the TTL
  expect(() => c.insert(3)).not.toThrow(); // t1 consumed: room for one
  expect(() => c.insert(4)).toThrow(RuntimeError);
  now += 1;
  const t5 = c.insert(5); // token 2 expired and was collected
  now += 60_001;
  expect(c.consume(t5)).toBeUndefined();
});

test("a full cache refuses with resource-exhausted", () => {
  const c = new TokenCache<number>({ ttlMs: 60_000, max: 1 });
  c.insert(1);
  try {
    c.insert(2);
    throw new Error("not refused");
  } catch (e) {
    expect((e as RuntimeError).kind).toBe("resource-exhausted");
  }
});
