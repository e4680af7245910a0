// Shared by test/e2e/monitor-*.test.ts: hand-made OCI bundles (busybox rootfs, `runc spec`
// adjusted), the monitor run from source, and cleanup of every container a test created.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { MonitorConfig } from "../../src/monitor/index.ts";

/** The OCI runtime the monitor tests drive. */
export const RUNC = Bun.which("runc") ?? "/usr/sbin/runc";

/**
 * How the tests run the monitor: from source (`bun src/conmon/dev-entry.ts conmon …`), or the
 * compiled binary named by $CRIO_MONITOR_BINARY (e.g. dist/crio).
 */
export const SELF = process.env.CRIO_MONITOR_BINARY
  ? [resolve(process.env.CRIO_MONITOR_BINARY)]
  : [process.execPath, resolve(import.meta.dir, "../../src/conmon/dev-entry.ts")];

/** True when these tests can run here (root, runc, busybox). */
export function canRun(): boolean {
  return process.getuid?.() === 0 && !!Bun.which("runc") && Bun.file("/bin/busybox").size > 0;
}

/** A temp world for monitors: runc root, monitor dirs, exits, logs, bundles; removes it all. */
export class MonitorWorld {
  readonly dir = mkdtempSync(join(tmpdir(), "crio-mon-"));
  /** runc's state root for this world. */
  readonly runtimeRoot = join(this.dir, "runc");
  readonly config: MonitorConfig = {
    selfCommand: SELF,
    runtime: [RUNC, "--root", this.runtimeRoot],
    socketDir: join(this.dir, "mon"),
    exitDir: join(this.dir, "exits"),
  };
  #ids: string[] = [];
  #n = 0;

  /** A fresh container id (deleted from runc at dispose). */
  id(prefix = "c"): string {
    const id = `${prefix}${++this.#n}-${Math.random().toString(36).slice(2, 8)}`;
    this.#ids.push(id);
    return id;
  }

  /** The CRI log path for `id`. */
  logPath(id: string): string {
    return join(this.dir, "logs", `${id}.log`);
  }

  /** Makes a bundle running `args` (sh -c when a string). */
  bundle(id: string, args: string[] | string, o: { terminal?: boolean; memoryBytes?: number } = {}): string {
    const bundle = join(this.dir, "bundles", id);
    const rootfs = join(bundle, "rootfs");
    mkdirSync(join(rootfs, "bin"), { recursive: true });
    for (const d of ["proc", "dev", "sys", "tmp", "etc"]) mkdirSync(join(rootfs, d), { recursive: true });
    copyFileSync("/bin/busybox", join(rootfs, "bin", "busybox"));
    for (const applet of APPLETS) if (applet !== "busybox") symlinkSync("busybox", join(rootfs, "bin", applet));
    const spec = JSON.parse(SPEC) as Spec;
    spec.process.args = typeof args === "string" ? ["sh", "-c", args] : args;
    spec.process.terminal = !!o.terminal;
    spec.process.env = ["PATH=/bin", "TERM=xterm", "HOME=/"];
    spec.root = { path: "rootfs", readonly: false };
    if (o.memoryBytes) spec.linux.resources = { ...spec.linux.resources, memory: { limit: o.memoryBytes, swap: o.memoryBytes } };
    writeFileSync(join(bundle, "config.json"), JSON.stringify(spec, null, 1));
    return bundle;
  }

  /** runc state of `id` (undefined when runc does not know it). */
  async state(id: string): Promise<{ status: string; pid: number } | undefined> {
    const p = Bun.spawn([RUNC, "--root", this.runtimeRoot, "state", id], { stdout: "pipe", stderr: "ignore" });
    const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
    return code === 0 ? (JSON.parse(out) as { status: string; pid: number }) : undefined;
  }

  /** `runc start` / `runc kill`. */
  async runc(...args: string[]): Promise<void> {
    const p = Bun.spawn([RUNC, "--root", this.runtimeRoot, ...args], { stdout: "ignore", stderr: "pipe" });
    const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
    if (code !== 0) throw new Error(`runc ${args.join(" ")}: ${err}`);
  }

  /** The CRI log of `id`, as lines. */
  logLines(id: string): string[] {
    return readFileSync(this.logPath(id), "utf8").split("\n").filter(Boolean);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const id of this.#ids) {
      const p = Bun.spawn([RUNC, "--root", this.runtimeRoot, "delete", "--force", id], { stdout: "ignore", stderr: "ignore" });
      await p.exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The payloads of CRI log lines: [stream, tag, text]. */
export function records(lines: string[]): Array<[string, string, string]> {
  return lines.map((l) => {
    const m = /^\S+Z (stdout|stderr) ([FP]) (.*)$/s.exec(l);
    if (!m) throw new Error(`not a CRI log line: ${JSON.stringify(l)}`);
    return [m[1]!, m[2]!, m[3]!];
  });
}

// --- internal ---

interface Spec {
  process: { args: string[]; terminal: boolean; env: string[] };
  root: { path: string; readonly: boolean };
  linux: { resources?: Record<string, unknown> };
}

const APPLETS = Bun.spawnSync(["/bin/busybox", "--list"]).stdout.toString().split("\n").filter(Boolean);

const SPEC = (() => {
  const d = mkdtempSync(join(tmpdir(), "crio-spec-"));
  try {
    Bun.spawnSync([RUNC, "spec"], { cwd: d });
    return readFileSync(join(d, "config.json"), "utf8");
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
})();
