/**
 * A loopback OCI registry for tests: Debian's `docker-registry` (CNCF distribution 2.8) on
 * 127.0.0.1 and a free port, with its storage, config, TLS material and htpasswd file in one temp
 * dir. Optional TLS (a throw-away CA plus a server certificate for 127.0.0.1, made with openssl)
 * and basic auth (a bcrypt htpasswd file).
 */
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { existsSync, openSync, closeSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../../src/sys/exec.ts";

/** The registry binary, from Debian's docker-registry package. */
export const REGISTRY_BIN = "/usr/bin/docker-registry";

/** Options for {@link startRegistry}. */
export interface RegistryOptions {
  /** Serve HTTPS with a certificate signed by a fresh CA (see Registry.caFile / certDir). */
  tls?: boolean;
  /** Require HTTP basic auth with this one user. */
  htpasswd?: { user: string; password: string };
  /** The registry binary; default {@link REGISTRY_BIN}. */
  bin?: string;
}

/** A running registry; stop() (or `await using`) kills it and removes its temp dir. */
export interface Registry {
  /** "127.0.0.1:PORT": the host part of image references. */
  host: string;
  /** "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT". */
  url: string;
  /** The temp dir holding storage, config, log, certificates and skopeo settings. */
  dir: string;
  /** PEM of the CA that signed the server certificate (tls only). */
  caFile?: string;
  /** A directory holding only `ca.crt`, in the layout skopeo's --cert-dir and certs.d expect (tls only). */
  certDir?: string;
  /** The credentials the registry requires (htpasswd only). */
  auth?: { user: string; password: string };
  /** The registry's log file (stdout and stderr). */
  logFile: string;
  /** Kills the registry (SIGTERM, then SIGKILL) and removes `dir`. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts a registry on 127.0.0.1 and a free port; resolves once GET /v2/ answers. */
export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  const bin = opts.bin ?? REGISTRY_BIN;
  if (!existsSync(bin)) throw new Error(`${bin} is missing: install the Debian package docker-registry (apt-get install -y docker-registry)`);
  const dir = await mkdtemp(join(tmpdir(), "crio-registry-"));
  liveDirs.add(dir);
  try {
    await mkdir(join(dir, "storage"));
    const tls = opts.tls ? await makeCerts(dir) : undefined;
    if (opts.htpasswd) await writeHtpasswd(join(dir, "htpasswd"), opts.htpasswd);
    await writeSkopeoFiles(dir);
    let lastErr: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePort();
      const config = join(dir, "config.yml");
      await writeFile(config, configYaml(dir, port, !!tls, !!opts.htpasswd));
      const logFile = join(dir, "registry.log");
      try {
        const proc = await launch(bin, config, logFile, port, tls?.caPem);
        const reg = makeHandle(proc, dir, port, logFile, tls, opts.htpasswd);
        return reg;
      } catch (e) {
        lastErr = e;
        if (!/address already in use/.test(String(e))) break;
      }
    }
    throw lastErr;
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
    throw e;
  }
}

/**
 * skopeo flags to reach `reg` for one side of a command: prefix "" for inspect/delete/list-tags,
 * "src-" or "dest-" for copy. TLS registries are verified with the test CA, plain ones use HTTP.
 */
export function skopeoFlags(reg: Registry, prefix: "" | "src-" | "dest-"): string[] {
  const f = reg.certDir ? [`--${prefix}cert-dir`, reg.certDir] : [`--${prefix}tls-verify=false`];
  if (reg.auth) f.push(`--${prefix}creds`, `${reg.auth.user}:${reg.auth.password}`);
  return f;
}

/** Runs skopeo isolated from the machine's /etc/containers (own policy, registries.conf, auth file). */
export function skopeo(reg: Registry, args: string[], timeoutMs = 120_000): Promise<string> {
  const s = join(reg.dir, "skopeo");
  return run(["skopeo", "--policy", join(s, "policy.json"), "--registries.d", join(s, "registries.d"), ...args], {
    env: {
      ...process.env,
      CONTAINERS_REGISTRIES_CONF: join(s, "registries.conf"),
      REGISTRY_AUTH_FILE: join(s, "auth.json"),
      TMPDIR: s,
    },
    timeoutMs,
  });
}

/** fetch() against the registry, trusting its CA and sending its credentials; `path` starts with "/v2/". */
export function registryFetch(reg: Registry, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (reg.auth && !headers.has("authorization")) headers.set("authorization", `Basic ${btoa(`${reg.auth.user}:${reg.auth.password}`)}`);
  const ca = reg.caFile ? caCache.get(reg.caFile) : undefined;
  return fetch(`${reg.url}${path}`, { ...init, headers, tls: ca ? { ca } : undefined } as RequestInit);
}

// --- internal ---

/** CA PEM by file, filled when a TLS registry starts (registryFetch stays synchronous up to fetch). */
const caCache = new Map<string, string>();

type Proc = ReturnType<typeof Bun.spawn>;

/** Registries still running when the test process exits are killed (a failing test must not leak one). */
const live = new Set<Proc>();
const liveDirs = new Set<string>();
process.on("exit", () => {
  for (const p of live) p.kill("SIGKILL");
  for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
});

function makeHandle(proc: Proc, dir: string, port: number, logFile: string, tls: Certs | undefined, auth: RegistryOptions["htpasswd"]): Registry {
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await proc.exited;
      clearTimeout(t);
      live.delete(proc);
      await rm(dir, { recursive: true, force: true });
      liveDirs.delete(dir);
    })());
  return {
    host: `127.0.0.1:${port}`,
    url: `${tls ? "https" : "http"}://127.0.0.1:${port}`,
    dir,
    caFile: tls?.caFile,
    certDir: tls?.certDir,
    auth: auth ? { ...auth } : undefined,
    logFile,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** Spawns the registry and waits until /v2/ answers (any status: 401 counts) or the process dies. */
async function launch(bin: string, config: string, logFile: string, port: number, caPem?: string): Promise<Proc> {
  const fd = openSync(logFile, "a");
  // setpriv --pdeathsig: the registry dies with the test process even when that one is SIGKILLed.
  const pre = existsSync("/usr/bin/setpriv") ? ["/usr/bin/setpriv", "--pdeathsig", "KILL"] : [];
  let proc: Proc;
  try {
    proc = Bun.spawn([...pre, bin, "serve", config], { stdin: "ignore", stdout: fd, stderr: fd });
  } finally {
    closeSync(fd);
  }
  live.add(proc);
  let exited = false;
  void proc.exited.then(() => (exited = true));
  const url = `${caPem ? "https" : "http"}://127.0.0.1:${port}/v2/`;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (exited) break;
    try {
      const r = await fetch(url, { tls: caPem ? { ca: caPem } : undefined, signal: AbortSignal.timeout(1000) } as RequestInit);
      await r.arrayBuffer();
      if (r.status === 200 || r.status === 401) return proc;
    } catch {
      // not listening yet
    }
    await Bun.sleep(25);
  }
  proc.kill("SIGKILL");
  await proc.exited;
  live.delete(proc);
  const log = (await Bun.file(logFile).text()).trim().split("\n").slice(-10).join("\n");
  throw new Error(`docker-registry did not answer on ${url}${exited ? ` (exited ${proc.exitCode})` : " within 15 s"}: ${log}`);
}

/** A port the kernel just handed out on 127.0.0.1 (bound, then released). */
async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

function configYaml(dir: string, port: number, tls: boolean, auth: boolean): string {
  const lines = [
    "version: 0.1",
    "log:",
    "  level: warn",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${join(dir, "storage")}`,
    "  delete:",
    "    enabled: true",
    "  maintenance:",
    "    uploadpurging:",
    "      enabled: false",
    "http:",
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${crypto.randomUUID()}`,
  ];
  if (tls) lines.push("  tls:", `    certificate: ${join(dir, "tls", "server.crt")}`, `    key: ${join(dir, "tls", "server.key")}`);
  if (auth) lines.push("auth:", "  htpasswd:", "    realm: crio-test-registry", `    path: ${join(dir, "htpasswd")}`);
  return lines.join("\n") + "\n";
}

interface Certs {
  caFile: string;
  caPem: string;
  certDir: string;
}

/** A CA and a server certificate for 127.0.0.1 / localhost (IP and DNS SANs), via openssl. */
async function makeCerts(dir: string): Promise<Certs> {
  if (!Bun.which("openssl")) throw new Error("openssl is missing: install the Debian package openssl");
  const t = join(dir, "tls");
  await mkdir(t);
  const p = (f: string) => join(t, f);
  // Our own openssl config, so the machine's /etc/ssl/openssl.cnf plays no part.
  await writeFile(
    p("openssl.cnf"),
    [
      "[req]",
      "distinguished_name = dn",
      "prompt = no",
      "[dn]",
      "CN = crio-test",
      "[ca]",
      "basicConstraints = critical, CA:TRUE",
      "keyUsage = critical, keyCertSign, cRLSign",
      "subjectKeyIdentifier = hash",
      "[server]",
      "basicConstraints = critical, CA:FALSE",
      "keyUsage = critical, digitalSignature, keyEncipherment",
      "extendedKeyUsage = serverAuth",
      "subjectAltName = IP:127.0.0.1, DNS:localhost",
      "authorityKeyIdentifier = keyid",
      "",
    ].join("\n"),
  );
  const cnf = ["-config", p("openssl.cnf")];
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run([
    "openssl",
    "req",
    ...cnf,
    "-x509",
    ...ec,
    "-keyout",
    p("ca.key"),
    "-out",
    p("ca.crt"),
    "-days",
    "2",
    "-subj",
    "/CN=crio test CA",
    "-extensions",
    "ca",
  ]);
  await run(["openssl", "req", ...cnf, "-new", ...ec, "-keyout", p("server.key"), "-out", p("server.csr"), "-subj", "/CN=127.0.0.1"]);
  await run([
    "openssl",
    "x509",
    "-req",
    "-in",
    p("server.csr"),
    "-CA",
    p("ca.crt"),
    "-CAkey",
    p("ca.key"),
    "-CAcreateserial",
    "-out",
    p("server.crt"),
    "-days",
    "2",
    "-extfile",
    p("openssl.cnf"),
    "-extensions",
    "server",
  ]);
  const certDir = join(dir, "certs.d");
  await mkdir(certDir);
  const caPem = await Bun.file(p("ca.crt")).text();
  await writeFile(join(certDir, "ca.crt"), caPem);
  caCache.set(p("ca.crt"), caPem);
  return { caFile: p("ca.crt"), caPem, certDir };
}

/** distribution's htpasswd backend takes bcrypt only; Go's bcrypt accepts Bun's `$2b$` hashes. */
async function writeHtpasswd(file: string, a: { user: string; password: string }): Promise<void> {
  if (a.user.includes(":")) throw new Error(`htpasswd user "${a.user}" must not contain ':'`);
  // Cost 4 (the minimum): the registry checks the hash on every request.
  const hash = await Bun.password.hash(a.password, { algorithm: "bcrypt", cost: 4 });
  await writeFile(file, `${a.user}:${hash}\n`, { mode: 0o600 });
}

/** skopeo settings private to this registry, so the machine's /etc/containers is never read. */
async function writeSkopeoFiles(dir: string): Promise<void> {
  const s = join(dir, "skopeo");
  await mkdir(join(s, "registries.d"), { recursive: true });
  await writeFile(join(s, "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
  await writeFile(join(s, "registries.conf"), "unqualified-search-registries = []\n");
}
