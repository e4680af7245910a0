/**
 * Helpers of the image e2e tests: a temp ImageService, registries.conf writing, and a counting
 * (or misbehaving) HTTP proxy in front of a test registry. Not a test file itself.
 */
import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ImageService, type ImageServiceOptions } from "../../src/image/index.ts";
import type { Registry } from "../support/registry.ts";

/** A temp dir with an ImageService rooted in it; dispose removes everything. */
export interface TestImages {
  dir: string;
  svc: ImageService;
  root: string;
  /** Writes registries.conf (TOML text) and reloads the service. */
  setRegistries(toml: string): void;
  /** Names in <root>/layers and <root>/tmp (crash-safety checks). */
  layerDirs(): string[];
  tempEntries(): string[];
  [Symbol.asyncDispose](): Promise<void>;
}

/** Creates a service whose registries.conf marks every given plain-HTTP registry host insecure. */
export async function testImages(insecureHosts: string[], opts: Partial<ImageServiceOptions> = {}): Promise<TestImages> {
  const dir = mkdtempSync(join(process.env.CRIO_TEST_TMP ?? tmpdir(), "crio-image-"));
  const root = join(dir, "images");
  const conf = join(dir, "registries.conf");
  writeFileSync(conf, insecureRegistries(insecureHosts));
  mkdirSync(join(dir, "registries.conf.d"));
  const svc = new ImageService({ root, registriesConfPath: conf, registriesConfDir: join(dir, "registries.conf.d"), certsDir: join(dir, "certs.d"), ...opts });
  await svc.init();
  return {
    dir,
    svc,
    root,
    setRegistries(toml: string) {
      writeFileSync(conf, toml);
      svc.reload();
    },
    layerDirs: () => readdirSync(join(root, "layers")),
    tempEntries: () => readdirSync(join(root, "tmp")),
    async [Symbol.asyncDispose]() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** registries.conf text with one insecure [[registry]] per host. */
export function insecureRegistries(hosts: string[], extra = ""): string {
  return hosts.map((h) => `[[registry]]\nlocation = "${h}"\ninsecure = true\n`).join("\n") + extra;
}

/** What a proxy does with blob requests. */
export type ProxyMode = "pass" | "stall-blobs" | "corrupt-blobs" | "fail-500";

/** A plain-HTTP proxy on 127.0.0.1 in front of a registry, counting requests by path. */
export interface RegistryProxy {
  host: string;
  /** GET requests per path (e.g. "/v2/busybox/blobs/sha256:…"). */
  counts: Map<string, number>;
  mode: ProxyMode;
  /** Blob GETs seen (all paths). */
  blobGets(): number;
  stop(): void;
  [Symbol.dispose](): void;
}

/** Starts a proxy that forwards to `reg` (plain HTTP registries only). */
export function startProxy(reg: Registry, mode: ProxyMode = "pass"): RegistryProxy {
  const counts = new Map<string, number>();
  const stalled: Array<() => void> = [];
  const p: RegistryProxy = {
    host: "",
    counts,
    mode,
    blobGets: () => [...counts].filter(([k]) => k.includes("/blobs/")).reduce((n, [, v]) => n + v, 0),
    stop: () => {
      for (const s of stalled) s();
      server.stop(true);
    },
    [Symbol.dispose]: () => p.stop(),
  };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const u = new URL(req.url);
      if (req.method === "GET") counts.set(u.pathname, (counts.get(u.pathname) ?? 0) + 1);
      const isBlob = u.pathname.includes("/blobs/");
      if (p.mode === "fail-500") return new Response("down for maintenance", { status: 500 });
      if (isBlob && p.mode === "stall-blobs") return new Promise<Response>((resolve) => stalled.push(() => resolve(new Response("", { status: 503 }))));
      const headers = new Headers(req.headers);
      headers.delete("host");
      const res = await fetch(`${reg.url}${u.pathname}${u.search}`, { method: req.method, headers, redirect: "manual", decompress: false } as RequestInit);
      if (isBlob && p.mode === "corrupt-blobs" && res.ok) {
        const body = new Uint8Array(await res.arrayBuffer());
        if (body.length > 0) body[body.length >> 1]! ^= 0xff;
        return new Response(body, { status: res.status, headers: res.headers });
      }
      return new Response(res.body, { status: res.status, headers: res.headers });
    },
  });
  p.host = `127.0.0.1:${server.port}`;
  return p;
}

/** The error a promise rejects with (fails the test when it resolves). */
export async function rejection(p: Promise<unknown>): Promise<{ kind: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { kind: string; message: string };
  }
  throw new Error("expected the promise to reject");
}
