/**
 * Helpers of the image e2e tests on the compiled daemon (image-daemon*.test.ts): a daemon whose
 * registries.conf can be rewritten and reloaded with SIGHUP, `crio pull` beside it, a throttling
 * and counting proxy in front of a test registry, gRPC error capture and store checks.
 * Not a test file itself.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServiceError } from "@grpc/grpc-js";
import { CRIO, removeDaemonDirs, startDaemon, waitFor, type TestDaemon } from "../harness.ts";
import type { Registry } from "../support/registry.ts";

/** A compiled daemon for image tests; dispose stops it and removes its directories. */
export interface ImageDaemon {
  d: TestDaemon;
  /** The image store (<root>/images). */
  store: string;
  /** Writes registries.conf, sends SIGHUP and waits until the daemon has reloaded it. */
  setRegistries(toml: string): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts the compiled daemon with `registries` as its registries.conf and `config` as a drop-in. */
export async function startImageDaemon(o: { registries: string; config?: string }): Promise<ImageDaemon> {
  const dir = mkdtempSync(join(process.env.CRIO_TEST_TMP ?? tmpdir(), "crio-img-"));
  writeFileSync(join(dir, "registries.conf"), o.registries);
  let d: TestDaemon;
  try {
    d = await startDaemon({ dir, config: o.config });
  } catch (e) {
    removeDaemonDirs(dir, "/nonexistent");
    throw e;
  }
  return {
    d,
    store: join(d.root, "images"),
    async setRegistries(toml) {
      writeFileSync(join(dir, "registries.conf"), toml);
      await reload(d);
    },
    async [Symbol.asyncDispose]() {
      await d[Symbol.asyncDispose]();
      if (!process.env.CRIO_TEST_KEEP) removeDaemonDirs(dir, d.runroot);
    },
  };
}

/** Sends SIGHUP and waits for the daemon's "reloaded" (or "reload failed": thrown) log line. */
export async function reload(d: TestDaemon): Promise<void> {
  const re = /configuration reloaded|configuration reload failed/g;
  const before = d.logs().match(re)?.length ?? 0;
  d.proc.kill("SIGHUP");
  const line = await waitFor(
    () => {
      const all = d
        .logs()
        .split("\n")
        .filter((l) => /configuration reloaded|configuration reload failed/.test(l));
      return all.length > before ? all[all.length - 1] : undefined;
    },
    10_000,
    "the SIGHUP reload",
  );
  if (/reload failed/.test(line)) throw new Error(`reload failed: ${line}`);
}

/** Output of one `crio pull` run. */
export interface PullRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Starts `crio pull ARGS…` with the daemon's configuration (same root); `done` resolves when it exits. */
export function spawnPull(d: TestDaemon, args: string[], o: { tty?: boolean } = {}): { proc: ReturnType<typeof Bun.spawn>; done: Promise<PullRun> } {
  const argv = [CRIO, "--config", d.configFile, "--config-dir", d.configDir, "pull", ...args];
  // script(1) gives the command a pseudo-terminal (the progress bars' path); stdout and stderr merge.
  const cmd = o.tty ? ["script", "-qfec", argv.map(shellQuote).join(" "), "/dev/null"] : argv;
  const proc = Bun.spawn(cmd, {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", COLUMNS: "100" },
  });
  const done = (async () => {
    const [stdout, stderr, code] = await Promise.all([
      new Response(proc.stdout as ReadableStream).text(),
      new Response(proc.stderr as ReadableStream).text(),
      proc.exited,
    ]);
    return { code, stdout, stderr };
  })();
  return { proc, done };
}

/** Runs `crio pull ARGS…` to the end. */
export function crioPull(d: TestDaemon, args: string[], o: { tty?: boolean } = {}): Promise<PullRun> {
  return spawnPull(d, args, o).done;
}

/** The gRPC error a call rejects with (fails the test when it resolves). */
export async function grpcError(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as ServiceError;
    return { code: err.code, details: err.details };
  }
  throw new Error("expected the call to fail");
}

/** What the image store holds on disk: the index's images, layer dirs no image uses, temp entries. */
export function storeState(store: string): { images: string[]; strayLayers: string[]; temps: string[] } {
  const idxPath = join(store, "images.json");
  const idx = existsSync(idxPath) ? (JSON.parse(readFileSync(idxPath, "utf8")) as { images: Record<string, { layers: string[] }> }) : { images: {} };
  const used = new Set(Object.values(idx.images).flatMap((i) => i.layers.map((l) => l.slice("sha256:".length))));
  const list = (d: string) => (existsSync(join(store, d)) ? readdirSync(join(store, d)) : []);
  return { images: Object.keys(idx.images).sort(), strayLayers: list("layers").filter((l) => !used.has(l)), temps: list("tmp") };
}

/** A plain-HTTP proxy on 127.0.0.1 in front of a registry: counts GETs by path, throttles blob bodies. */
export interface ThrottleProxy {
  host: string;
  /** GETs by path ("/v2/NAME/blobs/sha256:…", "/v2/NAME/manifests/TAG"). */
  counts: Map<string, number>;
  /** Bytes per second for blob bodies; 0 = no limit. */
  rate: number;
  /** GETs of blobs, all paths together. */
  blobGets(): number;
  stop(): void;
  [Symbol.dispose](): void;
}

/** Starts a proxy forwarding to `reg` (plain HTTP) and sending blob bodies at `rate` bytes/s. */
export function startThrottleProxy(reg: Registry, rate = 0): ThrottleProxy {
  const counts = new Map<string, number>();
  const p: ThrottleProxy = {
    host: "",
    counts,
    rate,
    blobGets: () => [...counts].filter(([k]) => k.includes("/blobs/")).reduce((n, [, v]) => n + v, 0),
    stop: () => server.stop(true),
    [Symbol.dispose]: () => p.stop(),
  };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const u = new URL(req.url);
      if (req.method === "GET") counts.set(u.pathname, (counts.get(u.pathname) ?? 0) + 1);
      const headers = new Headers(req.headers);
      headers.delete("host");
      const res = await fetch(`${reg.url}${u.pathname}${u.search}`, { method: req.method, headers, redirect: "manual", decompress: false } as RequestInit);
      const body = u.pathname.includes("/blobs/") && res.body && req.method === "GET" ? throttled(res.body, () => p.rate) : res.body;
      return new Response(body, { status: res.status, headers: res.headers });
    },
  });
  p.host = `127.0.0.1:${server.port}`;
  return p;
}

// --- internal ---

/** Re-chunks a body into slices sent every 50 ms so that it flows at `rate()` bytes/s. */
function throttled(body: ReadableStream<Uint8Array>, rate: () => number): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let pending: Uint8Array | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      if (!pending || pending.length === 0) {
        const { value, done } = await reader.read();
        if (done) return ctl.close();
        pending = value;
      }
      const r = rate();
      if (r <= 0) {
        ctl.enqueue(pending);
        pending = undefined;
        return;
      }
      const n = Math.max(1, Math.floor(r / 20));
      const slice = pending.subarray(0, n);
      pending = pending.subarray(n);
      await Bun.sleep(50); // the pacing itself, not a wait for a condition
      ctl.enqueue(slice);
    },
    cancel(reason) {
      void reader.cancel(reason);
    },
  });
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@=+-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}
