/**
 * The daemon's memory settling, as a container's monitor settles (conmon/settle.ts). Start-up,
 * and every burst of pod, container and image changes, run a lot of code once: JSC keeps its
 * compiled code, the heap keeps the garbage, and the process keeps mapping every page of the
 * executable that code touched (~35 MB after start-up: the Bun runtime and the bytecode). Once
 * the node is quiet the daemon gives that back: a full GC, then releaseCleanFilePages (the clean
 * file pages stay in the page cache; what the steady load — relists, stats, probes — runs maps
 * back in). Measured idle: RSS 65 → 30 MB. After start-up it first drops JSC's compiled code too
 * (Bun.shrink: start-up's code is never run again); after a burst it keeps it: the steady load's
 * code is compiled by then, and compiling it again cost the daemon ~0.3 % of a core over the
 * 90 s after a settle (40 pods, A/B).
 */
import { releaseCleanFilePages } from "../sys/libc.ts";

/** What a settle does, in order, and how long it waits between the steps. */
export interface SettleSteps {
  shrink(): void;
  gc(): void;
  release(): void;
}

const REAL_STEPS: SettleSteps = {
  shrink: () => Bun.shrink(),
  gc: () => Bun.gc(true),
  release: () => void releaseCleanFilePages(),
};

/** The RPCs that change the node: a burst of them runs code the steady load does not. */
export const CHANGING_CALLS: ReadonlySet<string> = new Set([
  "RunPodSandbox",
  "StopPodSandbox",
  "RemovePodSandbox",
  "CreateContainer",
  "StartContainer",
  "StopContainer",
  "RemoveContainer",
  "PullImage",
  "RemoveImage",
]);

/** Settles `quietMs` after the last change it was told of, at most once per `minIntervalMs`. */
export class Settler {
  readonly #quietMs: number;
  readonly #minIntervalMs: number;
  readonly #steps: SettleSteps;
  #timer?: ReturnType<typeof setTimeout>;
  #last = Number.NEGATIVE_INFINITY;
  #shrinkNext = false;
  #closed = false;
  /** Settles done so far (the debug dump). */
  count = 0;

  constructor(o: { quietMs: number; minIntervalMs: number; steps?: SettleSteps }) {
    this.#quietMs = o.quietMs;
    this.#minIntervalMs = o.minIntervalMs;
    this.#steps = o.steps ?? REAL_STEPS;
  }

  /**
   * Something changed: settle once `quietMs` (or `o.afterMs`) pass without another change;
   * `o.shrink` drops JSC's compiled code first (after start-up).
   */
  poke(o: { afterMs?: number; shrink?: boolean } = {}): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#shrinkNext ||= o.shrink ?? false;
    const wait = Math.max(o.afterMs ?? this.#quietMs, this.#last + this.#minIntervalMs - performance.now());
    this.#timer = setTimeout(() => this.#settle(), wait);
    this.#timer.unref?.();
  }

  /** Tells it of a finished CRI call (the server's observer): changing calls poke it. */
  observe(method: string): void {
    if (CHANGING_CALLS.has(method)) this.poke();
  }

  /** Stops any pending settle. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  // --- internal ---

  #settle(): void {
    if (this.#closed) return;
    this.#last = performance.now();
    this.count++;
    const shrink = this.#shrinkNext;
    this.#shrinkNext = false;
    if (shrink) this.#steps.shrink();
    // JSC drops the code on its next idle moment: collect and unmap a little later
    const t = setTimeout(() => {
      if (this.#closed) return;
      try {
        this.#steps.gc();
        this.#steps.release();
      } catch {
        // best effort: memory stays as it was
      }
    }, GC_DELAY_MS);
    t.unref?.();
  }
}

const GC_DELAY_MS = 300;
