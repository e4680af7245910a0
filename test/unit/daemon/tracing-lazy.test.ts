// enable_tracing costs nothing when off: the OpenTelemetry SDK is imported by src/daemon/tracing.ts
// only, and that module only by the dynamic import in daemon/start.ts's startTracing, called only
// when enable_tracing is true. Checked statically and by loading the daemon's modules in a fresh
// process and listing what was evaluated.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { traced, traceAttrs, currentTracer } from "../../../src/log/trace.ts";

const ROOT = join(import.meta.dir, "..", "..", "..");

test("only daemon/tracing.ts imports @opentelemetry, and only start.ts's dynamic import loads it", async () => {
  const importers: string[] = [];
  const tracingImporters: string[] = [];
  for await (const f of new Bun.Glob("src/**/*.ts").scan(ROOT)) {
    const text = await Bun.file(join(ROOT, f)).text();
    if (/from "@opentelemetry\//.test(text)) importers.push(f);
    if (/from "\.{1,2}\/(daemon\/)?tracing\.ts"/.test(text)) tracingImporters.push(f);
  }
  expect(importers).toEqual(["src/daemon/tracing.ts"]);
  expect(tracingImporters).toEqual([]); // no static import of it anywhere
  const start = await Bun.file(join(ROOT, "src/daemon/start.ts")).text();
  expect(start.match(/import\("\.\/tracing\.ts"\)/g)).toHaveLength(1);
  expect(start).toMatch(/if \(config\.tracing\.enableTracing\) \{\s+try \{\s+await startTracing\(config\)/);
});

test("loading the daemon's modules evaluates no OpenTelemetry code (and the check can see it when loaded)", async () => {
  const script = `
    await import(${JSON.stringify(join(ROOT, "src/cli/daemon.ts"))});
    await import(${JSON.stringify(join(ROOT, "src/daemon/start.ts"))});
    const before = Object.keys(require.cache).filter((k) => k.includes("opentelemetry") || k.endsWith("daemon/tracing.ts"));
    await import(${JSON.stringify(join(ROOT, "src/daemon/tracing.ts"))});
    const after = Object.keys(require.cache).filter((k) => k.includes("opentelemetry")).length;
    console.log(JSON.stringify({ before, after, total: Object.keys(require.cache).length }));
  `;
  const p = Bun.spawnSync([process.execPath, "-e", script], { cwd: ROOT, stderr: "pipe" });
  expect(p.stderr.toString()).toBe("");
  const r = JSON.parse(p.stdout.toString().trim().split("\n").at(-1)!);
  expect(r.before).toEqual([]);
  expect(r.after).toBeGreaterThan(10); // the SDK, once the tracing module is imported
  expect(r.total).toBeGreaterThan(100); // the daemon's modules were loaded
});

test("with no tracer, traced() only runs the step and traceAttrs() does nothing", async () => {
  expect(currentTracer()).toBeUndefined();
  traceAttrs({ a: 1 });
  expect(await traced("x", async () => 42)).toBe(42);
  await expect(
    traced("x", async () => {
      throw new Error("boom");
    }),
  ).rejects.toThrow("boom");
});
