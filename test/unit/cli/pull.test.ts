// The progress views of `crio pull`: plain lines and terminal bars, fed with PullProgress events.
import { expect, test } from "bun:test";
import { barView, bytes, lineView } from "../../../src/cli/pull.ts";
import type { PullProgress } from "../../../src/image/index.ts";

const A = `sha256:${"a".repeat(64)}`;
const B = `sha256:${"b".repeat(64)}`;
const events: PullProgress[] = [
  { type: "resolving", ref: "example.com/app:1", source: "mirror.local/app:1" },
  {
    type: "manifest",
    ref: "example.com/app:1",
    source: "mirror.local/app:1",
    manifestDigest: `sha256:${"m".repeat(64)}`,
    layers: [
      { digest: A, size: 2_000_000, mediaType: "x" },
      { digest: B, size: 500, mediaType: "x" },
    ],
  },
  { type: "layer", digest: B, state: "exists", current: 500, total: 500 },
  { type: "layer", digest: A, state: "downloading", current: 0, total: 2_000_000 },
  { type: "layer", digest: A, state: "downloading", current: 1_000_000, total: 2_000_000 },
  { type: "layer", digest: A, state: "unpacking", current: 10, total: 2_000_000 },
  { type: "layer", digest: A, state: "done", current: 2_000_000, total: 2_000_000 },
  { type: "done", ref: "example.com/app:1", id: `sha256:${"c".repeat(64)}` },
];

test("bytes() uses decimal units", () => {
  expect([0, 999, 1000, 12_345, 2_000_000, 111_700_000, 3e9].map(bytes)).toEqual(["0 B", "999 B", "1.00 kB", "12.3 kB", "2.00 MB", "111.7 MB", "3.00 GB"]);
});

test("plain lines: one per source, manifest and layer state change", () => {
  let out = "";
  const v = lineView((s) => (out += s));
  for (const e of events) v.event(e);
  v.finish();
  expect(out.split("\n")).toEqual([
    "Trying to pull example.com/app:1 from mirror.local/app:1...",
    `Manifest sha256:${"m".repeat(64)}: 2 layers, 2.00 MB`,
    "Layer bbbbbbbbbbbb: already exists",
    "Layer aaaaaaaaaaaa: downloading 2.00 MB",
    "Layer aaaaaaaaaaaa: unpacking",
    "Layer aaaaaaaaaaaa: done",
    `Stored example.com/app:1 as sha256:${"c".repeat(64)}`,
    "",
  ]);
});

test("bars: a block of one line per layer, redrawn in place with cursor-up, within the terminal width", async () => {
  let out = "";
  const v = barView(
    (s) => (out += s),
    () => 80,
    1,
  );
  for (const e of events.slice(0, 5)) v.event(e);
  await Bun.sleep(20); // the redraw timer (1 ms here)
  const frames = out.split("\x1b[2A");
  expect(frames.length).toBeGreaterThanOrEqual(2); // the first draw, then at least one redraw of both lines
  const last = frames.at(-1)!.split("\n").filter(Boolean);
  expect(last.map((l) => l.replace("\r\x1b[2K", ""))).toEqual([
    `aaaaaaaaaaaa downloading [${"=".repeat(14)}>${" ".repeat(13)}] 1.00 MB / 2.00 MB`,
    `bbbbbbbbbbbb exists      [${"=".repeat(28)}] 500 B`,
  ]);
  // bar lines never wrap (the cursor-up count would be off); messages above may
  for (const l of out.split("\n").filter((x) => x.includes("\x1b[2K"))) expect(l.replace(/\x1b\[\d*[A-Z]|\r/g, "").length).toBeLessThan(80);
  for (const e of events.slice(5)) v.event(e);
  v.finish();
  expect(out).toEndWith(`Stored example.com/app:1 as sha256:${"c".repeat(64)}\n`);
  expect(out).toContain("aaaaaaaaaaaa done ");
});
