/** The text exposition format's escaping and number rules. */

/** A number as Prometheus writes it: +Inf, -Inf, NaN, or the shortest decimal form. */
export function num(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** A label value escaped for the exposition format (backslash, double quote, newline). */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** `{a="x",b="y"}` from rendered pairs; "" for none. */
export function labelText(pairs: string[]): string {
  return pairs.length ? `{${pairs.join(",")}}` : "";
}

/** HELP text escaped (backslash, newline). */
export function escapeHelp(h: string): string {
  return h.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}
