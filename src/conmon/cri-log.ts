import { O, close, fileSize, fsync, ftruncate, mkdirp, open, writeAll } from "../sys/libc.ts";
import { concatBytes } from "../util/bytes.ts";
import { nowRfc3339Nano } from "../util/time.ts";
import { LOG_LINE_MAX, type LogStream } from "./protocol.ts";

/**
 * Writes a process's output to a log file in the CRI format (see protocol.ts §5):
 * `<RFC3339Nano> <stdout|stderr> <F|P> <bytes>\n`. Each stream keeps its own unterminated tail,
 * so stdout and stderr never mix inside a record. Records are written with one write(2) per
 * chunk read, with no buffering beyond the current line. The file is opened O_APPEND, which
 * keeps records whole when the kubelet renames it for rotation and asks for a reopen.
 */
export class CriLog {
  #fd: number;
  #size: number;
  #tails: Record<LogStream, Uint8Array | undefined> = { stdout: undefined, stderr: undefined };
  /** Also called with every record written (log_to_journald); `partial` for a P record. */
  onRecord?: (stream: LogStream, partial: boolean, payload: Uint8Array) => void;

  /** Opens (creating it and its directory when missing) the log file at `path`. */
  constructor(
    readonly path: string,
    /** Truncate the file when it would grow beyond this many bytes; 0 or less = never. */
    readonly maxSize = 0,
    private readonly now: () => string = nowRfc3339Nano,
    private readonly lineMax = LOG_LINE_MAX,
    /** Skip the fsync on reopen and close (no_sync_log: faster, but a crash may lose the tail). */
    private readonly noSync = false,
  ) {
    const slash = path.lastIndexOf("/");
    if (slash > 0) mkdirp(path.slice(0, slash), 0o755);
    this.#fd = open(path, O.WRONLY | O.APPEND | O.CREAT, 0o640);
    this.#size = fileSize(this.#fd);
  }

  /** Logs a chunk of `stream`'s output: complete lines now, the tail when its newline comes. */
  write(stream: LogStream, chunk: Uint8Array): void {
    const out: Uint8Array[] = [];
    let tail = this.#tails[stream];
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) {
        tail = tail ? concatBytes([tail, chunk.subarray(start)]) : chunk.slice(start);
        while (tail.length >= this.lineMax) {
          out.push(this.#record(stream, "P", tail.subarray(0, this.lineMax)));
          tail = tail.slice(this.lineMax);
        }
        if (tail.length === 0) tail = undefined;
        break;
      }
      const piece = chunk.subarray(start, nl);
      this.#line(out, stream, tail ? concatBytes([tail, piece]) : piece);
      tail = undefined;
      start = nl + 1;
    }
    this.#tails[stream] = tail;
    this.#emit(out);
  }

  /** Writes the unterminated tail of `stream` (or of both) as a full record: end of output. */
  flush(stream?: LogStream): void {
    const out: Uint8Array[] = [];
    for (const s of stream ? [stream] : (["stdout", "stderr"] as const)) {
      const tail = this.#tails[s];
      this.#tails[s] = undefined;
      if (tail) this.#line(out, s, tail);
    }
    this.#emit(out);
  }

  /** Syncs the file, then closes it and opens it again by path (after the kubelet renamed it). */
  reopen(): void {
    const fd = open(this.path, O.WRONLY | O.APPEND | O.CREAT, 0o640);
    if (!this.noSync) {
      try {
        fsync(this.#fd);
      } catch {
        // the rotated file keeps what the page cache holds; the new one is open either way
      }
    }
    close(this.#fd);
    this.#fd = fd;
    this.#size = fileSize(fd);
  }

  /** Flushes tails, syncs (unless noSync) and closes the file. */
  close(): void {
    if (this.#fd < 0) return;
    this.flush();
    try {
      if (!this.noSync) fsync(this.#fd);
    } finally {
      close(this.#fd);
      this.#fd = -1;
    }
  }

  // --- internal ---

  #line(out: Uint8Array[], stream: LogStream, line: Uint8Array): void {
    let rest = line;
    while (rest.length > this.lineMax) {
      out.push(this.#record(stream, "P", rest.subarray(0, this.lineMax)));
      rest = rest.subarray(this.lineMax);
    }
    out.push(this.#record(stream, "F", rest));
  }

  #record(stream: LogStream, tag: "F" | "P", payload: Uint8Array): Uint8Array {
    this.onRecord?.(stream, tag === "P", payload);
    const prefix = enc.encode(`${this.now()} ${stream} ${tag} `);
    const rec = new Uint8Array(prefix.length + payload.length + 1);
    rec.set(prefix);
    rec.set(payload, prefix.length);
    rec[rec.length - 1] = 10;
    return rec;
  }

  #emit(records: Uint8Array[]): void {
    if (records.length === 0 || this.#fd < 0) return;
    let batch: Uint8Array[] = [];
    let total = 0;
    for (const r of records) {
      if (this.maxSize > 0 && this.#size + total + r.length > this.maxSize) {
        // conmon's log_size_max: start the file over rather than stop logging; what this
        // batch held before this record would be truncated away, so it is not written at all
        ftruncate(this.#fd, 0);
        this.#size = 0;
        batch = [];
        total = 0;
      }
      batch.push(r);
      total += r.length;
    }
    const buf = new Uint8Array(total);
    let off = 0;
    for (const r of batch) buf.set(r, off), (off += r.length);
    writeAll(this.#fd, buf);
    this.#size += total;
  }
}

// --- internal ---

const enc = new TextEncoder();
