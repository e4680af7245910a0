import { mkdtempSync, rmSync, writeFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { socketAnswers } from "../src/sys/unix-socket.ts";
import { shortSocketPath } from "../src/sys/short-path.ts";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { criClient, type CriClient } from "./support/cri-client.ts";

/** The compiled binary under test ($CRIO_BINARY or dist/crio). */
export const CRIO = resolve(process.env.CRIO_BINARY ?? join(import.meta.dir, "..", "dist", "crio"));

/** A temporary directory removed on dispose. */
export function tempDir(prefix = "crio-test-"): { path: string; [Symbol.dispose](): void } {
  const path = mkdtempSync(join(process.env.CRIO_TEST_TMP ?? tmpdir(), prefix));
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

/** Polls `fn` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000, what = "condition"): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (let delay = 5; ; delay = Math.min(delay * 2, 200)) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await Bun.sleep(delay);
  }
}

export interface DaemonOptions {
  /** Extra TOML, written as the drop-in crio.conf.d/00-test.conf. */
  config?: string;
  /** Extra command-line arguments. */
  args?: string[];
  env?: Record<string, string>;
  /** Reuse these directories (restart tests). */
  dir?: string;
  /** Do not wait for the socket. */
  noWait?: boolean;
  logLevel?: string;
  /**
   * Every path deep: the daemon's dir gets LONG_PATH_PADDING more characters, so root, runroot
   * (`<dir>/run`, not the short `/run/crt-…`), log_dir and the listen socket are each over 150
   * characters, and every unix socket below them is far beyond sun_path's 107 bytes.
   */
  longPaths?: boolean;
  /** Another compiled binary than CRIO (A/B benches). */
  binary?: string;
}

/** Three directory levels (186 characters with their slashes) that make a path deep. */
export const LONG_PATH_PADDING = Array.from({ length: 3 }, (_, i) => `${i}-a-directory-name-long-enough-to-push-unix-sockets-past-sun-path`).join("/");

/** A daemon under test: the compiled binary on a temp socket with temp roots. */
export interface TestDaemon {
  dir: string;
  socket: string;
  configFile: string;
  configDir: string;
  root: string;
  runroot: string;
  /** runtime_root of the runc handler. */
  runcRoot: string;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  cri: CriClient;
  /** Everything the daemon wrote to stderr so far. */
  logs(): string;
  /** Waits for a log line matching `re`. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends a signal and waits for exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts the compiled daemon with every path pointed at a temporary directory. */
export async function startDaemon(o: DaemonOptions = {}): Promise<TestDaemon> {
  const top = o.dir ? undefined : mkdtempSync(join(process.env.CRIO_TEST_TMP ?? tmpdir(), "crio-d-"));
  const dir = o.dir ?? (o.longPaths ? join(top!, LONG_PATH_PADDING) : top!);
  const socket = join(dir, "crio.sock");
  const configFile = join(dir, "crio.conf");
  const configDir = join(dir, "crio.conf.d");
  const root = join(dir, "root");
  // runroot holds unix sockets (monitor/<64-hex id>/attach): short, under /run, unless asked deep.
  const runroot = existsSync(configFile)
    ? (/^runroot = "(.*)"$/m.exec(readFileSync(configFile, "utf8"))?.[1] ?? join(dir, "run"))
    : o.longPaths
      ? join(dir, "run")
      : `/run/crt-${randomBytes(4).toString("hex")}`;

  mkdirSync(configDir, { recursive: true });
  if (!o.dir || !existsSync(configFile))
    writeFileSync(
      configFile,
      [
        "[crio]",
        `root = ${JSON.stringify(root)}`,
        `runroot = ${JSON.stringify(runroot)}`,
        `log_dir = ${JSON.stringify(join(dir, "logs"))}`,
        `version_file = ${JSON.stringify(join(dir, "version"))}`,
        `clean_shutdown_file = ${JSON.stringify(join(dir, "clean.shutdown"))}`,
        "[crio.api]",
        `listen = ${JSON.stringify(socket)}`,
        "[crio.runtime]",
        `log_level = ${JSON.stringify(o.logLevel ?? "debug")}`,
        `cgroup_manager = "cgroupfs"`,
        "[crio.runtime.runtimes.runc]",
        `runtime_root = ${JSON.stringify(join(dir, "runc"))}`,
        "[crio.runtime.runtimes.crun]",
        `runtime_root = ${JSON.stringify(join(dir, "crun"))}`,
        "[crio.image]",
        `signature_policy = ${JSON.stringify(join(dir, "policy.json"))}`,
        `registries_conf = ${JSON.stringify(join(dir, "registries.conf"))}`,
        `registries_conf_dir = ${JSON.stringify(join(dir, "registries.conf.d"))}`,
        `certs_dir = ${JSON.stringify(join(dir, "certs.d"))}`,
        "[crio.network]",
        `network_dir = ${JSON.stringify(join(dir, "cni", "net.d"))}`,
        "",
      ].join("\n"),
    );
  if (o.config) writeFileSync(join(configDir, "00-test.conf"), o.config);
  if (!existsSync(join(dir, "policy.json"))) writeFileSync(join(dir, "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
  if (!existsSync(join(dir, "registries.conf"))) writeFileSync(join(dir, "registries.conf"), "");
  const proc = Bun.spawn([o.binary ?? CRIO, "--config", configFile, "--config-dir", configDir, ...(o.args ?? [])], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    cwd: dir,
    env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...o.env },
  });
  let logs = "";
  const waiters: Array<() => void> = [];
  void (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stderr) {
      logs += dec.decode(chunk, { stream: true });
      for (const w of waiters.splice(0)) w();
    }
  })();
  void (async () => {
    for await (const chunk of proc.stdout) logs += new TextDecoder().decode(chunk);
  })();
  // Connect only once the socket exists: grpc-js backs off ~1 s after a failed first connect.
  if (!o.noWait) {
    await waitFor(
      () => {
        if (proc.exitCode !== null) throw new Error(`daemon exited with ${proc.exitCode}: ${logs.slice(-2000)}`);
        // Wait until something accepts on the socket (a restart may find a stale socket file).
        return existsSync(socket) && socketAnswers(socket);
      },
      20_000,
      "the daemon's socket file",
    ).catch(async (e) => {
      proc.kill("SIGKILL");
      throw e;
    });
  }
  // a socket path beyond sun_path: the client connects through a short alias of its dir
  const alias = Buffer.byteLength(socket) > 107 ? shortSocketPath(socket) : undefined;
  const cri = criClient(alias?.path ?? socket);
  const d: TestDaemon = {
    dir,
    socket,
    configFile,
    configDir,
    root,
    runroot,
    proc,
    cri,
    runcRoot: join(dir, "runc"),
    logs: () => logs,
    async waitForLog(re, timeoutMs = 20_000) {
      return await waitFor(() => logs.split("\n").find((l) => re.test(l)), timeoutMs, `log line ${re}`);
    },
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return await proc.exited;
    },
    async [Symbol.asyncDispose]() {
      cri.close();
      alias?.release();
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 15_000);
        await proc.exited;
        clearTimeout(t);
      }
      if (!o.dir && !process.env.CRIO_TEST_KEEP) removeDaemonDirs(top!, runroot);
    },
  };
  if (!o.noWait) {
    try {
      await waitFor(
        async () => {
          if (proc.exitCode !== null) throw new Error(`daemon exited with ${proc.exitCode}: ${logs.slice(-2000)}`);
          return (await cri.status({}, { timeoutMs: 1000 })) ? true : undefined;
        },
        20_000,
        "the daemon's socket",
      );
    } catch (e) {
      await d[Symbol.asyncDispose]();
      throw e;
    }
  }
  return d;
}

/** Removes a test daemon's directories: unmounts what is left below them first. */
export function removeDaemonDirs(dir: string, runroot: string): void {
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m.startsWith(dir + "/") || m.startsWith(runroot + "/") || m === runroot)
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) Bun.spawnSync(["umount", "-l", m]);
  rmSync(runroot, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
}
