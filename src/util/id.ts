import { randomBytes } from "node:crypto";

/** A new 64-hex-character object id, as CRI-O and containerd use. */
export function newId(): string {
  return randomBytes(32).toString("hex");
}

/** True for a full 64-hex id. */
export function isFullId(s: string): boolean {
  return /^[0-9a-f]{64}$/.test(s);
}
