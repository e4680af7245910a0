import { RuntimeError, wrap, type ErrorKind } from "../errors.ts";
import { log } from "../log/index.ts";
import { credentialsFromPullAuth } from "./auth.ts";
import { pullFromSource, type PullContext } from "./fetch-image.ts";
import type { ImageEntry } from "./image-store.ts";
import { parsePlatform, type Platform } from "./manifest.ts";
import { checkPolicy, needsSignatures, type Policy } from "./policy.ts";
import { candidates, pullSources } from "./pull-sources.ts";
import { formatRef, type ImageRef } from "./reference.ts";
import type { RegistriesConf } from "./registries-conf.ts";
import { lookasideFor, usesSigstoreAttachments, type RegistriesD } from "./registries-d.ts";
import type { RegistryClient } from "./registry-client.ts";
import { readExtensionSignatures, readLookaside, readSigstoreAttachments } from "./signatures.ts";
import { verifyImage } from "./verify.ts";
import type { PullOptions } from "./types.ts";

/**
 * The pull verb: resolve the name (short names, aliases), check the signature policy, then try
 * each source in order (mirrors, then the registry itself) until one succeeds. A watchdog cancels
 * the pull when no byte arrives for pull_progress_timeout.
 */

/** Everything a pull reads: the service's context plus the current configuration. */
export interface PullDeps extends PullContext {
  registries: RegistriesConf;
  /** undefined = no policy configured (accept anything). */
  policy?: Policy;
  /** Set when the policy file could not be loaded: every pull fails with it. */
  policyError?: RuntimeError;
  /** registries.d (where signatures are), read when a policy first needs it. */
  registriesD: () => RegistriesD;
  platform: Platform;
  /** 0 = no progress timeout. */
  progressTimeoutMs: number;
}

/** Pulls `input` and returns the stored image entry. */
export async function pullImage(d: PullDeps, input: string, o: PullOptions = {}): Promise<ImageEntry> {
  if (d.policyError) throw d.policyError;
  const platform = o.platform ? parsePlatform(o.platform) : d.platform;
  const credentials = credentialsFromPullAuth(o.auth);
  const names = candidates(d.registries, input);
  const emit = o.onProgress ?? (() => {});
  using watchdog = new Watchdog(input, d.progressTimeoutMs, o.signal);
  const failures: Array<{ source: string; error: RuntimeError }> = [];
  for (const logical of names) {
    const verify = d.policy ? policyVerifier(d, d.policy, logical) : undefined;
    let refused: RuntimeError | undefined;
    for (const source of pullSources(d.registries, logical)) {
      const where = formatRef(source.ref);
      emit({ type: "resolving", ref: formatRef(logical), source: where });
      try {
        const ctx = o.authFile ? { ...d, authFiles: [o.authFile, ...d.authFiles] } : d;
        const check =
          verify &&
          (async (v: Parameters<NonNullable<typeof verify>>[0]) => {
            try {
              await verify(v);
            } catch (e) {
              refused = RuntimeError.from(e);
              throw e;
            }
          });
        return await pullFromSource(ctx, { logical, source, platform, credentials, signal: watchdog.signal, emit, touch: watchdog.touch, verify: check });
      } catch (e) {
        if (watchdog.signal.aborted) throw RuntimeError.from(watchdog.signal.reason);
        // refused by the signature policy: another source would be checked the same way
        if (refused) throw refused;
        const error = RuntimeError.from(e);
        // A bad image (e.g. a hostile layer) is named in the error, as every other failure is.
        if (FATAL.has(error.kind))
          throw error.kind === "invalid-argument" ? wrap(error, `pulling image "${input}"${where === input ? "" : ` from ${where}`}`) : error;
        l.info("pull source failed", { image: input, source: where, error: error.message });
        failures.push({ source: where, error });
      }
    }
  }
  throw combine(input, failures);
}

/**
 * The policy's checks for `logical` (the name as written): reject throws here, before any
 * network; signature requirements give the verifier a source runs on the manifest it fetched.
 * Simple-signing signatures come from the registry's signature extension when it serves one, else
 * from the lookaside that registries.d gives for the logical name; sigstore attachments from the
 * registry the image comes from (a mirror holds them beside the image).
 */
export function policyVerifier(
  d: Pick<PullDeps, "registriesD">,
  policy: Policy,
  logical: ImageRef,
): ((v: { client: RegistryClient; repo: string; manifest: Uint8Array; digest: string }) => Promise<void>) | undefined {
  const decision = checkPolicy(policy, logical);
  if (!decision.requirements.some(needsSignatures)) return undefined;
  return async ({ client, repo, manifest, digest }) => {
    // registries.d is read inside the check: a malformed file refuses the image, naming the file
    await verifyImage(
      policy,
      decision,
      { ref: logical, manifest, digest },
      {
        lookaside: async () => {
          // a registry that serves its own signature API is asked instead of the lookaside (as containers/image does)
          const served = await readExtensionSignatures(client, repo, digest);
          if (served) return served;
          const base = lookasideFor(d.registriesD(), logical);
          return base ? readLookaside(base, digest, client.signal) : [];
        },
        sigstore: async () => (usesSigstoreAttachments(d.registriesD(), logical) ? readSigstoreAttachments(client, repo, digest) : []),
      },
    );
  };
}

// --- internal ---

const l = log.withTag("image");

/** Errors that another source cannot fix. */
const FATAL = new Set<ErrorKind>(["canceled", "deadline-exceeded", "resource-exhausted", "invalid-argument"]);

function combine(input: string, failures: Array<{ source: string; error: RuntimeError }>): RuntimeError {
  if (failures.length === 1) {
    const e = failures[0]!.error;
    return new RuntimeError(e.kind, `pulling image "${input}": ${e.message}`, { cause: e });
  }
  const kinds = new Set(failures.map((f) => f.error.kind));
  const kind = kinds.size === 1 ? failures[0]!.error.kind : failures[failures.length - 1]!.error.kind;
  const detail = failures.map((f) => `${f.source}: ${f.error.message}`).join("; ");
  return new RuntimeError(kind, `pulling image "${input}" failed from every source: ${detail}`, { cause: failures[failures.length - 1]!.error });
}

/** Aborts its signal when the caller's signal aborts, or when touch() was not called for `timeoutMs`. */
class Watchdog {
  readonly signal: AbortSignal;
  #ac = new AbortController();
  #last = Date.now();
  #timer?: ReturnType<typeof setInterval>;
  #outer?: AbortSignal;
  #onAbort = () => this.#ac.abort(this.#outer?.reason);

  constructor(what: string, timeoutMs: number, outer?: AbortSignal) {
    this.signal = this.#ac.signal;
    this.#outer = outer;
    if (outer?.aborted) this.#ac.abort(outer.reason);
    outer?.addEventListener("abort", this.#onAbort, { once: true });
    if (timeoutMs > 0) {
      const every = Math.min(1000, Math.max(50, Math.floor(timeoutMs / 10)));
      this.#timer = setInterval(() => {
        if (Date.now() - this.#last < timeoutMs) return;
        this.#ac.abort(
          new RuntimeError(
            "deadline-exceeded",
            `pulling image "${what}" made no progress for ${(timeoutMs / 1000).toFixed(1)} s (pull_progress_timeout) and was cancelled`,
          ),
        );
        clearInterval(this.#timer);
      }, every);
    }
  }

  /** Records progress. */
  touch = (): void => {
    this.#last = Date.now();
  };

  [Symbol.dispose](): void {
    clearInterval(this.#timer);
    this.#outer?.removeEventListener("abort", this.#onAbort);
  }
}
