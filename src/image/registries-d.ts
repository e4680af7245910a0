import { existsSync, readdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { RuntimeError, messageOf } from "../errors.ts";
import { scopeCandidates } from "./policy.ts";
import type { ImageRef } from "./reference.ts";

/**
 * containers-registries.d(5): where an image's signatures are stored. Every *.yaml file of the
 * directory is read; at most one may set `default-docker`, and a namespace may appear in one
 * file only. For an image, the most specific `docker:` namespace with a lookaside wins (the same
 * scopes as policy.json), else default-docker, else containers/image's built-in default
 * (file:///var/lib/containers/sigstore for root). use-sigstore-attachments is looked up the same
 * way. The directory is `$HOME/.config/containers/registries.d` when it exists, else
 * `/etc/containers/registries.d`.
 */

/** One namespace's settings. */
export interface SignatureStorage {
  lookaside?: string;
  useSigstoreAttachments?: boolean;
}

/** A parsed registries.d directory. */
export interface RegistriesD {
  dir: string;
  defaultDocker?: SignatureStorage;
  docker: Record<string, SignatureStorage>;
}

/** The registries.d directory containers/image would use, given HOME. */
export function registriesDirPath(env: Record<string, string | undefined> = process.env): string {
  const home = env.HOME || homedir();
  const user = join(home, ".config", "containers", "registries.d");
  return existsSync(user) ? user : "/etc/containers/registries.d";
}

/** Reads every *.yaml (and *.yml) file of `dir`; a missing dir is empty. Throws invalid-argument naming the file. */
export function loadRegistriesD(dir: string): RegistriesD {
  const out: RegistriesD = { dir, docker: {} };
  if (!existsSync(dir)) return out;
  let defaultFrom: string | undefined;
  const from: Record<string, string> = {};
  for (const name of readdirSync(dir)
    .filter((n) => n.endsWith(".yaml") || n.endsWith(".yml"))
    .sort()) {
    const file = join(dir, name);
    const bad = (m: string) => new RuntimeError("invalid-argument", `registries.d file ${file}: ${m}`);
    let doc: unknown;
    try {
      doc = Bun.YAML.parse(readFileSync(file, "utf8"));
    } catch (e) {
      throw bad(`invalid YAML: ${messageOf(e)}`);
    }
    if (doc === null || doc === undefined) continue;
    if (typeof doc !== "object" || Array.isArray(doc)) throw bad("must be a mapping");
    const d = doc as Record<string, unknown>;
    for (const k of Object.keys(d)) if (k !== "default-docker" && k !== "docker") throw bad(`unknown key "${k}"`);
    if (d["default-docker"] != null) {
      if (defaultFrom) throw bad(`default-docker is already set in ${defaultFrom}`);
      defaultFrom = file;
      out.defaultDocker = storage(d["default-docker"], "default-docker", bad);
    }
    if (d.docker != null) {
      if (typeof d.docker !== "object" || Array.isArray(d.docker)) throw bad(`"docker" must map namespaces to settings`);
      for (const [ns, v] of Object.entries(d.docker as Record<string, unknown>)) {
        if (from[ns]) throw bad(`namespace "${ns}" is already configured in ${from[ns]}`);
        from[ns] = file;
        out.docker[ns] = storage(v, `docker["${ns}"]`, bad);
      }
    }
  }
  return out;
}

/** The lookaside base URL for `ref` (the name as written), with the repository path appended. */
export function lookasideFor(conf: RegistriesD, ref: ImageRef): string | undefined {
  let base: string | undefined;
  for (const s of scopeCandidates(ref)) {
    base = conf.docker[s]?.lookaside;
    if (base) break;
  }
  base ??= conf.defaultDocker?.lookaside ?? (process.getuid?.() === 0 ? "file:///var/lib/containers/sigstore" : undefined);
  if (!base) return undefined;
  return `${base.replace(/\/+$/, "")}/${ref.path}`;
}

/** Whether sigstore attachments (`sha256-<digest>.sig`) are read for `ref`. */
export function usesSigstoreAttachments(conf: RegistriesD, ref: ImageRef): boolean {
  for (const s of scopeCandidates(ref)) {
    const v = conf.docker[s]?.useSigstoreAttachments;
    if (v !== undefined) return v;
  }
  return conf.defaultDocker?.useSigstoreAttachments ?? false;
}

// --- internal ---

function storage(v: unknown, where: string, bad: (m: string) => Error): SignatureStorage {
  if (v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw bad(`${where} must be a mapping`);
  const out: SignatureStorage = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    switch (k) {
      case "lookaside":
      case "sigstore": // the old name of lookaside
        if (typeof x !== "string" || !/^(file|https?):\/\//.test(x))
          throw bad(`${where}.${k} must be a file://, http:// or https:// URL (got ${JSON.stringify(x)})`);
        out.lookaside ??= x;
        break;
      case "lookaside-staging":
      case "sigstore-staging":
        if (typeof x !== "string") throw bad(`${where}.${k} must be a URL`);
        break; // where signatures are written; a pull never writes
      case "use-sigstore-attachments":
        if (typeof x !== "boolean") throw bad(`${where}.use-sigstore-attachments must be true or false`);
        out.useSigstoreAttachments = x;
        break;
      default:
        throw bad(`${where} has unknown key "${k}"`);
    }
  }
  return out;
}
