/**
 * systemd-journald's native protocol (systemd.journal-fields(7), "Native Journal Protocol"): one
 * datagram per entry on a unix SOCK_DGRAM socket (/run/systemd/journal/socket), each field
 * `KEY=value\n`, or `KEY\n<u64 LE length><bytes>\n` for values that may hold a newline. Entries
 * larger than a datagram are not sent (journald would need them through a memfd).
 */
import { ptr } from "bun:ffi";
import { concatBytes } from "../util/bytes.ts";
import { daemonLibc, libc } from "./libc.ts";
import { shortSocketPath, type ShortSocketPath } from "./short-path.ts";

/** The journal socket systemd-journald listens on. */
export const JOURNAL_SOCKET = "/run/systemd/journal/socket";

/** Encodes one entry; MESSAGE and any value with a newline in the binary form. */
export function encodeJournalEntry(fields: ReadonlyArray<readonly [string, string | Uint8Array]>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [k, v] of fields) {
    const bytes = typeof v === "string" ? enc.encode(v) : v;
    if (bytes.includes(10) || k === "MESSAGE") {
      const len = new Uint8Array(8);
      new DataView(len.buffer).setBigUint64(0, BigInt(bytes.length), true);
      parts.push(enc.encode(`${k}\n`), len, bytes, NL);
    } else parts.push(enc.encode(`${k}=`), bytes, NL);
  }
  return concatBytes(parts);
}

/** A datagram socket that sends entries to `path`; send failures are counted, never thrown. */
export class JournalSocket {
  #fd: number;
  #addr: Uint8Array;
  /** A path beyond sun_path is reached through a short alias of its directory, held while this lives. */
  #alias: ShortSocketPath | undefined;
  /** Entries that could not be sent (journald down, too large). */
  failures = 0;

  constructor(readonly path = JOURNAL_SOCKET) {
    // the usual short path is used as is (journald may come and go); a deep one through an alias
    if (enc.encode(path).length > 107) {
      try {
        this.#alias = shortSocketPath(path);
      } catch (e) {
        throw new Error(`journal socket "${path}": ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
    }
    const p = enc.encode(this.#alias?.path ?? path);
    this.#addr = new Uint8Array(2 + p.length + 1);
    new DataView(this.#addr.buffer).setUint16(0, 1, true); // AF_UNIX
    this.#addr.set(p, 2);
    this.#fd = libc().socket(1, 2 | 0o2000000, 0); // AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC
    if (this.#fd < 0) {
      this.#alias?.release();
      throw new Error("cannot create a journal socket");
    }
  }

  /** Sends one entry (fire and forget: MSG_DONTWAIT, so a busy journal never blocks the caller). */
  send(fields: ReadonlyArray<readonly [string, string | Uint8Array]>): void {
    if (this.#fd < 0) return;
    const buf = encodeJournalEntry(fields);
    const n = daemonLibc().sendto(this.#fd, ptr(buf), buf.length, 0x40 /* MSG_DONTWAIT */ | 0x4000 /* MSG_NOSIGNAL */, ptr(this.#addr), this.#addr.length);
    if (Number(n) !== buf.length) this.failures++;
  }

  close(): void {
    if (this.#fd >= 0) libc().close(this.#fd);
    this.#fd = -1;
    this.#alias?.release();
  }
}

// --- internal ---

const enc = new TextEncoder();
const NL = new Uint8Array([10]);
