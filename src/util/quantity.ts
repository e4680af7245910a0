/**
 * A byte size as the shm size annotation takes it (a subset of Kubernetes quantities): digits
 * with an optional k/M/G (powers of 1000) or Ki/Mi/Gi (powers of 1024) suffix, case-insensitive.
 * Undefined when malformed or not positive.
 */
export function parseByteSize(v: string): number | undefined {
  const m = /^(\d+)([kmg]i?)?$/i.exec(v.trim());
  if (!m) return undefined;
  const n = Number(m[1]) * (m[2] ? MULT[m[2].toLowerCase()]! : 1);
  return n > 0 && Number.isSafeInteger(n) ? n : undefined;
}

const MULT: Record<string, number> = { k: 1e3, ki: 1024, m: 1e6, mi: 1024 ** 2, g: 1e9, gi: 1024 ** 3 };
