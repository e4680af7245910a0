import type { LayerUsage } from "./types.ts";

/**
 * Writable-layer usage per container, cached: measuring it walks the container's upper
 * directory (as CRI-O and containerd do; neither the overlay nor the kernel keeps a per-directory
 * total). A value younger than its age bound is served as is; an older one is served while one
 * walk refreshes it in the background (stale-while-revalidate); the first request waits for
 * its walk. The age bound is `maxAgeMs` plus a share of `spreadMs` fixed per container (from its
 * id), so a node's containers are walked a few per stats call rather than all in the same one.
 * The served usage carries the time of its walk. Entries not asked for within `forgetMs` are dropped.
 */
export class LayerCache {
  readonly #entries = new Map<string, { value?: LayerUsage; at: number; used: number; pending?: Promise<LayerUsage | undefined> }>();

  constructor(
    private readonly measure: (id: string) => Promise<{ bytes: number; inodes: number; mountpoint: string }>,
    private readonly maxAgeMs = 10_000,
    private readonly forgetMs = 10 * 60_000,
    private readonly now: () => number = Date.now,
    private readonly spreadMs = 0,
  ) {}

  /** The container's layer usage; undefined when it cannot be measured (no writable layer). */
  async get(id: string): Promise<LayerUsage | undefined> {
    const t = this.now();
    let e = this.#entries.get(id);
    if (!e) this.#entries.set(id, (e = { at: 0, used: t }));
    e.used = t;
    if (e.value && t - e.at < this.#bound(id)) return e.value;
    const walk = (e.pending ??= this.#walk(id, e));
    return e.value ?? (await walk);
  }

  /** Drops entries of containers not asked about lately (and every `keep`-less one when given). */
  prune(keep?: Set<string>): void {
    const t = this.now();
    for (const [id, e] of this.#entries) if ((keep && !keep.has(id)) || t - e.used > this.forgetMs) this.#entries.delete(id);
  }

  // --- internal ---

  /** How old a container's value may be: maxAgeMs plus its own share of spreadMs. */
  #bound(id: string): number {
    if (this.spreadMs <= 0) return this.maxAgeMs;
    let h = 0x811c9dc5;
    for (let i = 0; i < id.length && i < 16; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193); // FNV-1a
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b); // mixed, so short ids spread too
    h = (h ^ (h >>> 13)) >>> 0;
    return this.maxAgeMs + (h % this.spreadMs);
  }

  async #walk(id: string, e: { value?: LayerUsage; at: number; pending?: Promise<LayerUsage | undefined> }): Promise<LayerUsage | undefined> {
    try {
      const u = await this.measure(id);
      e.value = { at: this.now(), mountpoint: u.mountpoint, bytes: u.bytes, inodes: u.inodes };
      e.at = e.value.at;
      return e.value;
    } catch {
      return e.value;
    } finally {
      e.pending = undefined;
    }
  }
}
