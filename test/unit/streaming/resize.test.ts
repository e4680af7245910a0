import { expect, test } from "bun:test";
import { PassThrough } from "node:stream";
import { AsyncQueue } from "../../../src/streaming/async-queue.ts";
import { JsonObjectScanner, parseTerminalSize, pumpResizeEvents } from "../../../src/streaming/remotecommand/resize.ts";
import type { TerminalSize } from "../../../src/streaming/types.ts";

test("resize messages split anywhere are decoded in order; garbage ends the stream", async () => {
  const r = new PassThrough();
  const q = new AsyncQueue<TerminalSize>();
  pumpResizeEvents(r, q);
  r.write('{"Width":80,"He');
  r.write('ight":24}\n{"width":100,"height":50,"extra":"}"}');
  r.write('{"Width":1}not json{"Width":5,"Height":5}');
  r.end();
  await new Promise((res) => r.once("end", res));
  q.end();
  const got: TerminalSize[] = [];
  for await (const s of q) got.push(s);
  expect(got).toEqual([
    { width: 80, height: 24 },
    { width: 100, height: 50 },
    { width: 1, height: 0 },
  ]);
});

test("sizes must be uint16", () => {
  expect(parseTerminalSize('{"Width":65535,"Height":0}')).toEqual({ width: 65535, height: 0 });
  expect(parseTerminalSize('{"Width":65536,"Height":1}')).toBeUndefined();
  expect(parseTerminalSize('{"Width":-1}')).toBeUndefined();
  expect(parseTerminalSize("[1,2]")).toBeUndefined();
  const sc = new JsonObjectScanner();
  expect({ got: sc.push('{"a":1} 42 {"b":2}'), failed: sc.failed }).toEqual({ got: ['{"a":1}'], failed: true });
});
