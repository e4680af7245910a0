import { existsSync, readFileSync } from "node:fs";
import { invalid, messageOf } from "../errors.ts";
import type { ImageRef } from "./reference.ts";

/**
 * Registry credentials: from the CRI AuthConfig of a pull, else from auth files in the
 * containers-auth.json(5) / Docker config.json format ({"auths": {"host[/path]": {"auth": base64}}}),
 * most specific key first. Also the parser of WWW-Authenticate challenges (RFC 7235).
 */

/** Credentials for one registry. Empty object = anonymous. */
export interface Credentials {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token, exchanged at the token endpoint (Docker's identitytoken). */
  identityToken?: string;
  /** A bearer token sent as is, with no token exchange. */
  registryToken?: string;
}

/** The CRI AuthConfig of a pull (protobuf fields; empty strings mean unset). */
export interface PullAuth {
  username?: string;
  password?: string;
  /** base64("username:password") */
  auth?: string;
  serverAddress?: string;
  identityToken?: string;
  registryToken?: string;
}

/** Turns a CRI AuthConfig into credentials; undefined when it carries none. Throws invalid-argument on a bad `auth`. */
export function credentialsFromPullAuth(a: PullAuth | undefined): Credentials | undefined {
  if (!a) return undefined;
  if (a.registryToken) return { registryToken: a.registryToken };
  if (a.identityToken) return { identityToken: a.identityToken, username: a.username || undefined };
  if (a.username || a.password) return { username: a.username ?? "", password: a.password ?? "" };
  if (a.auth) return decodeAuthField(a.auth, "the pull's auth config");
  return undefined;
}

/** Decodes a base64 "user:password" field; `where` names its origin in errors. */
export function decodeAuthField(b64: string, where: string): Credentials {
  let text: string;
  try {
    text = Buffer.from(b64, "base64").toString("utf8");
  } catch {
    throw invalid(`${where}: "auth" is not base64`);
  }
  const i = text.indexOf(":");
  if (i < 0) throw invalid(`${where}: "auth" does not decode to "username:password"`);
  return { username: text.slice(0, i), password: text.slice(i + 1).replace(/\n$/, "") };
}

/**
 * Looks `ref`'s registry up in the auth files, in order; the first file with a matching key
 * wins, and within a file the most specific key ("host/ns/repo" before "host/ns" before "host").
 * Missing files are skipped; an unreadable or malformed file throws invalid-argument naming it.
 */
export function credentialsFromFiles(files: readonly string[], ref: ImageRef): Credentials | undefined {
  for (const file of files) {
    if (!file || !existsSync(file)) continue;
    const auths = readAuths(file);
    const keys = lookupKeys(ref);
    for (const k of keys) {
      const e = auths.get(k);
      if (!e) continue;
      if (e.identitytoken) return { identityToken: e.identitytoken, username: e.username };
      if (e.auth) return decodeAuthField(e.auth, `auth file ${file} ("${k}")`);
      if (e.username !== undefined || e.password !== undefined) return { username: e.username ?? "", password: e.password ?? "" };
    }
  }
  return undefined;
}

/** A parsed WWW-Authenticate challenge: scheme in lower case and its parameters (keys lower case). */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses a WWW-Authenticate header value, which may hold several challenges. */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const s = header;
  const skipWs = () => {
    while (i < s.length && (s[i] === " " || s[i] === "\t")) i++;
  };
  const token = () => {
    const m = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/.exec(s.slice(i));
    if (!m) return "";
    i += m[0].length;
    return m[0];
  };
  while (i < s.length) {
    skipWs();
    while (s[i] === ",") {
      i++;
      skipWs();
    }
    const scheme = token();
    if (!scheme) break;
    const ch: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(ch);
    skipWs();
    // auth-params: key=value pairs separated by commas, until the next scheme (a token not followed by "=").
    for (;;) {
      const save = i;
      skipWs();
      const key = token();
      skipWs();
      if (!key || s[i] !== "=") {
        i = save;
        break;
      }
      i++;
      skipWs();
      let value = "";
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === "\\" && i + 1 < s.length) i++;
          value += s[i++];
        }
        i++;
      } else {
        const m = /^[^,\s]*/.exec(s.slice(i))!;
        value = m[0];
        i += value.length;
      }
      ch.params[key.toLowerCase()] = value;
      skipWs();
      if (s[i] === ",") i++;
      else break;
    }
  }
  return out;
}

/** The auth-file keys that may hold credentials for `ref`, most specific first. */
export function lookupKeys(ref: ImageRef): string[] {
  const parts = ref.path.split("/");
  const out: string[] = [];
  for (let n = parts.length; n >= 1; n--) out.push(`${ref.domain}/${parts.slice(0, n).join("/")}`);
  out.push(ref.domain);
  return out;
}

// --- internal ---

interface AuthEntry {
  auth?: string;
  identitytoken?: string;
  username?: string;
  password?: string;
}

/** The file's "auths" map, keys normalised (scheme and legacy /v1/ path dropped, Docker Hub aliases folded). */
function readAuths(file: string): Map<string, AuthEntry> {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw invalid(`auth file ${file}: ${messageOf(e)}`);
  }
  const auths = (doc as { auths?: unknown } | null)?.auths;
  const out = new Map<string, AuthEntry>();
  if (auths === undefined) return out;
  if (!auths || typeof auths !== "object") throw invalid(`auth file ${file}: "auths" must be an object`);
  for (const [k, v] of Object.entries(auths as Record<string, unknown>)) {
    if (!v || typeof v !== "object") continue;
    const key = normalizeKey(k);
    if (!out.has(key)) out.set(key, v as AuthEntry);
  }
  return out;
}

function normalizeKey(k: string): string {
  let key = k;
  if (/^https?:\/\//.test(key)) key = key.replace(/^https?:\/\//, "").split("/")[0]!; // legacy "https://host/v1/"
  const slash = key.indexOf("/");
  const host = slash < 0 ? key : key.slice(0, slash);
  const rest = slash < 0 ? "" : key.slice(slash);
  const h = host === "index.docker.io" || host === "registry-1.docker.io" ? "docker.io" : host;
  return h + rest.replace(/\/+$/, "");
}
