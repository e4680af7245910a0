import { RuntimeError, messageOf } from "../errors.ts";
import { sleep } from "../util/wait.ts";
import { parseWwwAuthenticate, type Challenge, type Credentials } from "./auth.ts";
import { tlsOptionsFor, type TlsOptions } from "./certs-dir.ts";

/**
 * The HTTP layer of the distribution client for one registry host: scheme choice (HTTPS; plain
 * HTTP only when the registry is insecure and HTTPS fails), token and basic auth driven by the
 * 401 challenge, manual redirects (credentials are never sent to another origin), and retries
 * with backoff on connection errors, 429 and 5xx. Callers map final statuses with statusError().
 */

/** Options of one registry connection. */
export interface HttpOptions {
  /** host[:port] as written in the image reference. */
  host: string;
  insecure: boolean;
  credentials?: Credentials;
  certsDir?: string;
  signal?: AbortSignal;
  /** Tries per request, including the first (default 3). */
  attempts?: number;
  /** First backoff delay; doubles each retry (default 200 ms). */
  retryBaseMs?: number;
  userAgent?: string;
}

/** A request to the registry API or to a redirect target. */
export interface HttpRequest {
  method?: "GET" | "HEAD";
  /** Path under the registry ("/v2/…"). */
  path: string;
  headers?: Record<string, string>;
  /** Repository, for the token scope. */
  repo: string;
  /** Overrides the connection's signal for this request (a shared layer download). */
  signal?: AbortSignal;
}

/** One registry host's HTTP session (tokens, chosen scheme). Create one per pull and host. */
export class RegistryHttp {
  readonly host: string;
  /** The host actually contacted: Docker Hub's API lives at registry-1.docker.io. */
  readonly apiHost: string;
  #o: HttpOptions;
  #authHeader = new Map<string, string>(); // repo → Authorization value
  #tls: TlsOptions;
  #preset?: string;

  constructor(o: HttpOptions) {
    this.#o = o;
    this.host = o.host;
    this.apiHost = o.host === "docker.io" ? "registry-1.docker.io" : o.host;
    this.#tls = tlsOptionsFor(o.certsDir, o.host, o.insecure);
    if (o.credentials?.registryToken) this.#preset = `Bearer ${o.credentials.registryToken}`;
  }

  /** Whether credentials were given for this host (for error messages). */
  get hasCredentials(): boolean {
    const c = this.#o.credentials;
    return !!(c && (c.username || c.password || c.identityToken || c.registryToken));
  }

  /**
   * Sends the request, authenticating on a 401 challenge and following redirects. Returns the
   * final response whatever its status (after retries for 429/5xx); throws only for transport
   * failures (unavailable), cancellation, and authentication failures (unauthenticated).
   */
  async send(req: HttpRequest): Promise<Response> {
    const signal = req.signal ?? this.#o.signal;
    let res = await this.#sendOnce(req, this.#authFor(req.repo), signal);
    if (res.status !== 401) return res;
    const challenge = parseWwwAuthenticate(res.headers.get("www-authenticate") ?? "");
    await res.body?.cancel().catch(() => {});
    const auth = await this.#authenticate(challenge, req.repo, signal);
    if (!auth) throw this.#unauthenticated(req.repo, undefined);
    this.#authHeader.set(req.repo, auth);
    res = await this.#sendOnce(req, auth, signal);
    if (res.status === 401) {
      await res.body?.cancel().catch(() => {});
      throw this.#unauthenticated(req.repo, "the registry rejected the credentials");
    }
    return res;
  }

  /** The base URL chosen for the host ("https://host" or, for insecure registries, maybe "http://host"). */
  async baseUrl(): Promise<string> {
    const cached = schemes.get(this.apiHost);
    if (cached && (cached === "https" || this.#o.insecure)) return `${cached}://${this.apiHost}`;
    return `https://${this.apiHost}`;
  }

  // --- internal ---

  #authFor(repo: string): string | undefined {
    return this.#preset ?? this.#authHeader.get(repo);
  }

  async #sendOnce(req: HttpRequest, auth: string | undefined, signal: AbortSignal | undefined): Promise<Response> {
    let url = `${await this.baseUrl()}${req.path}`;
    for (let hop = 0; hop <= 10; hop++) {
      const sameOrigin = new URL(url).host === this.apiHost;
      const headers: Record<string, string> = { "user-agent": this.#o.userAgent ?? "crio-ts", ...req.headers };
      if (auth && sameOrigin) headers.authorization = auth;
      const tls = sameOrigin ? this.#tls : tlsOptionsFor(this.#o.certsDir, new URL(url).host, false);
      const res = await this.#withRetries(url, { method: req.method ?? "GET", headers }, tls, sameOrigin, signal);
      if (res.status >= 300 && res.status < 400 && res.headers.get("location")) {
        await res.body?.cancel().catch(() => {});
        url = new URL(res.headers.get("location")!, url).toString();
        continue;
      }
      return res;
    }
    throw new RuntimeError("unavailable", `registry ${this.host}: too many redirects for ${req.path}`);
  }

  async #withRetries(
    url: string,
    init: { method: string; headers: Record<string, string> },
    tls: TlsOptions,
    registry: boolean,
    signal: AbortSignal | undefined,
  ): Promise<Response> {
    const attempts = this.#o.attempts ?? 3;
    let delay = this.#o.retryBaseMs ?? 200;
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await this.#fetch(url, init, tls, registry, signal);
      } catch (e) {
        if (signal?.aborted || e instanceof RuntimeError || attempt >= attempts) throw this.#transportError(e, url, signal);
        await sleep(delay, signal);
        delay *= 2;
        continue;
      }
      if ((res.status >= 500 || res.status === 429) && attempt < attempts) {
        await res.body?.cancel().catch(() => {});
        const after = Number(res.headers.get("retry-after"));
        await sleep(Number.isFinite(after) && after > 0 ? Math.min(after * 1000, 10_000) : delay, signal);
        delay *= 2;
        continue;
      }
      return res;
    }
  }

  /** One fetch; for an insecure registry, HTTPS that fails at the transport level falls back to HTTP. */
  async #fetch(
    url: string,
    init: { method: string; headers: Record<string, string> },
    tls: TlsOptions,
    registry: boolean,
    signal: AbortSignal | undefined,
  ): Promise<Response> {
    const opts = { ...init, redirect: "manual", decompress: false, signal, tls } as RequestInit;
    try {
      return await fetch(url, opts);
    } catch (e) {
      if (!registry || !this.#o.insecure || !url.startsWith("https://") || signal?.aborted) throw e;
      const httpUrl = "http://" + url.slice("https://".length);
      const res = await fetch(httpUrl, { ...opts, tls: undefined } as RequestInit).catch(() => {
        throw e; // report the HTTPS error: plain HTTP did not work either
      });
      schemes.set(this.apiHost, "http");
      return res;
    }
  }

  async #authenticate(challenges: Challenge[], repo: string, signal: AbortSignal | undefined): Promise<string | undefined> {
    const c = this.#o.credentials ?? {};
    const bearer = challenges.find((x) => x.scheme === "bearer");
    if (bearer?.params.realm) return `Bearer ${await this.#token(bearer.params, repo, signal)}`;
    if (challenges.some((x) => x.scheme === "basic")) {
      if (c.username === undefined && c.password === undefined) return undefined;
      return `Basic ${Buffer.from(`${c.username ?? ""}:${c.password ?? ""}`).toString("base64")}`;
    }
    return undefined;
  }

  /** Gets a bearer token from the challenge's realm (anonymous, basic, or OAuth2 refresh token). */
  async #token(p: Record<string, string>, repo: string, signal: AbortSignal | undefined): Promise<string> {
    const c = this.#o.credentials ?? {};
    const realm = new URL(p.realm!);
    const scope = p.scope?.includes(`repository:${repo}:`) ? p.scope : `repository:${repo}:pull`;
    const tls = tlsOptionsFor(this.#o.certsDir, realm.host, realm.host === this.apiHost && this.#o.insecure);
    const headers: Record<string, string> = { "user-agent": this.#o.userAgent ?? "crio-ts" };
    let init: RequestInit;
    if (c.identityToken) {
      const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: c.identityToken, scope, client_id: "crio" });
      if (p.service) form.set("service", p.service);
      headers["content-type"] = "application/x-www-form-urlencoded";
      init = { method: "POST", headers, body: form.toString() };
    } else {
      if (p.service) realm.searchParams.set("service", p.service);
      realm.searchParams.set("scope", scope);
      if (c.username !== undefined || c.password !== undefined)
        headers.authorization = `Basic ${Buffer.from(`${c.username ?? ""}:${c.password ?? ""}`).toString("base64")}`;
      init = { method: "GET", headers };
    }
    let res: Response;
    try {
      res = await fetch(realm.toString(), { ...init, signal, tls } as RequestInit);
    } catch (e) {
      throw this.#transportError(e, realm.toString(), signal);
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel().catch(() => {});
      throw this.#unauthenticated(repo, `its token service ${realm.origin} answered ${res.status}`);
    }
    if (!res.ok) throw await statusError(res, `token service ${realm.origin} of registry ${this.host}`);
    const body = (await res.json().catch(() => ({}))) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new RuntimeError("unavailable", `token service ${realm.origin} of registry ${this.host} returned no token`);
    return token;
  }

  #unauthenticated(repo: string, why: string | undefined): RuntimeError {
    if (this.hasCredentials)
      return new RuntimeError(
        "unauthenticated",
        `authentication to registry ${this.host} failed for ${repo}: ${why ?? "unsupported authentication scheme"}; check the username and password (or token)`,
      );
    return new RuntimeError(
      "unauthenticated",
      `registry ${this.host} requires authentication for ${repo} and no credentials were found for it (give them with the pull, or in an auth file)`,
    );
  }

  #transportError(e: unknown, url: string, signal: AbortSignal | undefined): RuntimeError {
    if (e instanceof RuntimeError) return e;
    if (signal?.aborted) return RuntimeError.from(signal.reason ?? e);
    const code = String((e as { code?: unknown }).code ?? "");
    const host = new URL(url).host;
    if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|HOSTNAME_MISMATCH|ERR_TLS/i.test(code))
      return new RuntimeError(
        "unavailable",
        `cannot verify the TLS certificate of registry ${host} (${code}): put its CA in ${this.#o.certsDir ?? "<certs.d>"}/${host}/ca.crt, or mark the registry insecure in registries.conf`,
        { cause: e },
      );
    // A header fetch refuses (credentials with a newline or a control character): the request's fault.
    if (e instanceof TypeError && /header/i.test(e.message) && /invalid/i.test(e.message))
      return new RuntimeError("invalid-argument", `invalid credentials for registry ${host}: ${messageOf(e)}`, { cause: e });
    if (code === "EPROTO")
      return new RuntimeError(
        "unavailable",
        `TLS handshake with registry ${host} failed (does it speak HTTPS? plain HTTP is only used for registries marked insecure in registries.conf)`,
        { cause: e },
      );
    return new RuntimeError("unavailable", `cannot reach registry ${host}: ${code || messageOf(e)}`, { cause: e });
  }
}

/** The error for a final non-2xx response (its body is consumed). `what` names the object asked for. */
export async function statusError(res: Response, what: string): Promise<RuntimeError> {
  const text = await res.text().catch(() => "");
  let detail = "";
  try {
    const errs = (JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> }).errors ?? [];
    detail = errs.map((x) => [x.code, x.message].filter(Boolean).join(": ")).join("; ");
  } catch {
    detail = text.slice(0, 200).trim();
  }
  const tail = detail ? ` (${detail})` : "";
  const s = res.status;
  if (s === 404) return new RuntimeError("not-found", `${what} not found${tail}`);
  if (s === 401) return new RuntimeError("unauthenticated", `${what}: authentication required${tail}`);
  if (s === 403) return new RuntimeError("permission-denied", `${what}: access denied${tail}`);
  if (s === 429) return new RuntimeError("unavailable", `${what}: the registry is rate limiting requests (429 Too Many Requests)${tail}`);
  if (s >= 500) return new RuntimeError("unavailable", `${what}: the registry answered ${s} ${res.statusText}${tail}`);
  return new RuntimeError("unknown", `${what}: unexpected HTTP ${s} ${res.statusText}${tail}`);
}

// --- internal ---

/** Scheme that worked per API host (plain HTTP is remembered only for insecure registries). */
const schemes = new Map<string, "https" | "http">();
