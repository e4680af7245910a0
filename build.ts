/**
 * Builds ONE executable, dist/crio, with `bun build --compile` and code splitting, so that a
 * role loads only its own code (the conmon role never evaluates gRPC or image code), and with
 * JSC bytecode compiled in: start-up skips parsing (measured: `crio conmon --version` 9 → 6 ms,
 * `crio version` 20 → 10 ms) and each monitor holds ~80 KB less heap. The binary
 * does not auto-load .env, bunfig.toml, tsconfig.json or package.json from its working directory.
 * It starts with JSC's tier-up thresholds ×10 (`jitPolicy`): the daemon's start-up is run-once
 * code, which then stays in the interpreter instead of keeping the JIT threads busy (measured, A/B:
 * CPU to the first served Status 120 → 70 ms); the daemon resets the policy to 1 once it serves,
 * every other role (main.ts) at once.
 * Do not `strip` the result: that breaks a compiled Bun binary.
 */
const commit = (await Bun.$`git rev-parse --short HEAD`.nothrow().quiet().text()).trim() || "unknown";
const pkg = await Bun.file(new URL("./package.json", import.meta.url)).json();
const target = (process.env.CRIO_BUILD_TARGET ?? `bun-linux-${process.arch === "arm64" ? "arm64" : "x64"}`) as Bun.Build.CompileTarget;
const outfile = process.env.CRIO_BUILD_OUT ?? "dist/crio";

const r = await Bun.build({
  // sys/exec-worker.ts: the daemon's spawner thread (a Worker), loaded from /$bunfs/root/sys/exec-worker.js
  entrypoints: ["src/main.ts", "src/sys/exec-worker.ts"],
  compile: {
    target,
    outfile,
    autoloadDotenv: false,
    autoloadBunfig: false,
    autoloadTsconfig: false,
    autoloadPackageJson: false,
    jitPolicy: 10,
  },
  splitting: true,
  format: "esm",
  bytecode: true,
  minify: true,
  sourcemap: "none",
  define: {
    CRIO_VERSION: JSON.stringify(pkg.version),
    CRIO_COMMIT: JSON.stringify(commit),
    CRIO_BUILD_DATE: JSON.stringify(new Date().toISOString()),
  },
});
if (!r.success) {
  for (const l of r.logs) console.error(l);
  process.exit(1);
}
console.log(`built ${outfile} (${target}, commit ${commit})`);
