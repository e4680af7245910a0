import { expect, test } from "bun:test";
import { concatBytes } from "../../../src/util/bytes.ts";

test("concatBytes joins in order; one part is returned as is; none is empty", () => {
  const a = new Uint8Array([1, 2]);
  expect(concatBytes([a, new Uint8Array([]), new Uint8Array([3])])).toEqual(new Uint8Array([1, 2, 3]));
  expect(concatBytes([a])).toBe(a);
  expect(concatBytes([])).toEqual(new Uint8Array([]));
  expect(concatBytes([a, a], 4)).toEqual(new Uint8Array([1, 2, 1, 2]));
});
