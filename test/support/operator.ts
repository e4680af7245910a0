// Shared by the operator tests: a systemd-like receiver of sd_notify datagrams (Bun cannot bind a
// unix datagram socket, so it is bound through bun:ffi here, on the test side only), and small
// HTTP-over-unix-socket and process helpers.
import { dlopen, FFIType as T, read as peek, type Pointer } from "bun:ffi";
import { unlinkSync } from "node:fs";

/** A bound AF_UNIX datagram socket that collects every message sent to it, with arrival times. */
export class NotifyReceiver {
  readonly messages: Array<{ at: number; text: string }> = [];
  readonly #fd: number;
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #buf = new Uint8Array(4096);

  /** Binds `address`: a path, or "@name" for an abstract socket. */
  constructor(readonly address: string) {
    const l = lib();
    this.#fd = l.socket(1, 2 | 0o4000 | 0o2000000, 0); // AF_UNIX, SOCK_DGRAM | NONBLOCK | CLOEXEC
    if (this.#fd < 0) throw new Error(`socket: errno ${errno()}`);
    const addr = sockaddr(address);
    if (l.bind(this.#fd, addr, addr.length) !== 0) {
      const e = errno();
      l.close(this.#fd);
      throw new Error(`bind ${address}: errno ${e}`);
    }
    this.#timer = setInterval(() => this.drain(), 5);
  }

  /** Reads whatever is queued now. */
  drain(): void {
    for (;;) {
      const n = Number(lib().recv(this.#fd, this.#buf, this.#buf.length, 0));
      if (n < 0) return; // EAGAIN: nothing queued
      this.messages.push({ at: Date.now(), text: new TextDecoder().decode(this.#buf.subarray(0, n)) });
    }
  }

  /** The first message with a line equal to `line`, waiting up to `timeoutMs`. */
  async waitFor(line: string, timeoutMs = 20_000): Promise<{ at: number; text: string }> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      this.drain();
      const m = this.messages.find((x) => x.text.split("\n").includes(line));
      if (m) return m;
      if (Date.now() > end) throw new Error(`no "${line}" on ${this.address} within ${timeoutMs} ms; got ${JSON.stringify(this.messages.map((x) => x.text))}`);
      await Bun.sleep(10);
    }
  }

  /** Every line received so far, in order. */
  lines(): string[] {
    this.drain();
    return this.messages.flatMap((m) => m.text.split("\n"));
  }

  close(): void {
    clearInterval(this.#timer);
    lib().close(this.#fd);
    if (!this.address.startsWith("@")) {
      try {
        unlinkSync(this.address);
      } catch {}
    }
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

/** GET over a unix socket; returns status and body. */
export async function getUnix(socket: string, path: string): Promise<{ status: number; body: string; type: string }> {
  const r = await fetch(`http://localhost${path}`, { unix: socket } as RequestInit);
  return { status: r.status, body: await r.text(), type: r.headers.get("content-type") ?? "" };
}

/** Runs the compiled binary (or any argv) to completion. */
export function runCmd(argv: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  const p = Bun.spawnSync(argv, { env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

/** One sample of a Prometheus text exposition, or undefined. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const lm of (m[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      got[lm[1]!] = lm[2]!.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}

// --- internal ---

function sockaddr(address: string): Uint8Array {
  const abstract = address.startsWith("@");
  const name = new TextEncoder().encode(abstract ? address.slice(1) : address);
  const a = new Uint8Array(3 + name.length);
  a[0] = 1;
  a.set(name, abstract ? 3 : 2);
  return a;
}

function errno(): number {
  return peek.i32(lib().__errno_location() as Pointer, 0);
}

const SYMBOLS = {
  socket: { args: [T.i32, T.i32, T.i32], returns: T.i32 },
  bind: { args: [T.i32, T.ptr, T.u32], returns: T.i32 },
  recv: { args: [T.i32, T.ptr, T.u64, T.i32], returns: T.i64_fast },
  close: { args: [T.i32], returns: T.i32 },
  __errno_location: { args: [], returns: T.ptr },
} as const;
let symbols: ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"] | undefined;
function lib() {
  return (symbols ??= dlopen("libc.so.6", SYMBOLS).symbols);
}
