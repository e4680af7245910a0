/**
 * Terminal resize messages: a stream of JSON objects `{"Width":80,"Height":24}` (client-go
 * writes each with a json.Encoder, so newline-separated). Field names match case-insensitively,
 * as Go's decoder does; values are clamped to uint16. Malformed input ends the stream, as it
 * ends the kubelet's decode loop.
 */
import type { Readable } from "node:stream";
import type { AsyncQueue } from "../async-queue.ts";
import type { TerminalSize } from "../types.ts";

/** Reads resize messages from `r` into `q` until `r` ends or sends garbage. */
export function pumpResizeEvents(r: Readable, q: AsyncQueue<TerminalSize>): void {
  const scanner = new JsonObjectScanner();
  const onData = (chunk: Buffer) => {
    for (const text of scanner.push(chunk.toString("utf8"))) {
      const size = parseTerminalSize(text);
      if (!size) return stop();
      q.push(size);
    }
    if (scanner.failed) stop();
  };
  const stop = () => {
    r.off("data", onData);
    r.resume(); // keep draining so the connection never blocks on this stream
  };
  r.on("data", onData);
}

/** Parses one resize message, or undefined when it is not one. */
export function parseTerminalSize(text: string): TerminalSize | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  let width = 0;
  let height = 0;
  for (const [k, val] of Object.entries(v)) {
    const key = k.toLowerCase();
    if (key !== "width" && key !== "height") continue;
    if (typeof val !== "number" || !Number.isInteger(val) || val < 0 || val > 0xffff) return undefined;
    if (key === "width") width = val;
    else height = val;
  }
  return { width, height };
}

/** Splits a character stream into top-level JSON object texts; stops at anything else. */
export class JsonObjectScanner {
  /** Set once the input held something other than objects (what came before is still returned). */
  failed = false;
  #buf = "";
  #depth = 0;
  #inString = false;
  #escape = false;
  #start = -1;

  /** Feeds text; returns the objects completed by it, up to the first malformed byte. */
  push(text: string): string[] {
    const out: string[] = [];
    if (this.failed) return out;
    const base = this.#buf.length;
    this.#buf += text;
    for (let i = base; i < this.#buf.length; i++) {
      const c = this.#buf[i]!;
      if (this.#inString) {
        if (this.#escape) this.#escape = false;
        else if (c === "\\") this.#escape = true;
        else if (c === '"') this.#inString = false;
        continue;
      }
      if (c === '"' && this.#depth > 0) this.#inString = true;
      else if (c === "{") {
        if (this.#depth++ === 0) this.#start = i;
      } else if (c === "}") {
        if (this.#depth === 0) return this.#fail(out);
        if (--this.#depth === 0) out.push(this.#buf.slice(this.#start, i + 1));
      } else if (this.#depth === 0 && !/\s/.test(c)) return this.#fail(out);
    }
    if (this.#depth === 0) this.#buf = "";
    else if (this.#start > 0) {
      this.#buf = this.#buf.slice(this.#start);
      this.#start = 0;
    }
    if (this.#buf.length > 64 * 1024) return this.#fail(out);
    return out;
  }

  #fail(out: string[]): string[] {
    this.failed = true;
    this.#buf = "";
    return out;
  }
}
