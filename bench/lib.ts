import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** bench/RESULTS.md: each benchmark owns one section between markers and rewrites only it. */
export const RESULTS = join(import.meta.dir, "RESULTS.md");

/** Replaces (or appends) the section `name` of RESULTS.md. */
export function writeSection(name: string, markdown: string): void {
  const begin = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  let text = existsSync(RESULTS) ? readFileSync(RESULTS, "utf8") : "# Benchmark results\n\nWritten by the scripts in bench/; medians and ratios (the machines are shared and noisy).\n";
  const block = `${begin}\n${markdown.trim()}\n${end}`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(RESULTS, text);
}

/** The q-quantile (0..1) of a list of numbers. */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

/** The median. */
export const median = (xs: number[]) => quantile(xs, 0.5);

/** A number with a fixed number of decimals. */
export const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");

/** Machine facts for the report header. */
export function machine(): string {
  const cpus = readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown cpu";
  return `${new Date().toISOString().slice(0, 10)}, ${navigator.hardwareConcurrency} cores (${cpus}), Bun ${Bun.version}`;
}
