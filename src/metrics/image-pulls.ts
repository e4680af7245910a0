import { RuntimeError } from "../errors.ts";
import type { ImageRecord, PullOptions, PullProgress } from "../image/index.ts";
import { sizeBucket, type CrioMetrics } from "./crio-metrics.ts";

/** What instrumentPulls wraps: the image service's pull. */
export interface Pullable {
  pull(ref: string, o?: PullOptions): Promise<ImageRecord>;
}

/**
 * Makes every pull through `images` (the PullImage RPC and the pause-image pulls of
 * RunPodSandbox alike) feed the image metrics, by listening to the pull's progress events:
 * success and failure counts, bytes downloaded per media type and size bucket, layers reused,
 * the per-layer size histogram. Replaces `images.pull` on that object and returns it.
 */
export function instrumentPulls<T extends Pullable>(images: T, metrics: CrioMetrics): T {
  const pull = images.pull.bind(images);
  const counting = new PullCounter(metrics);
  images.pull = async (ref: string, o: PullOptions = {}) => {
    const listener = counting.listener();
    const user = o.onProgress;
    try {
      const r = await pull(ref, { ...o, onProgress: (p) => (listener(p), user?.(p)) });
      metrics.pullSuccesses.inc();
      return r;
    } catch (e) {
      metrics.pullFailures.inc({ error: pullErrorLabel(e) });
      throw e;
    } finally {
      counting.release(listener);
    }
  };
  return images;
}

/** The `error` label of a failed pull: the error kind in CRI-O's upper-case style (NOT_FOUND, UNAUTHENTICATED, …). */
export function pullErrorLabel(e: unknown): string {
  return RuntimeError.from(e).kind.toUpperCase().replace(/-/g, "_");
}

/**
 * Turns progress events into byte counts. A layer downloaded once for two concurrent pulls
 * (a shared layer job reports to both) is counted once: the first pull to report a layer's
 * download owns its bytes until the layer is done.
 */
export class PullCounter {
  readonly #owners = new Map<string, Listener>();
  readonly #m: CrioMetrics;
  constructor(m: CrioMetrics) {
    this.#m = m;
  }

  /** A progress listener for one pull. */
  listener(): Listener {
    const media = new Map<string, string>();
    const counted = new Map<string, number>();
    const self: Listener = (p: PullProgress) => {
      if (p.type === "manifest") {
        for (const l of p.layers) media.set(l.digest, l.mediaType);
        return;
      }
      if (p.type !== "layer") return;
      if (p.state === "exists") {
        this.#m.layerReuse.inc({ name: p.digest });
        this.#m.pullSkippedBytes.inc({ size: sizeBucket(p.total) }, p.total);
        return;
      }
      const owner = this.#owners.get(p.digest);
      if (owner && owner !== self) return;
      if (!owner) {
        if (p.state !== "downloading") return; // unpacking or done without a download seen: not ours to count
        this.#owners.set(p.digest, self);
      }
      // Downloading reports the bytes so far; once unpacking or done, the whole blob has arrived.
      const now = p.state === "downloading" ? Math.min(p.current, p.total) : p.total;
      const before = counted.get(p.digest) ?? 0;
      if (now > before) {
        this.#m.pullBytes.inc({ mediatype: media.get(p.digest) ?? "", size: sizeBucket(p.total) }, now - before);
        counted.set(p.digest, now);
      }
      if (p.state === "done") {
        this.#m.layerSize.observe({}, p.total);
        this.#owners.delete(p.digest);
      }
    };
    return self;
  }

  /** Forgets a finished pull's ownerships (a failed pull leaves layers half-counted). */
  release(l: Listener): void {
    for (const [d, o] of this.#owners) if (o === l) this.#owners.delete(d);
  }
}

// --- internal ---

type Listener = (p: PullProgress) => void;
