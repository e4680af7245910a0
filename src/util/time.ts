/**
 * Wall-clock time in nanoseconds as a bigint-free decimal string pair. JS clocks give
 * microseconds at best; the sub-millisecond part comes from performance.now().
 */
export function nowRfc3339Nano(): string {
  const ms = performance.timeOrigin + performance.now();
  const whole = Math.floor(ms);
  const iso = new Date(whole).toISOString(); // 2026-11-29T06:47:05.162Z
  const frac = Math.floor((ms - whole) * 1e6)
    .toString()
    .padStart(6, "0");
  return `${iso.slice(0, 23)}${frac}Z`;
}

/** Milliseconds since the epoch, with sub-millisecond precision. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
