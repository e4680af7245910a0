import { open } from "node:fs/promises";
import { RuntimeError, messageOf } from "../errors.ts";
import { sleep } from "../util/wait.ts";
import { MANIFEST_ACCEPT } from "./manifest.ts";
import { RegistryHttp, statusError, type HttpOptions } from "./registry-http.ts";

/**
 * The OCI distribution operations a pull needs: fetch a manifest (verified against the digest
 * when pulled by digest), a small blob into memory, and a layer blob into a file, verifying its
 * digest and size while streaming and resuming with a Range request after a dropped connection.
 */

/** A fetched manifest: its bytes, the media type the registry gave, and its digest. */
export interface FetchedManifest {
  bytes: Uint8Array;
  contentType: string;
  digest: string;
}

/** Manifests and configs larger than this are refused (containers/image uses the same bound). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Image configs larger than this are refused. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/** A client for one registry host. */
export class RegistryClient {
  readonly http: RegistryHttp;
  #o: HttpOptions;

  constructor(o: HttpOptions) {
    this.#o = o;
    this.http = new RegistryHttp(o);
  }

  /** The connection's cancellation signal, if any. */
  get signal(): AbortSignal | undefined {
    return this.#o.signal;
  }

  /** GETs /v2/REPO/manifests/REFERENCE; when `reference` is a digest, the bytes must match it. */
  async manifest(repo: string, reference: string): Promise<FetchedManifest> {
    const what = `manifest ${this.#o.host}/${repo}${reference.includes(":") ? "@" : ":"}${reference}`;
    const res = await this.http.send({ path: `/v2/${repo}/manifests/${reference}`, headers: { accept: MANIFEST_ACCEPT }, repo });
    if (!res.ok) throw await statusError(res, what);
    const bytes = await readLimited(res, MAX_MANIFEST_BYTES, what);
    const algo = reference.includes(":") ? reference.split(":")[0]! : "sha256";
    const digest = digestOf(bytes, algo);
    if (reference.includes(":") && digest !== reference) throw new RuntimeError("unknown", `${what} failed verification: its content has digest ${digest}`);
    return { bytes, contentType: res.headers.get("content-type") ?? "", digest };
  }

  /** A small blob (an image config) into memory, verified against digest and size. */
  async blobBytes(repo: string, digest: string, size: number): Promise<Uint8Array> {
    const what = `blob ${digest} of ${this.#o.host}/${repo}`;
    if (size > MAX_CONFIG_BYTES) throw new RuntimeError("unknown", `${what} is too large for an image config (${size} bytes)`);
    const res = await this.http.send({ path: `/v2/${repo}/blobs/${digest}`, headers: { "accept-encoding": "identity" }, repo });
    if (!res.ok) throw await statusError(res, what);
    const bytes = await readLimited(res, size, what);
    verify(what, digest, size, digestOf(bytes, digest.split(":")[0]!), bytes.length);
    return bytes;
  }

  /**
   * Streams a blob into `file` (created or truncated), hashing while writing; `onBytes` is called
   * with each chunk's length. A connection dropped mid-way resumes with a Range request (or starts
   * over when the server ignores it). Throws on a digest or size mismatch.
   */
  async blobToFile(repo: string, digest: string, size: number, file: string, onBytes?: (n: number) => void, signal?: AbortSignal): Promise<void> {
    const what = `blob ${digest} of ${this.#o.host}/${repo}`;
    const algo = digest.split(":")[0]!;
    hasherFor(algo, what);
    const fh = await open(file, "w", 0o600);
    try {
      let hasher = hasherFor(algo, what);
      let got = 0;
      const attempts = this.#o.attempts ?? 3;
      let delay = this.#o.retryBaseMs ?? 200;
      for (let attempt = 1; ; attempt++) {
        const headers: Record<string, string> = { "accept-encoding": "identity" };
        if (got > 0) headers.range = `bytes=${got}-`;
        const res = await this.http.send({ path: `/v2/${repo}/blobs/${digest}`, headers, repo, signal });
        if (got > 0 && res.status === 200) {
          got = 0;
          hasher = hasherFor(algo, what);
          await fh.truncate(0);
        } else if (got > 0 && res.status !== 206) {
          throw await statusError(res, `${what} (resuming at byte ${got})`);
        }
        if (!res.ok) throw await statusError(res, what);
        try {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            if (got + chunk.length > size)
              throw new RuntimeError("unknown", `${what} failed verification: the registry sent more than the ${size} bytes the manifest declares`);
            hasher.update(chunk);
            await fh.write(chunk, 0, chunk.length, got);
            got += chunk.length;
            onBytes?.(chunk.length);
          }
          break;
        } catch (e) {
          const sig = signal ?? this.#o.signal;
          if (e instanceof RuntimeError || sig?.aborted || (e as { code?: string }).code === "ENOSPC") throw sig?.aborted ? RuntimeError.from(sig.reason) : e;
          if (attempt >= attempts)
            throw new RuntimeError("unavailable", `downloading ${what} failed after ${attempts} attempts: ${messageOf(e)}`, { cause: e });
          await sleep(delay, sig);
          delay *= 2;
        }
      }
      verify(what, digest, size, `${algo}:${hasher.digest("hex")}`, got);
    } finally {
      await fh.close();
    }
  }
}

/** "algo:hex" of bytes; sha256 and sha512 are supported. */
export function digestOf(bytes: Uint8Array, algo = "sha256"): string {
  const h = hasherFor(algo, "content");
  h.update(bytes);
  return `${algo}:${h.digest("hex")}`;
}

// --- internal ---

function hasherFor(algo: string, what: string): Bun.CryptoHasher {
  if (algo !== "sha256" && algo !== "sha512") throw new RuntimeError("unimplemented", `${what}: digest algorithm ${algo} is not supported`);
  return new Bun.CryptoHasher(algo);
}

function verify(what: string, digest: string, size: number, gotDigest: string, gotSize: number): void {
  if (gotSize !== size) throw new RuntimeError("unknown", `${what} failed verification: got ${gotSize} bytes, the manifest declares ${size}`);
  if (gotDigest !== digest) throw new RuntimeError("unknown", `${what} failed verification: digest mismatch, the content has digest ${gotDigest}`);
}

async function readLimited(res: Response, limit: number, what: string): Promise<Uint8Array> {
  const len = Number(res.headers.get("content-length"));
  if (Number.isFinite(len) && len > limit) {
    await res.body?.cancel().catch(() => {});
    throw new RuntimeError("unknown", `${what} is larger than expected (${len} bytes, limit ${limit})`);
  }
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
    n += c.length;
    if (n > limit) throw new RuntimeError("unknown", `${what} is larger than expected (more than ${limit} bytes)`);
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}
