import { expect, test } from "bun:test";
import { Status as status } from "../../../src/cri/grpc-server.ts";
import { CODE } from "../../../src/cri/status.ts";
import { RuntimeError, wrap } from "../../../src/errors.ts";

test("every error kind maps to a gRPC code; wrap keeps the kind", () => {
  expect(CODE["not-found"]).toBe(status.NOT_FOUND);
  expect(CODE["invalid-argument"]).toBe(status.INVALID_ARGUMENT);
  const e = wrap(new RuntimeError("not-found", 'container "x" not found'), "stop");
  expect(e.kind).toBe("not-found");
  expect(e.message).toBe('stop: container "x" not found');
  expect(RuntimeError.from(Object.assign(new Error("disk"), { code: "ENOSPC" })).kind).toBe("resource-exhausted");
});
