import { expect, test } from "bun:test";
import { defineCommand } from "citty";
import { colorWanted, renderUsage } from "../../../src/cli/usage.ts";

test("colour only on a terminal, never with NO_COLOR or TERM=dumb", () => {
  expect(colorWanted({ isTTY: true }, {})).toBe(true);
  expect(colorWanted({ isTTY: false }, {})).toBe(false);
  expect(colorWanted({}, {})).toBe(false);
  expect(colorWanted({ isTTY: true }, { NO_COLOR: "1" })).toBe(false);
  expect(colorWanted({ isTTY: true }, { TERM: "dumb" })).toBe(false);
});

test("long descriptions wrap under their flag at any width from 40", async () => {
  const cmd = defineCommand({
    meta: { name: "x", description: "d ".repeat(60) },
    args: { "a-very-long-flag-name-indeed": { type: "string", description: "word ".repeat(50) }, f: { type: "boolean", alias: "q", description: "short" } },
  });
  for (const width of [40, 60, 80]) {
    const text = await renderUsage(cmd, undefined, { width, color: false });
    expect(text.split("\n").filter((l) => l.length > width)).toEqual([]);
    expect(text).toContain("  --a-very-long-flag-name-indeed=VALUE\n      word word");
    expect(text).toContain("  -q, --f\n      short");
  }
  expect(await renderUsage(cmd, undefined, { color: true })).toContain("\x1b[36m--f\x1b[39m".replace("--f", "-q, --f"));
});
