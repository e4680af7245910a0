// Recording fake CNI plugins: shell scripts that log every call (CNI_* env and stdin) and answer
// from control files, so CNI protocol handling is tested without root or real networking.
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface FakeCall {
  n: number;
  type: string;
  cmd: string;
  env: Record<string, string>;
  stdin: Record<string, unknown>;
}

export interface FakePlugins {
  pluginDir: string;
  /** What ADD prints for this plugin type. */
  setResult(type: string, result: unknown): void;
  /** Makes `cmd` of `type` exit 1 printing `out` (a CNI error object or raw text). */
  fail(type: string, cmd: string, out: unknown): void;
  heal(type: string, cmd: string): void;
  calls(): FakeCall[];
  clearCalls(): void;
}

/** Creates fake plugins of the given types under `dir`. */
export function fakePlugins(dir: string, types: string[]): FakePlugins {
  const pluginDir = join(dir, "bin");
  const ctl = join(dir, "ctl");
  mkdirSync(pluginDir, { recursive: true });
  mkdirSync(ctl, { recursive: true });
  for (const t of types) {
    const p = join(pluginDir, t);
    writeFileSync(
      p,
      `#!/bin/sh
CTL='${ctl}'; T='${t}'
n=$(cat "$CTL/seq" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$CTL/seq"
f=$(printf 'call-%04d-%s-%s' "$n" "$T" "$CNI_COMMAND")
cat > "$CTL/$f.stdin"
env | grep '^CNI_' | sort > "$CTL/$f.env"
if [ -f "$CTL/$T.$CNI_COMMAND.fail" ]; then cat "$CTL/$T.$CNI_COMMAND.fail"; exit 1; fi
if [ "$CNI_COMMAND" = ADD ]; then cat "$CTL/$T.result"; fi
exit 0
`,
    );
    chmodSync(p, 0o755);
    writeFileSync(join(ctl, `${t}.result`), JSON.stringify({ cniVersion: "1.0.0" }));
  }
  return {
    pluginDir,
    setResult: (t, r) => writeFileSync(join(ctl, `${t}.result`), JSON.stringify(r)),
    fail: (t, cmd, out) => writeFileSync(join(ctl, `${t}.${cmd}.fail`), typeof out === "string" ? out : JSON.stringify(out)),
    heal: (t, cmd) => rmSync(join(ctl, `${t}.${cmd}.fail`), { force: true }),
    calls: () =>
      readdirSync(ctl)
        .filter((f) => f.startsWith("call-") && f.endsWith(".env"))
        .sort()
        .map((f) => {
          const [, n, type, cmd] = f.slice(0, -4).split("-") as [string, string, string, string];
          const env = Object.fromEntries(
            readFileSync(join(ctl, f), "utf8")
              .split("\n")
              .filter(Boolean)
              .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
          );
          const text = readFileSync(join(ctl, f.replace(/\.env$/, ".stdin")), "utf8");
          return { n: Number(n), type, cmd, env, stdin: text ? JSON.parse(text) : {} };
        }),
    clearCalls: () => {
      for (const f of readdirSync(ctl)) if (f.startsWith("call-")) rmSync(join(ctl, f));
    },
  };
}
