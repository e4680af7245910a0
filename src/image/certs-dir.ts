import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * TLS material of a registry, containers-certs.d(5): in <certsDir>/<host[:port]>/, every *.crt
 * file is a CA to trust (on top of the system store), and a *.cert file with the *.key of the
 * same base name is a client certificate. The system store is the distribution's bundle file.
 */

/** Options for Bun's fetch `tls` field. */
export interface TlsOptions {
  ca?: string[];
  cert?: string;
  key?: string;
  rejectUnauthorized?: boolean;
}

/** The Debian/Ubuntu system CA bundle; other layouts fall back to Bun's bundled roots. */
export const SYSTEM_CA_FILES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

/**
 * The TLS options to reach `host` (exactly as written in the image reference, with its port).
 * `insecure` turns off certificate verification (registries.conf insecure = true).
 */
export function tlsOptionsFor(certsDir: string | undefined, host: string, insecure: boolean): TlsOptions {
  const o: TlsOptions = {};
  const extra: string[] = [];
  const dir = certsDir ? join(certsDir, host) : undefined;
  if (dir && existsSync(dir)) {
    const files = readdirSync(dir).sort();
    for (const f of files) if (f.endsWith(".crt")) extra.push(readFileSync(join(dir, f), "utf8"));
    for (const f of files) {
      if (!f.endsWith(".cert")) continue;
      const key = join(dir, f.slice(0, -".cert".length) + ".key");
      if (!existsSync(key)) continue;
      o.cert = readFileSync(join(dir, f), "utf8");
      o.key = readFileSync(key, "utf8");
      break;
    }
  }
  const system = systemCa();
  if (system || extra.length) o.ca = system ? [system, ...extra] : extra;
  if (insecure) o.rejectUnauthorized = false;
  return o;
}

// --- internal ---

let systemCaText: string | null | undefined;

function systemCa(): string | null {
  if (systemCaText !== undefined) return systemCaText;
  systemCaText = null;
  for (const f of SYSTEM_CA_FILES) {
    if (!existsSync(f)) continue;
    systemCaText = readFileSync(f, "utf8");
    break;
  }
  return systemCaText;
}
