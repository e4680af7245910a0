import { expect, test } from "bun:test";
import { OutputPipe } from "../../../src/conmon/io.ts";
import { close, pipe, setNonBlocking, write } from "../../../src/sys/libc.ts";

// A pipe the runtime writes to while the monitor waits for it (#17): read from the start, so the
// writer never blocks on a full pipe; what was read is handed to the sink attached later, first.

/** A non-blocking pipe read by an OutputPipe, and a blocking-free way to fill it. */
function opened() {
  const [r, w] = pipe();
  setNonBlocking(r);
  setNonBlocking(w);
  const out = new OutputPipe(r);
  /** Writes all of `data`, waiting while the pipe is full (as a writer blocked in write(2) would). */
  const put = async (data: Uint8Array) => {
    for (let at = 0; at < data.length; ) {
      const n = write(w, data.subarray(at));
      if (n > 0) at += n;
      else await Bun.sleep(1);
    }
  };
  return { out, put, closeWriter: () => close(w), dispose: () => (out.cancel(), close(r)) };
}

const bytes = (n: number, ch: string) => new Uint8Array(n).fill(ch.charCodeAt(0));
const text = (chunks: Uint8Array[]) => new TextDecoder().decode(Buffer.concat(chunks));

test("more than a pipe holds is taken while nobody listens; attach() hands it over first, then the rest, in order", async () => {
  const p = opened();
  await p.put(bytes(300_000, "a")); // would block at 64 kB if nothing read it
  p.out.hold(); // the runtime exited
  await p.put(new TextEncoder().encode("later\n"));
  const got: Uint8Array[] = [];
  const attached = p.out.attach((c) => void got.push(c));
  await p.put(new TextEncoder().encode("after attach\n"));
  p.closeWriter();
  expect(await attached).toBe(0);
  await p.out.done;
  expect(text(got)).toBe(`${"a".repeat(300_000)}later\nafter attach\n`);
  p.dispose();
});

test("while the runtime runs only the last 1 MiB is kept; tail() gives its last words", async () => {
  const p = opened();
  for (let i = 0; i < 24; i++) await p.put(bytes(100_000, "x"));
  await p.put(new TextEncoder().encode("\nruntime: the last words\n"));
  p.closeWriter();
  await p.out.ended(5000);
  expect(p.out.tail(24)).toBe("runtime: the last words\n");
  const got: Uint8Array[] = [];
  const dropped = await p.out.attach((c) => void got.push(c));
  const kept = Buffer.concat(got).length;
  expect(dropped + kept).toBe(2_400_025);
  expect(kept).toBeLessThanOrEqual(1 << 20); // whole chunks, the oldest dropped first
  expect(kept).toBeGreaterThan((1 << 20) - 300_000);
  expect(text(got).endsWith("x\nruntime: the last words\n")).toBe(true);
  p.dispose();
});

test("once the runtime exited, reading waits for the sink: the process is slowed, nothing is dropped", async () => {
  const p = opened();
  p.out.hold();
  let wrote = 0;
  const writing = (async () => {
    for (let i = 0; i < 10; i++) {
      await p.put(bytes(100_000, "y"));
      wrote += 100_000;
    }
    p.closeWriter();
  })();
  await Bun.sleep(200);
  expect(wrote).toBeLessThan(400_000); // a chunk kept, a pipe full: the writer waits
  const got: Uint8Array[] = [];
  await p.out.attach((c) => void got.push(c));
  await writing;
  await p.out.done;
  expect(Buffer.concat(got).length).toBe(1_000_000);
  p.dispose();
});
