/**
 * Signing helpers for the image-trust tests. GPG: keys made by `gpg --batch` in a temporary
 * GNUPGHOME (a good key, a second key, a key that has expired — made and used with
 * --faked-system-time — and a revoked one), simple-signing payloads signed with `gpg --sign`, and
 * lookaside files laid out as containers/image reads them. Sigstore: an ECDSA P-256 key pair (the
 * public half in PEM, as `cosign generate-key-pair` writes cosign.pub), payloads signed with it and
 * pushed as the `sha256-<hex>.sig` attachment with cosign's media types and annotations.
 */
import { createHash, generateKeyPairSync, sign as cryptoSign, type KeyObject } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "../../src/sys/exec.ts";
import { registryFetch, type Registry } from "./registry.ts";

/** A GPG key in the test GNUPGHOME, and its exported public keyring file. */
export interface GpgKey {
  fingerprint: string;
  /** Binary keyring holding only this key (with its revocation, if revoked). */
  keyring: string;
}

/** A temporary GNUPGHOME with helpers. */
export class Gpg {
  constructor(readonly home: string) {
    mkdirSync(home, { recursive: true, mode: 0o700 });
  }

  get env(): Record<string, string> {
    return { ...(process.env as Record<string, string>), GNUPGHOME: this.home };
  }

  /** gpg --batch ARGS… in this home. */
  gpg(args: string[], stdin?: string | Uint8Array): Promise<string> {
    return run(["gpg", "--batch", "--no-tty", "--quiet", ...args], { env: this.env, stdin, timeoutMs: 60_000 });
  }

  /** A new key (no passphrase); `fakeTime`/`expire` make one that has since expired. */
  async newKey(name: string, o: { fakeTime?: string; expire?: string } = {}): Promise<GpgKey> {
    const t = o.fakeTime ? ["--faked-system-time", o.fakeTime] : [];
    await this.gpg([...t, "--passphrase", "", "--quick-gen-key", `${name} <${name}@crio.test>`, "default", "default", o.expire ?? "never"]);
    const fingerprint = (await this.gpg(["--with-colons", "--list-keys", `${name}@crio.test`]))
      .split("\n")
      .find((l) => l.startsWith("fpr:"))!
      .split(":")[9]!;
    const key = { fingerprint, keyring: join(this.home, `${name}.gpg`) };
    writeFileSync(key.keyring, await this.exportKey(fingerprint));
    return key;
  }

  /** Revokes `key` (gpg stored a revocation certificate for it, guarded by a leading ":") and re-exports its keyring. */
  async revoke(key: GpgKey): Promise<void> {
    const rev = readFileSync(join(this.home, "openpgp-revocs.d", `${key.fingerprint}.rev`), "utf8").replace(/^:-----BEGIN/m, "-----BEGIN");
    await this.gpg(["--import"], rev);
    writeFileSync(key.keyring, await this.exportKey(key.fingerprint));
  }

  async exportKey(fingerprint: string): Promise<Uint8Array> {
    const r = Bun.spawnSync(["gpg", "--batch", "--export", fingerprint], { env: this.env });
    if (r.exitCode !== 0 || r.stdout.length === 0) throw new Error(`gpg --export ${fingerprint} failed: ${r.stderr}`);
    return r.stdout;
  }

  /** An OpenPGP signed message of `payload` (as skopeo/containers-image make them), at `fakeTime` if given. */
  async sign(key: GpgKey, payload: string | Uint8Array, fakeTime?: string): Promise<Uint8Array> {
    const t = fakeTime ? ["--faked-system-time", fakeTime] : [];
    const r = Bun.spawnSync(["gpg", "--batch", "--no-tty", "--quiet", ...t, "--local-user", key.fingerprint, "--sign", "--output", "-"], {
      env: this.env,
      stdin: typeof payload === "string" ? new TextEncoder().encode(payload) : payload,
    });
    if (r.exitCode !== 0) throw new Error(`gpg --sign failed: ${r.stderr}`);
    return r.stdout;
  }
}

/** A simple-signing payload (containers-signature(5)) naming `reference` and `digest`. */
export function simplePayload(reference: string, digest: string, type = "atomic container signature"): string {
  return JSON.stringify({
    critical: { type, image: { "docker-manifest-digest": digest }, identity: { "docker-reference": reference } },
    optional: { creator: "crio-ts tests", timestamp: Math.floor(Date.now() / 1000) },
  });
}

/** Writes signature N (1-based) of `repoPath@digest` under a file lookaside directory. */
export function writeLookaside(dir: string, repoPath: string, digest: string, n: number, sig: Uint8Array): string {
  const [algo, hex] = digest.split(":");
  const d = join(dir, `${repoPath}@${algo}=${hex}`);
  mkdirSync(d, { recursive: true });
  const f = join(d, `signature-${n}`);
  writeFileSync(f, sig);
  return f;
}

/** A cosign-style ECDSA P-256 key pair; `publicPem` is what cosign.pub holds. */
export function cosignKeyPair(): { privateKey: KeyObject; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { privateKey, publicPem: publicKey.export({ type: "spki", format: "pem" }).toString() };
}

/** A cosign payload for `reference`@`digest`, as `cosign sign` writes it ("optional": null). */
export function cosignPayload(reference: string, digest: string): string {
  return JSON.stringify({
    critical: { identity: { "docker-reference": reference }, image: { "docker-manifest-digest": digest }, type: "cosign container image signature" },
    optional: null,
  });
}

/** ECDSA-SHA256 signature (ASN.1 DER) of `payload`, base64, as cosign writes it in the annotation. */
export function cosignSign(privateKey: KeyObject, payload: string | Uint8Array): string {
  return cryptoSign("sha256", typeof payload === "string" ? Buffer.from(payload) : payload, privateKey).toString("base64");
}

/**
 * Pushes `layers` (payload + signature annotation each) as the cosign attachment of
 * `repo@digest`: the tag `sha256-<hex>.sig`, an OCI manifest whose layers have the
 * simplesigning media type and cosign's annotations.
 */
export async function pushCosignAttachment(
  reg: Registry,
  repo: string,
  digest: string,
  layers: Array<{ payload: string | Uint8Array; signature: string; annotations?: Record<string, string> }>,
): Promise<void> {
  const descs = [];
  for (const l of layers) {
    const bytes = typeof l.payload === "string" ? new TextEncoder().encode(l.payload) : l.payload;
    const d = await pushBlob(reg, repo, bytes);
    descs.push({
      mediaType: "application/vnd.dev.cosign.simplesigning.v1+json",
      size: bytes.length,
      digest: d,
      annotations: { "dev.cosignproject.cosign/signature": l.signature, ...l.annotations },
    });
  }
  const config = new TextEncoder().encode(
    JSON.stringify({
      architecture: "",
      config: {},
      created: "0001-01-01T00:00:00Z",
      history: [{ created: "0001-01-01T00:00:00Z" }],
      os: "",
      rootfs: { type: "layers", diff_ids: descs.map((d) => d.digest) },
    }),
  );
  const configDigest = await pushBlob(reg, repo, config);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", size: config.length, digest: configDigest },
    layers: descs,
  });
  const tag = `${digest.replace(":", "-")}.sig`;
  const r = await registryFetch(reg, `/v2/${repo}/manifests/${tag}`, {
    method: "PUT",
    headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
    body: manifest,
  });
  if (r.status !== 201) throw new Error(`PUT manifest ${repo}:${tag}: HTTP ${r.status} ${await r.text()}`);
}

/**
 * A cosign Rekor bundle (the dev.sigstore.cosign/bundle annotation) as the transparency log
 * would return it, made offline with `rekorKey`: a hashedrekord 0.0.1 entry for the signature,
 * the key or certificate PEM that made it and the payload's sha256, and the SignedEntryTimestamp
 * over the canonical JSON of the entry's Payload.
 */
export function rekorBundle(
  rekorKey: KeyObject,
  o: { keyOrCertPem: string; signature: string; payload: string | Uint8Array; integratedTime?: number },
): string {
  const body = {
    apiVersion: "0.0.1",
    kind: "hashedrekord",
    spec: {
      data: { hash: { algorithm: "sha256", value: createHash("sha256").update(o.payload).digest("hex") } },
      signature: { content: o.signature, publicKey: { content: Buffer.from(o.keyOrCertPem).toString("base64") } },
    },
  };
  const Payload = {
    body: Buffer.from(JSON.stringify(body)).toString("base64"),
    integratedTime: o.integratedTime ?? Math.floor(Date.now() / 1000),
    logIndex: 7,
    logID: "ab".repeat(32),
  };
  // RFC 8785: members sorted; these values need no other canonicalisation
  const canonical = JSON.stringify(Object.fromEntries(Object.entries(Payload).sort(([a], [b]) => (a < b ? -1 : 1))));
  return JSON.stringify({ SignedEntryTimestamp: cryptoSign("sha256", Buffer.from(canonical), rekorKey).toString("base64"), Payload });
}

/** A throw-away Fulcio-like PKI made with openssl: a root CA, an intermediate, and leaf certificates for code signing. */
export class TestFulcio {
  readonly caPem: string;
  readonly chainPem: string;
  private constructor(readonly dir: string) {
    this.caPem = readFileSync(join(dir, "ca.crt"), "utf8");
    this.chainPem = readFileSync(join(dir, "int.crt"), "utf8") + this.caPem;
  }

  static async create(dir: string): Promise<TestFulcio> {
    mkdirSync(dir, { recursive: true });
    const ossl = (args: string[]) => run(["openssl", ...args], { cwd: dir, timeoutMs: 30_000 });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    await ossl([
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-subj",
      "/CN=crio-test-fulcio-root",
      "-days",
      "3",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign",
    ]);
    writeFileSync(join(dir, "int.cnf"), "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n");
    await ossl(["req", "-new", ...ec, "-keyout", "int.key", "-out", "int.csr", "-subj", "/CN=crio-test-fulcio-intermediate"]);
    await ossl([
      "x509",
      "-req",
      "-in",
      "int.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "3",
      "-extfile",
      "int.cnf",
      "-out",
      "int.crt",
    ]);
    return new TestFulcio(dir);
  }

  /** A leaf certificate (PEM) for `email` and OIDC `issuer`, valid from now for a day, with its private key. */
  async leaf(name: string, email: string, issuer: string, o: { selfSigned?: boolean } = {}): Promise<{ certPem: string; privateKey: KeyObject }> {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    writeFileSync(join(this.dir, `${name}.key`), privateKey.export({ type: "pkcs8", format: "pem" }));
    const ext = [
      `subjectAltName=email:${email}`,
      "extendedKeyUsage=codeSigning",
      "keyUsage=critical,digitalSignature",
      `1.3.6.1.4.1.57264.1.1=DER:${Buffer.from(issuer).toString("hex")}`,
    ].join("\n");
    writeFileSync(join(this.dir, `${name}.cnf`), `${ext}\n`);
    const ossl = (args: string[]) => run(["openssl", ...args], { cwd: this.dir, timeoutMs: 30_000 });
    await ossl(["req", "-new", "-key", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`]);
    if (o.selfSigned)
      await ossl(["x509", "-req", "-in", `${name}.csr`, "-signkey", `${name}.key`, "-days", "1", "-extfile", `${name}.cnf`, "-out", `${name}.crt`]);
    else
      await ossl([
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        "int.crt",
        "-CAkey",
        "int.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        `${name}.cnf`,
        "-out",
        `${name}.crt`,
      ]);
    return { certPem: readFileSync(join(this.dir, `${name}.crt`), "utf8"), privateKey };
  }
}

// --- internal ---

async function pushBlob(reg: Registry, repo: string, bytes: Uint8Array): Promise<string> {
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  const start = await registryFetch(reg, `/v2/${repo}/blobs/uploads/`, { method: "POST" });
  if (start.status !== 202) throw new Error(`POST upload ${repo}: HTTP ${start.status}`);
  const loc = new URL(start.headers.get("location")!, reg.url);
  loc.searchParams.set("digest", digest);
  const put = await registryFetch(reg, `${loc.pathname}${loc.search}`, { method: "PUT", headers: { "content-type": "application/octet-stream" }, body: bytes });
  if (put.status !== 201) throw new Error(`PUT blob ${repo}: HTTP ${put.status} ${await put.text()}`);
  return digest;
}
