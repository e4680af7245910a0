// Cold pull of a multi-layer image of ≥ 100 MB (bigImage: busybox + 4 × 26.2 MB of incompressible
// gzip layers) from a loopback registry, through the compiled daemon's PullImage and through
// `crio pull`, each run on a fresh store; beside it containerd 1.6's PullImage of the same image
// from the same registry (the reference column, bench/reference/containerd.ts), the two runtimes
// alternating run by run; plus two ceilings measured on the same machine (the registry download
// alone, GNU tar unpacking the same blobs from local files).
// Then warm pulls of a signed busybox against an unsigned one (bench/pull-signed.ts).
// Usage: bun bench/pull.ts  (after `bun run build`, as root; BENCH_RUNS=5).
// BENCH_PULL=cold|signed runs only one part (default: both).
// BENCH_REFERENCE=containerd|none (default: containerd when /usr/bin/containerd exists).
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CRIO, removeDaemonDirs, startDaemon } from "../test/harness.ts";
import { criClient, type CriClient } from "../test/support/cri-client.ts";
import { bigImage, imageRef, pushImage } from "../test/support/images.ts";
import { startRegistry } from "../test/support/registry.ts";
import { fmt, machine, median, writeSection } from "./lib.ts";
import { containerdAvailable, containerdVersion, startContainerd, type Containerd } from "./reference/containerd.ts";
import { benchSignedPull } from "./pull-signed.ts";

const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 5));
const TMP = process.env.CRIO_TEST_TMP ?? tmpdir();
const REFERENCE = process.env.BENCH_REFERENCE ?? (containerdAvailable() ? "containerd" : "none");
if (REFERENCE !== "containerd" && REFERENCE !== "none") throw new Error(`BENCH_REFERENCE must be containerd or none, not ${REFERENCE}`);
if (REFERENCE === "containerd" && !containerdAvailable())
  throw new Error("BENCH_REFERENCE=containerd needs the Debian package containerd (apt-get install -y containerd)");
const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const peakRssMb = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
const load0 = loadavg();
const PART = process.env.BENCH_PULL ?? "all";
if (PART === "signed" || PART === "all") console.log(await benchSignedPull(TMP, Math.max(40, RUNS * 8)));
if (PART === "signed") process.exit(0);
if (PART !== "cold" && PART !== "all") throw new Error(`BENCH_PULL must be cold or signed, not ${PART}`);

await using reg = await startRegistry();
const img = await pushImage(reg, await bigImage());
const layers = img.layers.length;
const compressed = img.layers.reduce((n, l) => n + l.size, 0);
const MB = compressed / 1e6;
const registries = `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`;
console.log(`image ${img.ref}: ${layers} layers, ${fmt(MB)} MB compressed; load average ${load0}`);

// 1. PullImage on the compiled daemon, a fresh daemon and store per run.
const daemon: number[] = [];
const hwm: number[] = [];
async function oursOnce(): Promise<void> {
  const dir = mkdtempSync(join(TMP, "crio-bench-pull-"));
  writeFileSync(join(dir, "registries.conf"), registries);
  const d = await startDaemon({ dir, logLevel: "info" });
  try {
    const t = performance.now();
    const { imageRef } = await d.cri.pullImage({ image: { image: img.ref } }, { timeoutMs: 600_000 });
    daemon.push((performance.now() - t) / 1000);
    if (imageRef !== img.imageId) throw new Error(`pulled ${imageRef}, expected ${img.imageId}`);
    hwm.push(peakRssMb(d.proc.pid));
  } finally {
    await d[Symbol.asyncDispose]();
    removeDaemonDirs(dir, d.runroot);
  }
  console.log(`daemon run ${daemon.length}: ${fmt(daemon.at(-1)!, 2)} s`);
}

// 1b. The same PullImage on containerd: one containerd for all runs, the image removed after each
//     run, and its content store (blobs, ingests), overlayfs snapshots and image list checked empty
//     before the next. CRI's RemoveImage deletes synchronously; should anything linger past 30 s
//     (GC is asynchronous elsewhere in containerd), that containerd is replaced by a fresh one.
const ctdRuns: number[] = [];
const ctdHwm: number[] = [];
let ctd: Containerd | undefined;
let ctdCri: CriClient | undefined;
let ctdRestarts = 0;
let refVersion = "";
async function startReference(): Promise<void> {
  ctd = await startContainerd({ registryHost: reg.host, pauseImage: imageRef(reg, "pause") });
  ctdCri = criClient(ctd.socket);
}
async function stopReference(): Promise<void> {
  ctdCri?.close();
  ctdCri = undefined;
  await ctd?.stop();
  ctd = undefined;
}
/** What is left of pulled images in containerd's stores: blob, ingest and snapshot entries, image names. */
async function referenceLeftovers(c: Containerd, cri: CriClient): Promise<string[]> {
  const root = join(c.dir, "root");
  const ls = (d: string) => (existsSync(join(root, d)) ? readdirSync(join(root, d)).map((f) => `${d}/${f}`) : []);
  const { images } = await cri.listImages({});
  return [
    ...ls("io.containerd.content.v1.content/blobs/sha256"),
    ...ls("io.containerd.content.v1.content/ingest"),
    ...ls("io.containerd.snapshotter.v1.overlayfs/snapshots"),
    ...images.map((i) => `image ${i.repoTags.join(",") || i.id}`),
  ];
}
async function referenceOnce(): Promise<void> {
  const left = await referenceLeftovers(ctd!, ctdCri!);
  if (left.length > 0) throw new Error(`containerd's store is not empty before a cold pull: ${left.join(" ")}`);
  const t = performance.now();
  const { imageRef } = await ctdCri!.pullImage({ image: { image: img.ref } }, { timeoutMs: 600_000 });
  ctdRuns.push((performance.now() - t) / 1000);
  if (imageRef !== img.imageId) throw new Error(`containerd pulled ${imageRef}, expected ${img.imageId}`);
  ctdHwm.push(peakRssMb(ctd!.pid));
  console.log(`containerd run ${ctdRuns.length}: ${fmt(ctdRuns.at(-1)!, 2)} s`);
  await ctdCri!.removeImage({ image: { image: img.ref } });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const rest = await referenceLeftovers(ctd!, ctdCri!);
    if (rest.length === 0) return;
    if (Date.now() > deadline) {
      console.log(`containerd kept ${rest.length} entries 30 s after RemoveImage: starting a fresh containerd`);
      ctdRestarts++;
      await stopReference();
      await startReference();
      return;
    }
    await Bun.sleep(50);
  }
}

try {
  if (REFERENCE === "containerd") {
    refVersion = await containerdVersion();
    await startReference();
  }
  // Alternate the runtimes run by run so the shared machine's load falls on both alike.
  for (let i = 0; i < RUNS; i++) {
    const order = REFERENCE === "containerd" ? [oursOnce, referenceOnce] : [oursOnce];
    for (const once of i % 2 === 0 ? order : order.reverse()) await once();
  }
} finally {
  await stopReference();
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
    const p = Bun.spawn([CRIO, "--config", join(dir, "crio.conf"), "--config-dir", join(dir, "crio.conf.d"), "pull", img.ref], {
      stdout: "pipe",
      stderr: "pipe",
    });
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
const ref = ctdRuns.length > 0;
const ratio = median(daemon) / median(ctdRuns);
const refRow = ref
  ? `${row(`PullImage on containerd ${refVersion}`, ctdRuns, `containerd peak RSS ${fmt(Math.max(...ctdHwm), 0)} MB (one process for all runs${ctdRestarts ? `; restarted ${ctdRestarts}×` : ""})`)}\n`
  : "";
const comparison = ref
  ? `Ours against containerd ${refVersion} (PullImage, same image, registry and machine, runs alternating):

| measure | ours | containerd | ours/containerd |
|---|---|---|---|
| median time (s) | ${fmt(median(daemon), 2)} | ${fmt(median(ctdRuns), 2)} | ${fmt(ratio, 2)} |
| layers/s | ${fmt(layers / median(daemon), 1)} | ${fmt(layers / median(ctdRuns), 1)} | ${fmt(median(ctdRuns) / median(daemon), 2)} |
| MB/s | ${fmt(MB / median(daemon), 0)} | ${fmt(MB / median(ctdRuns), 0)} | ${fmt(median(ctdRuns) / median(daemon), 2)} |

Time ratio below 1 (throughput ratios above 1): ours is faster.`
  : "containerd was not run (BENCH_REFERENCE=none or not installed): no reference ratio.";
const table = `## Cold pull of a ${fmt(MB, 0)} MB, ${layers}-layer image — \`bun bench/pull.ts\`

${machine()}; load average ${load0} at the start, ${loadavg()} at the end (shared machine: medians). Image: \`bigImage()\` from test/support/images.ts (busybox + 4 × 26.2 MB of incompressible
data, gzip), served by Debian's docker-registry on 127.0.0.1. Every run starts from an empty store.
MB/s counts compressed bytes (≈ the unpacked size here: the data does not compress).

| path | median (s) | runs (s) | layers/s | MB/s | note |
|---|---|---|---|---|---|
${row("PullImage on the compiled daemon", daemon, `daemon peak RSS ${fmt(median(hwm), 0)} MB (a fresh daemon per run)`)}
${refRow}${row("`crio pull` (process start included)", cli)}
${row("ceiling: registry download only", download, "5 parallel GETs, bodies discarded")}
${row("ceiling: GNU tar -xzf of the same blobs", untar, "local files, one tar per layer, all at once")}

${comparison}

containerd runs with its CRI plugin's defaults for pulls (max_concurrent_downloads = 3, overlayfs
snapshotter, plain HTTP to the loopback registry through certs.d) in temp dirs
(bench/reference/containerd.ts). unpigz is not installed here, so containerd inflates the layers
with Go's gzip (it uses unpigz when one is on its PATH). It keeps each compressed blob in its
content store besides the unpacked overlayfs snapshot; after each run the image is removed with
RemoveImage and the next run starts only once its content store (blobs, ingests), snapshots and
image list are empty again.

Reference figures (this machine, earlier measurements): spawning GNU tar ~450 MB/s on a plain tar,
100–300 MB/s with gzip/zstd; an in-process tar-stream extractor ~140 MB/s; node-tar ~28 MB/s; the
disk's sustained writes ~46 MB/s. Neither our pull nor the tar ceiling fsyncs the unpacked files
(as containers/storage does not), so they finish in the page cache, faster than the disk's rate.

Budget (DESIGN §7): no slower than CRI-O on the same image and machine. **CRI-O is not installable
here**, so the budget is checked against containerd instead: ${
  ref ? `ours/containerd = ${fmt(ratio, 2)} in median time, ${ratio <= 1 ? "within" : "**over**"} the budget` : "not measured in this run"
}. The ceilings above bound any runtime, CRI-O included, on this machine.`;
writeSection("pull", table);
console.log(table);
