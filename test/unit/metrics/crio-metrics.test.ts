import { expect, test } from "bun:test";
import { CrioMetrics, METRIC_PREFIX, PullCounter, instrumentPulls, pullErrorLabel, selectCollectors, sizeBucket } from "../../../src/metrics/index.ts";
import { RuntimeError } from "../../../src/errors.ts";
import type { ImageRecord, PullOptions, PullProgress } from "../../../src/image/index.ts";

const P = METRIC_PREFIX;
const LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";

test("operations feed the counter, the last-latency gauge, the summary and the error counter", () => {
  const m = new CrioMetrics();
  m.operation("RunPodSandbox", 0.5, false);
  m.operation("RunPodSandbox", 0.25, true);
  expect(m.operations.get({ operation: "RunPodSandbox" })).toBe(2);
  expect(m.errors.get({ operation: "RunPodSandbox" })).toBe(1);
  const text = m.render();
  expect(text).toContain(`${P}operations_total{operation="RunPodSandbox"} 2`);
  expect(text).toContain(`${P}operations_latency_seconds{operation="RunPodSandbox"} 0.25`);
  expect(text).toContain(`${P}operations_latency_seconds_total_count{operation="RunPodSandbox"} 2`);
  expect(text).toContain(`${P}operations_errors_total{operation="RunPodSandbox"} 1`);
  expect(text).toContain(`${P}containers_oom_total 0`);
  expect(text).toContain(`${P}containers_events_dropped_total 0`);
  expect(text).toMatch(/\nprocess_resident_memory_bytes \d+\n/);
  expect(text).toMatch(/\nprocess_cpu_seconds_total [\d.]+\n/);
  expect(text).toMatch(/\nprocess_open_fds \d+\n/);
  expect(text).toMatch(/\nprocess_start_time_seconds [\d.]+\n/);
  expect(text).toMatch(new RegExp(`\\n${P}processes_defunct \\d+\\n`));
});

test("OOM kills count in total and by container name; a removed container's series goes", () => {
  const m = new CrioMetrics();
  m.containerOom("k8s_a_pod_ns_uid_0");
  m.containerOom("k8s_a_pod_ns_uid_0");
  m.containerOom("k8s_b_pod_ns_uid_0");
  expect(m.oomTotal.get()).toBe(3);
  expect(m.oomCount.get({ name: "k8s_a_pod_ns_uid_0" })).toBe(2);
  m.containerRemoved("k8s_a_pod_ns_uid_0");
  expect(m.render()).not.toContain("k8s_a_pod");
  expect(m.oomTotal.get()).toBe(3);
});

test("metrics_collectors selects collectors by key with or without prefixes, and names unknown ones", () => {
  expect(selectCollectors(["operations_total", "crio_image_pulls_success_total", "container_runtime_crio_process", "nope"])).toEqual({
    keys: new Set(["operations_total", "image_pulls_success_total", "process"]),
    unknown: ["nope"],
  });
  const m = new CrioMetrics({ collectors: ["operations_total"] });
  m.operation("Version", 0.001, false);
  m.containerOom("x");
  const text = m.render();
  expect(text).toContain(`${P}operations_total{operation="Version"} 1`);
  expect(text).not.toContain("oom");
  expect(text).not.toContain("process_");
  expect(text).not.toContain("latency");
});

test("size buckets follow CRI-O's labels", () => {
  expect(sizeBucket(0)).toBe(">0 B");
  expect(sizeBucket(1000)).toBe(">0 B");
  expect(sizeBucket(1001)).toBe(">1 KiB");
  expect(sizeBucket(2_000_000)).toBe(">1 MiB");
  expect(sizeBucket(11e9)).toBe(">10 GiB");
});

test("a pull's progress counts downloaded bytes per media type once, reused layers and skipped bytes", () => {
  const m = new CrioMetrics();
  const c = new PullCounter(m);
  const a = c.listener();
  const b = c.listener(); // a second pull sharing the same layer download
  const manifest: PullProgress = {
    type: "manifest",
    ref: "r",
    source: "s",
    manifestDigest: "sha256:m",
    layers: [
      { digest: "sha256:l1", size: 3000, mediaType: LAYER },
      { digest: "sha256:l2", size: 500, mediaType: LAYER },
    ],
  };
  a(manifest);
  b(manifest);
  const ev = (digest: string, state: "exists" | "downloading" | "unpacking" | "done", current: number, total: number): PullProgress => ({
    type: "layer",
    digest,
    state,
    current,
    total,
  });
  for (const l of [a, b]) l(ev("sha256:l1", "downloading", 1000, 3000));
  for (const l of [a, b]) l(ev("sha256:l1", "downloading", 2500, 3000));
  for (const l of [a, b]) l(ev("sha256:l1", "unpacking", 100, 3000)); // the last chunk was not reported: the blob is whole now
  for (const l of [a, b]) l(ev("sha256:l1", "done", 3000, 3000));
  a(ev("sha256:l2", "exists", 500, 500));
  expect(m.pullBytes.get({ mediatype: LAYER, size: ">1 KiB" })).toBe(3000);
  expect(m.layerReuse.get({ name: "sha256:l2" })).toBe(1);
  expect(m.pullSkippedBytes.get({ size: ">0 B" })).toBe(500);
  expect(m.render()).toContain(`${P}image_pulls_layer_size_count 1`);
});

test("instrumentPulls counts successes and failures by error kind and keeps the caller's progress listener", async () => {
  const m = new CrioMetrics();
  const seen: string[] = [];
  const fake = {
    async pull(ref: string, o: PullOptions = {}): Promise<ImageRecord> {
      o.onProgress?.({ type: "resolving", ref, source: "reg" });
      if (ref === "missing") throw new RuntimeError("not-found", `image "${ref}" not found`);
      o.onProgress?.({ type: "manifest", ref, source: "reg", manifestDigest: "sha256:m", layers: [{ digest: "sha256:x", size: 10, mediaType: LAYER }] });
      o.onProgress?.({ type: "layer", digest: "sha256:x", state: "downloading", current: 10, total: 10 });
      o.onProgress?.({ type: "layer", digest: "sha256:x", state: "done", current: 10, total: 10 });
      return { id: "sha256:img" } as ImageRecord;
    },
  };
  const images = instrumentPulls(fake, m);
  expect(images).toBe(fake);
  await images.pull("busybox", { onProgress: (p) => seen.push(p.type) });
  await expect(images.pull("missing")).rejects.toThrow(/not found/);
  expect(seen).toEqual(["resolving", "manifest", "layer", "layer"]);
  expect(m.pullSuccesses.get()).toBe(1);
  expect(m.pullFailures.get({ error: "NOT_FOUND" })).toBe(1);
  expect(m.pullBytes.get({ mediatype: LAYER, size: ">0 B" })).toBe(10);
  expect(pullErrorLabel(new Error("x"))).toBe("UNKNOWN");
});
