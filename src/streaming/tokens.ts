/**
 * Single-use tokens for streaming URLs (the kubelet's requestCache): a CRI call stores its
 * request under a random URL-safe token; the client's first request to the URL consumes it.
 * Tokens expire after a TTL, and at most `max` wait at once.
 */
import { randomBytes } from "node:crypto";
import { RuntimeError } from "../errors.ts";

/** Options of a token cache. */
export interface TokenCacheOptions {
  /** How long a token stays valid (the kubelet's is 1 minute). */
  ttlMs: number;
  /** How many unconsumed tokens may exist at once (the kubelet's is 1000). */
  max: number;
  /** The clock, for tests. */
  now?: () => number;
}

/** Random bytes per token: 128 bits, 22 base64url characters. */
const TOKEN_BYTES = 16;

/** Maps tokens to pending requests. */
export class TokenCache<T> {
  #entries = new Map<string, { value: T; expires: number }>();
  #now: () => number;

  constructor(private readonly o: TokenCacheOptions) {
    this.#now = o.now ?? Date.now;
  }

  /** Tokens waiting to be used (expired ones included until the next insert). */
  get size(): number {
    return this.#entries.size;
  }

  /** Stores `value` and returns its token. Throws RuntimeError resource-exhausted when full. */
  insert(value: T): string {
    this.#gc();
    if (this.#entries.size >= this.o.max)
      throw new RuntimeError("resource-exhausted", `maximum number of in-flight streaming requests (${this.o.max}) exceeded`);
    for (let i = 0; i < 10; i++) {
      const token = randomBytes(TOKEN_BYTES).toString("base64url");
      if (this.#entries.has(token)) continue;
      this.#entries.set(token, { value, expires: this.#now() + this.o.ttlMs });
      return token;
    }
    throw new RuntimeError("internal", "failed to generate a unique streaming token");
  }

  /** Removes the token and returns its value, or undefined when unknown, used or expired. */
  consume(token: string): T | undefined {
    const e = this.#entries.get(token);
    if (!e) return undefined;
    this.#entries.delete(token);
    return this.#now() > e.expires ? undefined : e.value;
  }

  /** Forgets every token. */
  clear(): void {
    this.#entries.clear();
  }

  // --- internal ---

  #gc(): void {
    const now = this.#now();
    // Insertion order is expiry order (one TTL for all), so stop at the first live entry.
    for (const [token, e] of this.#entries) {
      if (now <= e.expires) return;
      this.#entries.delete(token);
    }
  }
}
