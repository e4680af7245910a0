import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { RuntimeError, messageOf } from "../errors.ts";
import type { RegistryClient } from "./registry-client.ts";
import { statusError } from "./registry-http.ts";

/**
 * Where a pull finds an image's signatures:
 * - a lookaside store (registries.d `lookaside`, file:// or http(s)://):
 *   `<base>/<repo path>@<algo>=<hex>/signature-<N>`, N = 1, 2, … until the first one missing;
 * - sigstore attachments: the tag `<algo>-<hex>.sig` in the image's repository on the registry it
 *   is pulled from, an OCI manifest whose layers are simple-signing payloads
 *   (application/vnd.dev.cosign.simplesigning.v1+json) carrying the signature (and optional
 *   certificate, chain and Rekor bundle) in annotations, as cosign writes them.
 */

/** A sigstore signature read from an attachment layer. */
export interface SigstoreSignature {
  payload: Uint8Array;
  /** dev.cosignproject.cosign/signature: base64 of the signature. */
  signature: string;
  certificate?: string;
  chain?: string;
  bundle?: string;
}

/** The media type of a cosign simple-signing layer. */
export const SIGSTORE_LAYER_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json";
/** The annotations cosign writes on a signature layer. */
export const COSIGN_ANNOTATIONS = {
  signature: "dev.cosignproject.cosign/signature",
  certificate: "dev.sigstore.cosign/certificate",
  chain: "dev.sigstore.cosign/chain",
  bundle: "dev.sigstore.cosign/bundle",
} as const;

/** The largest signature (or payload) read, as in containers/image. */
export const MAX_SIGNATURE_BYTES = 4 * 1024 * 1024;
/** At most this many lookaside signatures are read for one image. */
export const MAX_SIGNATURES = 128;

/** The lookaside URL of signature N (1-based) of `digest` under `base` (already ending in the repository path). */
export function lookasideURL(base: string, digest: string, n: number): string {
  const [algo, hex] = digest.split(":");
  return `${base}@${algo}=${hex}/signature-${n}`;
}

/** Reads the lookaside signatures of `digest`: none when the first is missing. Throws unavailable on a read error. */
export async function readLookaside(base: string, digest: string, signal?: AbortSignal): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (let n = 1; n <= MAX_SIGNATURES; n++) {
    const url = lookasideURL(base, digest, n);
    const sig = url.startsWith("file:") ? await readFileSignature(url) : await readHttpSignature(url, signal);
    if (!sig) break;
    out.push(simpleSigningBlob(sig, url));
  }
  return out;
}

/**
 * The registry's own signature API (the OpenShift "X-Registry-Supports-Signatures" extension):
 * when GET /v2/ answers with `X-Registry-Supports-Signatures: 1`, the signatures of `digest` are
 * `GET /extensions/v2/<repo>/signatures/<digest>` → `{"signatures":[{"schemaVersion":2,"type":"atomic",
 * "content":"<base64>"}]}`, and containers/image reads them instead of the lookaside. Returns
 * undefined when the registry does not offer it.
 */
export async function readExtensionSignatures(client: RegistryClient, repo: string, digest: string): Promise<Uint8Array[] | undefined> {
  const host = client.http.apiHost;
  let known = extensionSupport.get(host);
  if (!known || Date.now() - known.at > EXTENSION_PROBE_TTL_MS) {
    const ping = await client.http.send({ path: "/v2/", repo });
    await ping.body?.cancel().catch(() => {});
    known = { supported: ping.headers.get("x-registry-supports-signatures") === "1", at: Date.now() };
    extensionSupport.set(host, known);
  }
  if (!known.supported) return undefined;
  const what = `signatures of ${client.http.host}/${repo}@${digest} (registry signature extension)`;
  const res = await client.http.send({ path: `/extensions/v2/${repo}/signatures/${digest}`, repo });
  if (res.status === 404) {
    await res.body?.cancel().catch(() => {});
    return [];
  }
  if (!res.ok) throw await statusError(res, what);
  const text = await res.text();
  if (text.length > MAX_SIGNATURE_BYTES * 2) throw new RuntimeError("unknown", `${what}: the answer is too large`);
  let doc: { signatures?: Array<{ schemaVersion?: unknown; type?: unknown; content?: unknown }> };
  try {
    doc = JSON.parse(text);
  } catch {
    throw new RuntimeError("unknown", `${what}: the answer is not valid JSON`);
  }
  if (!Array.isArray(doc?.signatures)) throw new RuntimeError("unknown", `${what}: the answer has no signatures list`);
  return doc.signatures
    .filter((x) => x?.schemaVersion === 2 && x.type === "atomic" && typeof x.content === "string")
    .map((x) => new Uint8Array(Buffer.from(x.content as string, "base64")));
}

/** Reads the sigstore attachment of `digest` from `repo` on the client's registry: none when the tag does not exist. */
export async function readSigstoreAttachments(client: RegistryClient, repo: string, digest: string): Promise<SigstoreSignature[]> {
  const tag = `${digest.replace(":", "-")}.sig`;
  const what = `sigstore attachment ${client.http.host}/${repo}:${tag}`;
  let bytes: Uint8Array;
  try {
    bytes = (await client.manifest(repo, tag)).bytes;
  } catch (e) {
    if (RuntimeError.from(e).kind === "not-found") return [];
    throw e;
  }
  let doc: { layers?: Array<{ mediaType?: unknown; digest?: unknown; size?: unknown; annotations?: Record<string, unknown> }> };
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new RuntimeError("unknown", `${what} is not valid JSON`);
  }
  if (!Array.isArray(doc?.layers)) throw new RuntimeError("unknown", `${what} is not an OCI image manifest`);
  const out: SigstoreSignature[] = [];
  for (const l of doc.layers) {
    if (l?.mediaType !== SIGSTORE_LAYER_TYPE) continue;
    if (typeof l.digest !== "string" || typeof l.size !== "number" || l.size > MAX_SIGNATURE_BYTES)
      throw new RuntimeError("unknown", `${what} has a malformed signature layer`);
    const a = l.annotations ?? {};
    const str = (k: string) => (typeof a[k] === "string" ? (a[k] as string) : undefined);
    // payload blobs are content-addressed (verified against their digest): a warm pull reuses them
    let payload = payloadCache.get(l.digest);
    if (!payload) {
      payload = await client.blobBytes(repo, l.digest, l.size);
      if (payloadCache.size >= 256) payloadCache.delete(payloadCache.keys().next().value!);
      payloadCache.set(l.digest, payload);
    }
    const sig: SigstoreSignature = { payload, signature: str(COSIGN_ANNOTATIONS.signature) ?? "" };
    const cert = str(COSIGN_ANNOTATIONS.certificate);
    if (cert) sig.certificate = cert;
    const chain = str(COSIGN_ANNOTATIONS.chain);
    if (chain) sig.chain = chain;
    const bundle = str(COSIGN_ANNOTATIONS.bundle);
    if (bundle) sig.bundle = bundle;
    out.push(sig);
  }
  return out;
}

/**
 * The OpenPGP message in a stored signature, recognised as containers/image does: a bare OpenPGP
 * message (its first packet a compressed-data, one-pass-signature or signature packet), or a blob
 * starting with "\0simple-signing\n". Anything else — an empty file, another format, random
 * bytes — is not a signature at all, and the image cannot be verified (throws).
 */
export function simpleSigningBlob(blob: Uint8Array, where: string): Uint8Array {
  if (blob.length === 0) throw new RuntimeError("unknown", `signature ${where} is empty`);
  if (OPENPGP_FIRST_BYTES.has(blob[0]!)) return blob;
  if (blob[0] === 0) {
    const nl = blob.indexOf(0x0a);
    const format = nl > 0 ? Buffer.from(blob.subarray(1, nl)).toString("latin1") : "";
    if (format === "simple-signing") return blob.subarray(nl + 1);
    throw new RuntimeError("unknown", `signature ${where} has the format ${JSON.stringify(format)}, not a simple-signing (GPG) signature`);
  }
  throw new RuntimeError("unknown", `signature ${where} has an unrecognized format, starting with byte 0x${blob[0]!.toString(16).padStart(2, "0")}`);
}

// --- internal ---

/** Sigstore payloads by digest. */
const payloadCache = new Map<string, Uint8Array>();

/** Whether a registry host serves the signature API, probed at most once a minute (a warm pull skips the probe). */
const extensionSupport = new Map<string, { supported: boolean; at: number }>();
const EXTENSION_PROBE_TTL_MS = 60_000;

/** First bytes of an OpenPGP message: compressed data, one-pass signature or signature packet (old and new format). */
const OPENPGP_FIRST_BYTES = new Set([0xa0, 0xa1, 0xa2, 0xa3, 0xc8, 0x90, 0x91, 0x92, 0x93, 0xc4, 0x88, 0x89, 0x8a, 0x8b, 0xc2]);

async function readFileSignature(url: string): Promise<Uint8Array | undefined> {
  const path = fileURLToPath(url);
  try {
    const b = await readFile(path);
    if (b.length > MAX_SIGNATURE_BYTES) throw new RuntimeError("unknown", `signature ${path} is larger than ${MAX_SIGNATURE_BYTES} bytes`);
    return b;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    if (e instanceof RuntimeError) throw e;
    throw new RuntimeError("unavailable", `reading signature ${path}: ${messageOf(e)}`, { cause: e });
  }
}

async function readHttpSignature(url: string, signal?: AbortSignal): Promise<Uint8Array | undefined> {
  let res: Response;
  try {
    res = await fetch(url, { signal, redirect: "follow" });
  } catch (e) {
    if (signal?.aborted) throw RuntimeError.from(signal.reason);
    throw new RuntimeError("unavailable", `reading signature ${url}: ${messageOf(e)}`, { cause: e });
  }
  if (res.status === 404) {
    await res.body?.cancel().catch(() => {});
    return undefined;
  }
  if (!res.ok) throw await statusError(res, `signature ${url}`);
  const len = Number(res.headers.get("content-length"));
  if (Number.isFinite(len) && len > MAX_SIGNATURE_BYTES) {
    await res.body?.cancel().catch(() => {});
    throw new RuntimeError("unknown", `signature ${url} is larger than ${MAX_SIGNATURE_BYTES} bytes`);
  }
  const b = new Uint8Array(await res.arrayBuffer());
  if (b.length > MAX_SIGNATURE_BYTES) throw new RuntimeError("unknown", `signature ${url} is larger than ${MAX_SIGNATURE_BYTES} bytes`);
  return b;
}
