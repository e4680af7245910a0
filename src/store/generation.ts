/**
 * One counter for every change a List call can show: a record added to or removed from an index,
 * or a record's status replaced. A cached list answer (cri/list-cache.ts) is valid while the
 * counter has not moved. Process-wide: a change in one store invalidates every cached list, which
 * costs one rebuild at most.
 */
let current = 0;

/** The current generation. */
export function storeGeneration(): number {
  return current;
}

/** Marks a change (IdIndex and StoredRecord call it). */
export function bumpStoreGeneration(): void {
  current++;
}
