/**
 * TLS material of the streaming server, from files that may be replaced while it runs
 * (CRI-O reloads stream_tls_cert/key/ca): reload() re-reads them when their size or mtime
 * changed. A half-written pair fails to load; the previous one stays in use.
 */
import { readFileSync, statSync } from "node:fs";
import type { SecureContextOptions } from "node:tls";

/** Paths of the server's certificate, key and (to require client certificates) CA bundle. */
export interface TlsFiles {
  cert: string;
  key: string;
  ca?: string;
}

/** Watches a certificate/key/CA set by stat. */
export class TlsMaterial {
  #stamp = "";

  constructor(readonly files: TlsFiles) {}

  /** Reads the files now (throws when unreadable). */
  load(): SecureContextOptions & { requestCert: boolean } {
    const stamp = this.#currentStamp();
    const opts = {
      cert: readFileSync(this.files.cert),
      key: readFileSync(this.files.key),
      ca: this.files.ca ? readFileSync(this.files.ca) : undefined,
      requestCert: this.files.ca !== undefined,
    };
    this.#stamp = stamp;
    return opts;
  }

  /** The new material when a file changed since the last load, else undefined. Throws when unreadable. */
  reloadIfChanged(): (SecureContextOptions & { requestCert: boolean }) | undefined {
    if (this.#currentStamp() === this.#stamp) return undefined;
    return this.load();
  }

  // --- internal ---

  #currentStamp(): string {
    return [this.files.cert, this.files.key, this.files.ca]
      .map((p) => {
        if (!p) return "-";
        const s = statSync(p);
        return `${s.size}:${s.mtimeMs}:${s.ino}`;
      })
      .join("|");
  }
}
