/** A counting semaphore: at most `limit` holders at once, served in arrival order. */
export class Semaphore {
  #free: number;
  #queue: Array<() => void> = [];

  /** `limit` ≥ 1. */
  constructor(limit: number) {
    this.#free = Math.max(1, Math.floor(limit));
  }

  /** Runs `fn` once a slot is free; a caller whose signal aborts while queued leaves the queue. */
  async use<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.#acquire(signal);
    try {
      return await fn();
    } finally {
      this.#release();
    }
  }

  // --- internal ---

  #acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = this.#queue.indexOf(grant);
        if (i >= 0) this.#queue.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(grant);
    });
  }

  #release(): void {
    const next = this.#queue.shift();
    if (next) next();
    else this.#free++;
  }
}
