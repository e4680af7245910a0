import { defineCommand } from "citty";
import type { PullProgress } from "../image/index.ts";
import { globalArgs, loadOptionsFrom } from "./flags.ts";

/**
 * `crio pull [--auth-file F] [--platform P] IMAGE`: pulls into the daemon's image store (same
 * configuration, same code path as the PullImage RPC; the store's file lock makes it safe while
 * the daemon runs). Progress goes to stderr — a bar per layer on a terminal, plain lines
 * otherwise — and the image id to stdout. A failure is one line, `crio pull: <message>`, exit 1;
 * an interrupted pull (SIGINT/SIGTERM) is cancelled, cleaned up, and exits 130.
 */
export default defineCommand({
  meta: { name: "pull", description: "Pull an image into the runtime's image store (safe while the daemon runs)" },
  args: {
    "auth-file": { type: "string", description: "Registry credentials (auth.json format) for this pull, consulted before global_auth_file" },
    platform: { type: "string", description: "Platform to pull, os/arch[/variant] (default: this machine's)" },
    image: { type: "positional", required: true, description: "The image: NAME[:TAG] or NAME@DIGEST" },
    ...globalArgs(),
  },
  async run({ args }) {
    return await runPull(args);
  },
});

/** What a pull shows while it runs. */
export interface PullView {
  event(p: PullProgress): void;
  /** Draws the final state and stops redrawing. */
  finish(): void;
}

/** Plain lines: one per source tried, per manifest, and per layer state change. */
export function lineView(write: (s: string) => void): PullView {
  const states = new Map<string, string>();
  return {
    event(p) {
      if (p.type === "resolving") write(p.ref === p.source ? `Trying to pull ${p.source}...\n` : `Trying to pull ${p.ref} from ${p.source}...\n`);
      else if (p.type === "manifest") {
        states.clear();
        write(
          `Manifest ${p.manifestDigest}: ${p.layers.length} ${p.layers.length === 1 ? "layer" : "layers"}, ${bytes(p.layers.reduce((n, l) => n + l.size, 0))}\n`,
        );
      } else if (p.type === "layer") {
        if (states.get(p.digest) === p.state) return;
        states.set(p.digest, p.state);
        const what = p.state === "exists" ? "already exists" : p.state === "downloading" ? `downloading ${bytes(p.total)}` : p.state;
        write(`Layer ${short(p.digest)}: ${what}\n`);
      } else write(`Stored ${p.ref} as ${p.id}\n`);
    },
    finish() {},
  };
}

/**
 * A terminal view: messages scroll above a block of one bar per layer, redrawn in place (ANSI
 * cursor-up and erase-line) at most every `everyMs`.
 */
export function barView(write: (s: string) => void, columns: () => number, everyMs = 100): PullView {
  let layers: Array<{ digest: string; size: number; state: string; current: number }> = [];
  let drawn = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const draw = () => {
    timer = undefined;
    const width = Math.max(40, columns());
    let out = drawn > 0 ? `\x1b[${drawn}A` : "";
    for (const l of layers) out += `\r\x1b[2K${barLine(l, width)}\n`;
    drawn = layers.length;
    write(out);
  };
  const above = (text: string) => {
    // Erase the block, print the message, draw the block again below it.
    write((drawn > 0 ? `\x1b[${drawn}A\r\x1b[J` : "") + text);
    drawn = 0;
    if (layers.length) draw();
  };
  return {
    event(p) {
      if (p.type === "resolving") above(`Trying to pull ${p.ref === p.source ? p.source : `${p.ref} from ${p.source}`}...\n`);
      else if (p.type === "manifest") {
        if (timer) draw();
        drawn = 0; // a previous source's block stays as it was
        layers = p.layers.map((l) => ({ digest: l.digest, size: l.size, state: "waiting", current: 0 }));
        write(
          `Manifest ${p.manifestDigest}: ${p.layers.length} ${p.layers.length === 1 ? "layer" : "layers"}, ${bytes(p.layers.reduce((n, l) => n + l.size, 0))}\n`,
        );
        draw();
      } else if (p.type === "layer") {
        const l = layers.find((x) => x.digest === p.digest);
        if (!l) return;
        l.state = p.state;
        l.current = p.current;
        timer ??= setTimeout(draw, everyMs);
      } else {
        if (timer) clearTimeout(timer);
        draw();
        write(`Stored ${p.ref} as ${p.id}\n`);
        layers = [];
        drawn = 0;
      }
    },
    finish() {
      if (timer) clearTimeout(timer);
      if (layers.length) draw();
      layers = [];
    },
  };
}

/** "12.3 MB" (decimal units, as registries and CRI-O's progress report them). */
export function bytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

// --- internal ---

async function runPull(args: Record<string, unknown>): Promise<number> {
  const fail = (msg: string, code = 1) => {
    process.stderr.write(`crio pull: ${msg}\n`);
    return code;
  };
  const [{ loadConfig }, { ImageService, imageOptions }, { pathsOf }, { messageOf, RuntimeError }, logs, { withTimeout }] = await Promise.all([
    import("../config/load.ts"),
    import("../image/index.ts"),
    import("../paths.ts"),
    import("../errors.ts"),
    import("../log/index.ts"),
    import("../util/wait.ts"),
  ]);
  const image = String(args.image ?? "").trim();
  if (!image) return fail("an image reference is required", 2);
  let config;
  try {
    const { load, logFormat } = loadOptionsFrom(args);
    logs.setLogFormat(logFormat);
    config = (await loadConfig(load)).config;
  } catch (e) {
    return fail(`invalid configuration: ${messageOf(e)}`);
  }
  // The daemon's log_level is for the daemon: here only warnings, unless --log-level was given.
  const level = config.runtime.logLevel === "warning" ? "warn" : config.runtime.logLevel;
  logs.setLogLevel(typeof args["log-level"] === "string" ? (level as Parameters<typeof logs.setLogLevel>[0]) : "warn");

  const ac = new AbortController();
  let interrupted = false;
  const onSignal = (sig: string) => () => {
    interrupted = true;
    ac.abort(new RuntimeError("canceled", `interrupted by ${sig}`));
  };
  const onInt = onSignal("SIGINT");
  const onTerm = onSignal("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  const err = process.stderr;
  const view =
    process.stdout.isTTY && err.isTTY
      ? barView(
          (s) => err.write(s),
          () => err.columns || 80,
        )
      : lineView((s) => err.write(s));
  let svc: InstanceType<typeof ImageService> | undefined;
  try {
    svc = new ImageService(imageOptions(config, pathsOf(config)));
    await svc.init();
    const rec = await svc.pull(image, {
      authFile: typeof args["auth-file"] === "string" ? args["auth-file"] : undefined,
      platform: typeof args.platform === "string" ? args.platform : undefined,
      signal: ac.signal,
      onProgress: (p) => view.event(p),
    });
    view.finish();
    process.stdout.write(`${rec.id}\n`);
    return 0;
  } catch (e) {
    view.finish();
    // A cancelled pull returns before its downloads have wound down: let them clean up, then
    // collect what they left (a layer placed just before the cancellation) before exiting.
    if (svc)
      await withTimeout(
        svc.idle().then(() => svc!.init()),
        15_000,
        "cleanup",
      ).catch(() => {});
    return fail(messageOf(e), interrupted ? 130 : 1);
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  }
}

function short(digest: string): string {
  return digest.replace(/^sha256:/, "").slice(0, 12);
}

function barLine(l: { digest: string; size: number; state: string; current: number }, width: number): string {
  const label = `${short(l.digest)} ${l.state.padEnd(11)}`;
  const tail = l.state === "downloading" ? `${bytes(l.current)} / ${bytes(l.size)}` : l.state === "unpacking" ? `${bytes(l.current)} unpacked` : bytes(l.size);
  const room = Math.max(10, Math.min(40, width - label.length - 28));
  const frac = l.state === "waiting" ? 0 : l.state === "downloading" ? Math.min(1, l.size > 0 ? l.current / l.size : 0) : 1;
  const full = Math.round(frac * room);
  const bar = full >= room ? "=".repeat(room) : full === 0 ? " ".repeat(room) : "=".repeat(full) + ">" + " ".repeat(room - full - 1);
  return `${label} [${bar}] ${tail}`.slice(0, width - 1);
}
