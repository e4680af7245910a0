/**
 * The `crio nsdial NETNS PORT` role: a short-lived child that joins a pod's network namespace
 * (setns on its own main thread — the daemon never changes namespace) and connects to
 * localhost:PORT inside it, IPv4 then IPv6 (no happy eyeballs, as CRI-O), piping its stdin to
 * the connection and the connection to its stdout. Used by port-forward.
 */
import { openSync, closeSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { daemonLibc } from "./libc.ts";

const CLONE_NEWNET = 0x40000000;

/** Joins the network namespace at `path` on the calling thread. */
export function enterNetns(path: string): void {
  const fd = openSync(path, "r");
  try {
    if (daemonLibc().setns(fd, CLONE_NEWNET) !== 0) throw new Error(`setns ${path} failed`);
  } finally {
    closeSync(fd);
  }
}

/** Entry point of the role; resolves with the exit code (1: could not connect). */
export async function runNsDial(args: string[]): Promise<number> {
  const [netns, portText] = args;
  const port = Number(portText);
  if (!netns || !Number.isInteger(port) || port < 1 || port > 65535) {
    process.stderr.write("usage: crio nsdial NETNS PORT\n");
    return 2;
  }
  try {
    enterNetns(netns);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 1;
  }
  let sock: Socket | undefined;
  const errors: string[] = [];
  for (const host of ["127.0.0.1", "::1"]) {
    try {
      sock = await new Promise<Socket>((resolve, reject) => {
        const s = connect({ host, port }, () => resolve(s));
        s.once("error", reject);
      });
      break;
    } catch (e) {
      errors.push(`${host}: ${(e as Error).message}`);
    }
  }
  if (!sock) {
    process.stderr.write(`failed to connect to localhost:${port} inside the pod's network namespace: ${errors.join("; ")}\n`);
    return 1;
  }
  const s = sock;
  return await new Promise<number>((resolve) => {
    process.stdin.pipe(s);
    s.pipe(process.stdout);
    const done = () => process.stdout.write("", () => resolve(0));
    s.on("error", done);
    s.on("close", done);
  });
}
