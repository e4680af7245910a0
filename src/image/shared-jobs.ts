import { RuntimeError } from "../errors.ts";

/**
 * Runs one job per key, however many callers ask for it at once (two pulls of one image, two
 * images sharing a layer). Each caller waits with its own signal; the job's own signal aborts
 * only when every waiting caller has given up. Progress reported by the job reaches every waiter.
 */
export class SharedJobs<T, P = number> {
  #jobs = new Map<string, Job<T, P>>();

  /** Joins the running job for `key` or starts `fn`. `onProgress` receives the job's progress calls. */
  run(
    key: string,
    signal: AbortSignal | undefined,
    fn: (signal: AbortSignal, progress: (p: P) => void) => Promise<T>,
    onProgress?: (p: P) => void,
  ): Promise<T> {
    let job = this.#jobs.get(key);
    if (!job) {
      const ac = new AbortController();
      const listeners = new Set<(p: P) => void>();
      if (onProgress) listeners.add(onProgress); // before fn runs: it may report synchronously
      const created: Job<T, P> = { ac, waiters: 0, listeners, promise: Promise.resolve() as Promise<T> };
      created.promise = (async () => {
        try {
          return await fn(ac.signal, (p) => {
            for (const l of listeners) l(p);
          });
        } finally {
          if (this.#jobs.get(key) === created) this.#jobs.delete(key);
        }
      })();
      created.promise.catch(() => {});
      this.#jobs.set(key, created);
      job = created;
    }
    return this.#wait(job, signal, onProgress);
  }

  /** Resolves once no job is running, each one finished with its cleanup (jobs started meanwhile too). */
  async idle(): Promise<void> {
    while (this.#jobs.size > 0) await Promise.allSettled([...this.#jobs.values()].map((j) => j.promise));
  }

  /**
   * Resolves once the job for `key` has finished its cleanup, if it was cancelled (no caller
   * wants it any more) and is still unwinding; at once otherwise, and after `timeoutMs` at most.
   * A caller whose own wait was cut short by its signal uses it to leave nothing behind.
   */
  async unwound(key: string, timeoutMs: number): Promise<void> {
    const job = this.#jobs.get(key);
    if (!job?.ac.signal.aborted) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([job.promise.catch(() => {}), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Number of jobs running (tests). */
  get size(): number {
    return this.#jobs.size;
  }

  // --- internal ---

  async #wait(job: Job<T, P>, signal: AbortSignal | undefined, onProgress?: (p: P) => void): Promise<T> {
    job.waiters++;
    if (onProgress) job.listeners.add(onProgress); // a Set: adding the starter's listener again is a no-op
    let onAbort: (() => void) | undefined;
    try {
      if (!signal) return await job.promise;
      if (signal.aborted) throw RuntimeError.from(signal.reason);
      return await Promise.race([
        job.promise,
        new Promise<never>((_, reject) => {
          onAbort = () => reject(RuntimeError.from(signal.reason));
          signal.addEventListener("abort", onAbort, { once: true });
        }),
      ]);
    } finally {
      if (onAbort) signal?.removeEventListener("abort", onAbort);
      if (onProgress) job.listeners.delete(onProgress);
      if (--job.waiters === 0 && signal?.aborted) job.ac.abort(signal.reason);
    }
  }
}

// --- internal ---

interface Job<T, P> {
  ac: AbortController;
  waiters: number;
  listeners: Set<(p: P) => void>;
  promise: Promise<T>;
}
