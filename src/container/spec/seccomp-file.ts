/**
 * seccomp_profile: the file whose profile RuntimeDefault means instead of the built-in one. Loaded
 * at start, where a missing or invalid file stops the daemon (as in CRI-O); re-read when its path
 * (SIGHUP) or its size or mtime changes, where a file that fails to load is logged and the
 * previous profile stays.
 */
import { readFileSync, statSync } from "node:fs";
import { invalid, messageOf } from "../../errors.ts";
import type { Logger } from "../../log/index.ts";
import { parseSeccompProfile, type SeccompProfile } from "./seccomp-profile.ts";

/** The seccomp_profile file's profile, cached until the file or the configured path changes. */
export class SeccompProfileFile {
  #loaded: { path: string; stamp: string; profile: SeccompProfile } | undefined;
  /** `path@stamp` of a file that failed to load: not tried again until it changes. */
  #refused = "";

  /** Loads `path` ("" = none: the built-in profile); invalid-argument when it cannot be loaded. */
  constructor(
    path: string,
    readonly log: Logger,
  ) {
    if (!path) return;
    try {
      this.#loaded = load(path);
    } catch (e) {
      throw invalid(`invalid seccomp_profile "${path}": ${messageOf(e)}`);
    }
    log.info(`Using seccomp profile "${path}" for RuntimeDefault`);
  }

  /**
   * The profile of `path` (the seccomp_profile now configured), re-read when the file changed;
   * undefined for "" (the built-in default). A file that fails to load keeps the previous profile.
   */
  profile(path: string): SeccompProfile | undefined {
    if (!path) return undefined;
    const stamp = stampOf(path);
    const cur = this.#loaded;
    if (cur?.path === path && cur.stamp === stamp) return cur.profile;
    if (this.#refused === `${path}@${stamp}`) return cur?.profile;
    try {
      this.#loaded = load(path);
      this.#refused = "";
      this.log.info(`Using seccomp profile "${path}" for RuntimeDefault`);
    } catch (e) {
      this.#refused = `${path}@${stamp}`;
      this.log.error(`invalid seccomp_profile "${path}", keeping the previous profile: ${messageOf(e)}`);
    }
    return this.#loaded?.profile;
  }
}

// --- internal ---

function load(path: string): { path: string; stamp: string; profile: SeccompProfile } {
  const stamp = stampOf(path);
  return { path, stamp, profile: parseSeccompProfile(readFileSync(path, "utf8"), path) };
}

/** A file's size and mtime, to notice a changed profile; "" when it cannot be read. */
function stampOf(path: string): string {
  try {
    const st = statSync(path);
    return `${st.size}/${st.mtimeMs}`;
  } catch {
    return "";
  }
}
