// Cold pull of a multi-layer image of ≥ 100 MB (bigImage: busybox + 4 × 26.2 MB of
// incompressible gzip layers) from a loopback registry, through the compiled daemon's PullImage
// and through `crio pull`, each run on a fresh store; plus two ceilings measured on the same
// machine (the registry download alone, GNU tar unpacking the same blobs from local files).
// Usage: bun bench/pull.ts  (after `bun run build`, as root; BENCH_RUNS=5).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CRIO, removeDaemonDirs, startDaemon } from "../test/harness.ts";
import { bigImage, pushImage } from "../test/support/images.ts";
import { startRegistry } from "../test/support/registry.ts";
import { fmt, machine, median, writeSection } from "./lib.ts";

const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 5));
const TMP = process.env.CRIO_TEST_TMP ?? tmpdir();

await using reg = await startRegistry();
const img = await pushImage(reg, await bigImage());
const layers = img.layers.length;
const compressed = img.layers.reduce((n, l) => n + l.size, 0);
const MB = compressed / 1e6;
const registries = `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`;
console.log(`image ${img.ref}: ${layers} layers, ${fmt(MB)} MB compressed`);

// 1. PullImage on the compiled daemon, a fresh daemon and store per run.
const daemon: number[] = [];
const hwm: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const dir = mkdtempSync(join(TMP, "crio-bench-pull-"));
  writeFileSync(join(dir, "registries.conf"), registries);
  const d = await startDaemon({ dir, logLevel: "info" });
  try {
    const t = performance.now();
    const { imageRef } = await d.cri.pullImage({ image: { image: img.ref } }, { timeoutMs: 600_000 });
    daemon.push((performance.now() - t) / 1000);
    if (imageRef !== img.imageId) throw new Error(`pulled ${imageRef}, expected ${img.imageId}`);
    hwm.push(Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${d.proc.pid}/status`, "utf8"))![1]) / 1024);
  } finally {
    await d[Symbol.asyncDispose]();
    removeDaemonDirs(dir, d.runroot);
  }
  console.log(`daemon run ${i + 1}: ${fmt(daemon.at(-1)!, 2)} s`);
}

// 2. `crio pull` (process start and config load included), a fresh store per run.
const cli: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const dir = mkdtempSync(join(TMP, "crio-bench-cli-"));
  try {
    writeFileSync(join(dir, "registries.conf"), registries);
    writeFileSync(join(dir, "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
    writeFileSync(
      join(dir, "crio.conf"),
      `[crio]\nroot = "${dir}/root"\nrunroot = "${dir}/run"\n[crio.image]\nregistries_conf = "${dir}/registries.conf"\nregistries_conf_dir = "${dir}/registries.conf.d"\nsignature_policy = "${dir}/policy.json"\n`,
    );
    const t = performance.now();
    const p = Bun.spawn([CRIO, "--config", join(dir, "crio.conf"), "--config-dir", join(dir, "crio.conf.d"), "pull", img.ref], { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    cli.push((performance.now() - t) / 1000);
    if (code !== 0 || out.trim() !== img.imageId) throw new Error(`crio pull exited ${code}: ${err.slice(-500)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`crio pull run ${i + 1}: ${fmt(cli.at(-1)!, 2)} s`);
}

// 3. Ceilings on this machine: the registry download alone (bodies discarded), and GNU tar
//    unpacking the same gzip blobs from local files (one process per layer, all at once).
const download: number[] = [];
const untar: number[] = [];
for (let i = 0; i < RUNS; i++) {
  let t = performance.now();
  await Promise.all(
    img.layers.map(async (l) => {
      const r = await fetch(`${reg.url}/v2/${img.name}/blobs/${l.digest}`);
      for await (const _ of r.body!) void _;
    }),
  );
  download.push((performance.now() - t) / 1000);
  const dest = mkdtempSync(join(TMP, "crio-bench-tar-"));
  try {
    t = performance.now();
    await Promise.all(
      img.layers.map(async (l, n) => {
        const to = join(dest, String(n));
        mkdirSync(to);
        const p = Bun.spawn(["tar", "-xzf", join(img.layoutDir, "blobs", "sha256", l.digest.slice(7)), "-C", to], { stderr: "pipe" });
        if ((await p.exited) !== 0) throw new Error(`tar: ${await new Response(p.stderr).text()}`);
      }),
    );
    untar.push((performance.now() - t) / 1000);
  } finally {
    rmSync(dest, { recursive: true, force: true });
  }
}

const row = (what: string, xs: number[], note = "") =>
  `| ${what} | ${fmt(median(xs), 2)} | ${xs.map((x) => fmt(x, 2)).join(", ")} | ${fmt(layers / median(xs), 1)} | ${fmt(MB / median(xs), 0)} | ${note} |`;
const table = `## Cold pull of a ${fmt(MB, 0)} MB, ${layers}-layer image — \`bun bench/pull.ts\`

${machine()}. Image: \`bigImage()\` from test/support/images.ts (busybox + 4 × 26.2 MB of incompressible
data, gzip), served by Debian's docker-registry on 127.0.0.1. Every run starts from an empty store.
MB/s counts compressed bytes (≈ the unpacked size here: the data does not compress).

| path | median (s) | runs (s) | layers/s | MB/s | note |
|---|---|---|---|---|---|
${row("PullImage on the compiled daemon", daemon, `daemon peak RSS ${fmt(median(hwm), 0)} MB`)}
${row("\`crio pull\` (process start included)", cli)}
${row("ceiling: registry download only", download, "5 parallel GETs, bodies discarded")}
${row("ceiling: GNU tar -xzf of the same blobs", untar, "local files, one tar per layer, all at once")}

Reference figures (this machine, earlier measurements): spawning GNU tar ~450 MB/s on a plain tar,
100–300 MB/s with gzip/zstd; an in-process tar-stream extractor ~140 MB/s; node-tar ~28 MB/s; the
disk's sustained writes ~46 MB/s. Neither the pull nor the tar ceiling fsyncs the unpacked files
(as containers/storage does not), so they finish in the page cache, faster than the disk's rate.

Budget (DESIGN §7): no slower than CRI-O on the same image and machine. **CRI-O is not installed
here** (and is not built for this benchmark), so the ratio is not measured; the ceilings above are
what any runtime, CRI-O included, is bounded by on this machine.`;
writeSection("pull", table);
console.log(table);
