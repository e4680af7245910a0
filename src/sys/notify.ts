import { daemonLibc, errno, libc, strerror, SysError } from "./libc.ts";
import { shortSocketPath } from "./short-path.ts";

/**
 * sd_notify(3) without libsystemd: one datagram on the AF_UNIX socket named by $NOTIFY_SOCKET
 * (a path, or "@name" for an abstract socket), as systemd's Type=notify services do. Node and
 * Bun cannot send unix datagrams, so socket/sendto/close come from libc through bun:ffi. The
 * library is opened on first send, so importing this file costs nothing.
 */

/** The systemd variables a notifying service reads (and must not hand to its children). */
export const NOTIFY_ENV = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] as const;

/** What a service tells its supervisor. Each method is a no-op when $NOTIFY_SOCKET was unset. */
export interface Notifier {
  /** The socket address messages go to ("" when notifications are off). */
  readonly socket: string;
  /** WatchdogSec/2 in milliseconds when systemd asked this process for keep-alives, else undefined. */
  readonly watchdogIntervalMs: number | undefined;
  /** READY=1 (with an optional STATUS=). */
  ready(status?: string): void;
  /** STATUS=<text>: the line `systemctl status` shows. */
  status(text: string): void;
  /** RELOADING=1 (with MONOTONIC_USEC=, as Type=notify-reload wants) and later ready() again. */
  reloading(): void;
  /** STOPPING=1 (with an optional STATUS=). */
  stopping(status?: string): void;
  /** Sends WATCHDOG=1 every watchdogIntervalMs until the returned function is called; a no-op without a watchdog. */
  startWatchdog(): () => void;
}

/**
 * A Notifier for `env` (process.env by default). With `unsetEnvironment` (the default) the
 * variables of NOTIFY_ENV are deleted from `env`, so children started with an explicit copy of
 * the environment do not inherit them (runc and crun would otherwise proxy the socket into a
 * container and wait for its READY). Send failures go to `onError` and never throw.
 */
export function createNotifier(o: { env?: Record<string, string | undefined>; unsetEnvironment?: boolean; onError?: (e: Error) => void } = {}): Notifier {
  const env = o.env ?? process.env;
  const socket = env.NOTIFY_SOCKET ?? "";
  const watchdogIntervalMs = watchdogInterval(env.WATCHDOG_USEC, env.WATCHDOG_PID, process.pid);
  if (o.unsetEnvironment !== false) for (const k of NOTIFY_ENV) delete env[k];
  const send = (state: string | (() => string)) => {
    if (!socket) return;
    try {
      sdNotify(socket, typeof state === "string" ? state : state());
    } catch (e) {
      o.onError?.(e instanceof Error ? e : new Error(String(e)));
    }
  };
  const withStatus = (line: string, status?: string) => send(status ? `${line}\nSTATUS=${oneLine(status)}` : line);
  return {
    socket,
    watchdogIntervalMs,
    ready: (status) => withStatus("READY=1", status),
    status: (text) => send(`STATUS=${oneLine(text)}`),
    reloading: () => send(() => `RELOADING=1\nMONOTONIC_USEC=${monotonicUsec()}`),
    stopping: (status) => withStatus("STOPPING=1", status),
    startWatchdog() {
      if (!socket || !watchdogIntervalMs) return () => {};
      send("WATCHDOG=1");
      const t = setInterval(() => send("WATCHDOG=1"), watchdogIntervalMs);
      t.unref?.();
      return () => clearInterval(t);
    },
  };
}

/**
 * Sends one notification datagram to `socket` (a path, or "@name" for an abstract socket).
 * Throws an Error naming the call and errno when the socket is missing or refuses the message.
 */
export function sdNotify(socket: string, state: string): void {
  if (!socket.startsWith("/") && !socket.startsWith("@"))
    throw new Error(`NOTIFY_SOCKET "${socket}": only absolute paths and abstract (@) sockets are supported`);
  // a path socket is reached through a short alias of its directory: any path length fits
  let alias;
  try {
    alias = socket.startsWith("@") ? undefined : shortSocketPath(socket);
  } catch (e) {
    // as sendto would say: the socket's directory is missing or not one
    const why = e instanceof SysError ? strerror(e.errno) : e instanceof Error ? e.message : String(e);
    throw new Error(`sendto ${socket}: ${why}`, { cause: e });
  }
  const addr = sockaddrUn(alias?.path ?? socket);
  const msg = new TextEncoder().encode(state);
  const l = libc();
  const fd = l.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    alias?.release();
    throw sysFail("socket", socket);
  }
  try {
    const n = Number(daemonLibc().sendto(fd, msg, msg.length, MSG_NOSIGNAL, addr, addr.length));
    if (n < 0) throw sysFail("sendto", socket);
    if (n !== msg.length) throw new Error(`sendto ${socket}: sent ${n} of ${msg.length} bytes`);
  } finally {
    l.close(fd);
    alias?.release();
  }
}

/** Half of WATCHDOG_USEC in ms when it is set, positive, and WATCHDOG_PID (if set) is `pid`. */
export function watchdogInterval(usec: string | undefined, wdPid: string | undefined, pid: number): number | undefined {
  if (!usec || !/^\d+$/.test(usec)) return undefined;
  if (wdPid && wdPid !== String(pid)) return undefined;
  const us = Number(usec);
  if (us <= 0) return undefined;
  return Math.max(1, Math.floor(us / 2000));
}

// --- internal ---

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, " ");
}

/** CLOCK_MONOTONIC now, in microseconds (what MONOTONIC_USEC= carries). */
function monotonicUsec(): string {
  const ts = new BigInt64Array(2);
  if (daemonLibc().clock_gettime(CLOCK_MONOTONIC, ts) !== 0) throw sysFail("clock_gettime", "CLOCK_MONOTONIC");
  return String(ts[0]! * 1_000_000n + ts[1]! / 1000n);
}

const CLOCK_MONOTONIC = 1;

/** struct sockaddr_un: family, then the path (NUL-terminated) or, for "@name", a NUL and the name (length-delimited). */
function sockaddrUn(socket: string): Uint8Array {
  const abstract = socket.startsWith("@");
  const name = new TextEncoder().encode(abstract ? socket.slice(1) : socket);
  if (name.length > 107) throw new Error(`NOTIFY_SOCKET "${socket}": unix socket addresses are limited to 107 bytes`);
  const addr = new Uint8Array(2 + 1 + name.length);
  addr[0] = AF_UNIX; // little-endian sa_family_t
  addr.set(name, abstract ? 3 : 2);
  return addr; // path form: the last byte stays 0, the NUL terminator
}

function sysFail(call: string, socket: string): Error {
  return new Error(`${call} ${socket}: ${strerror(errno())}`);
}
