import { open } from "node:fs/promises";
import { RuntimeError, messageOf } from "../errors.ts";
import { lookPath } from "../sys/look-path.ts";
import { spawn } from "../sys/spawn.ts";
import { TarGuard, type LayerStats } from "./tar-guard.ts";

/**
 * Unpacks one layer blob (gzip, zstd or plain tar, detected from its first bytes) into an empty
 * directory: decompress (gzip in process, zstd by the zstd program on the other core), hash the
 * uncompressed stream (the diff_id), pass it through the TarGuard, and pipe it into GNU tar:
 *   tar -x --numeric-owner --xattrs --xattrs-include=* -p -C DIR -f -
 * Measured here: ~400 MB/s plain, ~300 MB/s zstd, ~250 MB/s gzip (GNU tar -z alone: ~120 MB/s).
 * The caller extracts into a temp dir and discards it on any error (the diff_id is known only
 * once the stream has ended).
 */

/** What unpackLayer needs. */
export interface UnpackOptions {
  /** The layer blob on disk (already verified against its digest). */
  blobFile: string;
  /** The expected digest of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId: string;
  /** An existing empty directory. */
  dest: string;
  /** Names the layer in errors (its digest). */
  layer: string;
  signal?: AbortSignal;
  /** Called with each chunk of uncompressed bytes (progress). */
  onBytes?: (n: number) => void;
}

/** The GNU tar argv that extracts a layer stream from stdin into `dest`. */
export function tarExtractArgv(dest: string): string[] {
  return ["tar", "-x", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-p", "--no-overwrite-dir", "-C", dest, "-f", "-"];
}

/** The compression of a blob, from its magic bytes. */
export async function detectCompression(file: string): Promise<"gzip" | "zstd" | "none"> {
  const fh = await open(file, "r");
  try {
    const b = new Uint8Array(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    if (bytesRead >= 2 && b[0] === 0x1f && b[1] === 0x8b) return "gzip";
    if (bytesRead >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return "zstd";
    return "none";
  } finally {
    await fh.close();
  }
}

/**
 * Unpacks a layer and checks its diff_id; returns what the guard counted. Throws invalid-argument
 * for a hostile or malformed archive, unknown for a diff_id mismatch, resource-exhausted when
 * the disk is full.
 */
export async function unpackLayer(o: UnpackOptions): Promise<LayerStats> {
  const algo = o.diffId.split(":")[0]!;
  if (algo !== "sha256" && algo !== "sha512") throw new RuntimeError("unimplemented", `layer ${o.layer}: diff_id algorithm ${algo} is not supported`);
  const compression = await detectCompression(o.blobFile);
  const hasher = new Bun.CryptoHasher(algo);
  let failure: unknown;
  const guard = new TarGuard(o.layer);
  const procs: Array<{ kill(signal: "SIGKILL"): void; readonly exitCode: number | null }> = [];
  let source: ReadableStream<Uint8Array>;
  let zstd: ReturnType<typeof spawn<ReturnType<typeof Bun.file>, "pipe", "pipe">> | undefined;
  if (compression === "zstd" && ZSTD) {
    zstd = spawn([ZSTD, "-d", "-c", "-q", "--no-progress"], { stdin: Bun.file(o.blobFile), stdout: "pipe", stderr: "pipe", dieWithParent: true });
    procs.push(zstd);
    source = zstd.stdout as ReadableStream<Uint8Array>;
  } else {
    source = Bun.file(o.blobFile).stream();
    // gzip in process (Bun decompresses off the JS thread); zstd here only when the zstd program is missing
    if (compression !== "none")
      source = source.pipeThrough(new DecompressionStream(compression as "gzip") as unknown as TransformStream<Uint8Array, Uint8Array>);
  }
  const filter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, ctl) {
      try {
        hasher.update(chunk);
        o.onBytes?.(chunk.length);
        guard.push(chunk, (b) => ctl.enqueue(b));
      } catch (e) {
        failure ??= e;
        ctl.error(e);
      }
    },
    flush(ctl) {
      try {
        guard.finish();
      } catch (e) {
        failure ??= e;
        ctl.error(e);
      }
    },
  });
  const input = source.pipeThrough(filter);
  // tar and zstd die with us (dieWithParent), so a killed pull cannot leave them writing into a
  // temp dir that the next start removes; without setpriv they end at EOF
  const tar = spawn(tarExtractArgv(o.dest), { stdin: input, stdout: "ignore", stderr: "pipe", env: { ...process.env, LC_ALL: "C" }, dieWithParent: true });
  procs.push(tar);
  const onAbort = () => {
    failure ??= o.signal!.reason ?? new RuntimeError("canceled", `unpacking layer ${o.layer} was cancelled`);
    for (const p of procs) p.kill("SIGKILL");
  };
  o.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    if (o.signal?.aborted) onAbort();
    const [code, stderr] = await Promise.all([tar.exited, new Response(tar.stderr as ReadableStream).text()]);
    if (zstd) {
      const zerr = await new Response(zstd.stderr as ReadableStream).text();
      const zcode = await zstd.exited;
      if (zcode !== 0 && !failure && code === 0)
        failure = new RuntimeError("invalid-argument", `layer ${o.layer}: zstd could not decompress it: ${zerr.trim().slice(-500)}`);
    }
    if (failure) throw failure;
    if (code !== 0) throw tarError(o.layer, code, stderr);
  } catch (e) {
    for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
    if (e instanceof RuntimeError) throw e;
    throw RuntimeError.from(e);
  } finally {
    o.signal?.removeEventListener("abort", onAbort);
  }
  const got = `${algo}:${hasher.digest("hex")}`;
  if (got !== o.diffId)
    throw new RuntimeError("unknown", `layer ${o.layer} failed verification: its uncompressed content has digest ${got}, the image config says ${o.diffId}`);
  return guard.stats;
}

// --- internal ---

/** The zstd program (faster than in-process zstd here, and on the other core). */
const ZSTD = lookPath("zstd");

function tarError(layer: string, code: number | null, stderr: string): RuntimeError {
  const tail = stderr.trim().split("\n").slice(-5).join("; ");
  if (/No space left on device/i.test(stderr)) return new RuntimeError("resource-exhausted", `unpacking layer ${layer}: no space left on device`);
  if (/Disk quota exceeded/i.test(stderr)) return new RuntimeError("resource-exhausted", `unpacking layer ${layer}: disk quota exceeded`);
  return new RuntimeError("unknown", `unpacking layer ${layer}: tar exited ${code ?? "on a signal"}: ${tail || messageOf(stderr)}`);
}
