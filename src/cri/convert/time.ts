/** Milliseconds (domain) → nanoseconds (CRI wire). */
export const toNanos = (ms: number | undefined): bigint => (ms ? BigInt(Math.trunc(ms * 1000)) * 1000n : 0n);
/** CRI int64 seconds → number. */
export const toSeconds = (s: bigint): number => Number(s);
