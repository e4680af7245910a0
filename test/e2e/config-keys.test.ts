// crio.conf keys proven on one compiled daemon with non-default values (issue #16, the keys the
// audit left without a proof):
//   [crio.image] max_parallel_downloads = 2   — a pull of a 6-layer image through a counting proxy
//                                              in front of the loopback registry never has more
//                                              than 2 layer downloads in flight (and does reach 2);
//   [crio.api] stream_idle_timeout = "3s"     — an exec stream with no traffic is closed after it,
//                                              one with traffic every second is not;
//   [crio.stats] stats_collection_period = 2  — the deprecated spelling behaves as collection_period:
//                                              stats answer from a snapshot refreshed every period;
//   [crio.runtime] ctr_stop_timeout = 31      — how long StopContainer waits for the container to be
//                                              stopped once SIGKILL is sent (CRI-O's
//                                              WaitContainerStateStopped; 30 is the floor) before it
//                                              fails DEADLINE_EXCEEDED. A process SIGKILL cannot end
//                                              at once (D state) is made by a handler "stuck" whose
//                                              runtime_path is real runc behind a script that drops
//                                              `kill` until the test allows it.
// Their wrong values are refused at start (test/unit/config/options.test.ts).
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { waitFor } from "../harness.ts";
import { bigImage, imageRef, pushImage, type PushedImage } from "../support/images.ts";
import { ctrConfig, podConfig, startEnv, type Env } from "../support/pods.ts";
import { WsClient, channelData, channelMessage } from "../support/streaming-client.ts";

setDefaultTimeout(90_000);
const root = process.getuid?.() === 0;
if (!root) console.warn("config-keys e2e: skipped, needs root");

const IDLE_S = 3;
let env: Env;
let big: PushedImage;
let containerId = "";
const STOP_S = 31;
const stuckDir = mkdtempSync(join(tmpdir(), "crio-stuck-"));
const allowKill = join(stuckDir, "allow-kill");
const RUNC = ["/usr/bin/runc", "/usr/sbin/runc", "/usr/local/bin/runc", "/usr/local/sbin/runc"].find((p) => existsSync(p)) ?? "runc";

/** A proxy to the registry that holds each layer GET for 800 ms (so two requests overlap even on a loaded machine) and records the most in flight at once. */
let proxy: ReturnType<typeof Bun.serve> | undefined;
const layerGets = { inFlight: 0, max: 0, total: 0 };

beforeAll(async () => {
  if (!root) return;
  const stuck = join(stuckDir, "stuck-runc");
  writeFileSync(stuck, `#!/bin/sh\nfor a in "$@"; do\n  if [ "$a" = kill ] && [ ! -e ${allowKill} ]; then exit 0; fi\ndone\nexec ${RUNC} "$@"\n`);
  chmodSync(stuck, 0o755);
  env = await startEnv({
    config:
      `max_parallel_downloads = 2\ninsecure_registries = ["127.0.0.0/8"]\n[crio.api]\nstream_idle_timeout = "${IDLE_S}s"\n[crio.stats]\nstats_collection_period = 2\n` +
      `[crio.runtime]\nctr_stop_timeout = ${STOP_S}\n[crio.runtime.runtimes.stuck]\nruntime_path = ${JSON.stringify(stuck)}\nruntime_root = ${JSON.stringify(join(stuckDir, "root"))}\n`,
  });
  big = await pushImage(env.reg, await bigImage({ layers: 6, totalBytes: 6 * 256 * 1024 }), { name: "parallel" });
  const layers = new Set(big.layers.map((l) => l.digest));
  const upstream = env.reg.url;
  proxy = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const u = new URL(req.url);
      const m = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(u.pathname);
      const isLayer = req.method === "GET" && m !== null && layers.has(m[1]!);
      if (isLayer) {
        layerGets.total++;
        layerGets.max = Math.max(layerGets.max, ++layerGets.inFlight);
        await Bun.sleep(800);
      }
      try {
        const headers = new Headers(req.headers);
        headers.delete("host");
        const r = await fetch(upstream + u.pathname + u.search, { method: req.method, headers, redirect: "manual" });
        const body = req.method === "HEAD" ? null : await r.arrayBuffer();
        const out = new Headers(r.headers);
        out.delete("content-encoding");
        out.delete("transfer-encoding");
        if (body) out.delete("content-length");
        return new Response(body, { status: r.status, headers: out });
      } finally {
        if (isLayer) layerGets.inFlight--;
      }
    },
  });
  await env.d.cri.pullImage({ image: { image: env.busybox } });
  const pod = podConfig("keys", env.d.dir);
  const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
  ({ containerId } = await env.d.cri.createContainer({ podSandboxId, config: ctrConfig("keys", env.busybox, ["sleep", "3600"], {}, pod), sandboxConfig: pod }));
  await env.d.cri.startContainer({ containerId });
}, 180_000);

afterAll(async () => {
  proxy?.stop(true);
  writeFileSync(allowKill, "");
  await env?.[Symbol.asyncDispose]();
  rmSync(stuckDir, { recursive: true, force: true });
});

describe.skipIf(!root)("config keys with non-default values on the compiled daemon", () => {
  test("max_parallel_downloads = 2: at most two layers of one pull are downloaded at once", async () => {
    const ref = imageRef(`127.0.0.1:${proxy!.port}`, big.name, big.tag);
    const { imageRef: id } = await env.d.cri.pullImage({ image: { image: ref } });
    expect(id).toBe(big.imageId);
    expect(layerGets.total).toBeGreaterThanOrEqual(6);
    expect(layerGets.max).toBe(2);
  });

  test(`stream_idle_timeout = "${IDLE_S}s": an exec stream without traffic is closed after it`, async () => {
    const { url } = await env.d.cri.exec({ containerId, cmd: ["cat"], stdin: true, stdout: true });
    const started = Date.now();
    const { ws } = await WsClient.connect(url, ["v5.channel.k8s.io"]);
    await Promise.race([
      ws.closed,
      Bun.sleep(30_000).then(() => {
        throw new Error("idle exec stream still open after 30 s");
      }),
    ]);
    const after = (Date.now() - started) / 1000;
    expect(after).toBeGreaterThanOrEqual(IDLE_S - 0.5);
    expect(after).toBeLessThan(IDLE_S + 15);
  });

  test(`stream_idle_timeout = "${IDLE_S}s": a stream with traffic every second stays open past it`, async () => {
    const { url } = await env.d.cri.exec({ containerId, cmd: ["cat"], stdin: true, stdout: true });
    const { ws } = await WsClient.connect(url, ["v5.channel.k8s.io"]);
    let closed = false;
    void ws.closed.then(() => (closed = true));
    for (let i = 0; i < 2 * IDLE_S; i++) {
      ws.send(channelMessage(0, `tick ${i}\n`));
      await Bun.sleep(1000);
    }
    expect(closed).toBe(false);
    await ws.waitFor(() =>
      channelData(ws.messages)
        .get(1)
        ?.toString()
        .includes(`tick ${2 * IDLE_S - 1}\n`),
    );
    ws.close();
    await ws.closed;
  });

  test("stats_collection_period = 2 (deprecated spelling of collection_period): stats come from a snapshot refreshed every period", async () => {
    const cpuTs = async () => (await env.d.cri.containerStats({ containerId })).stats?.cpu?.timestamp;
    // Two calls 300 ms apart answer from the same snapshot (without a period each samples anew)...
    const first = await waitFor(
      async () => {
        const a = await cpuTs();
        await Bun.sleep(300);
        const b = await cpuTs();
        return a !== undefined && a === b ? a : undefined;
      },
      20_000,
      "two calls answered from one snapshot",
    );
    // ...and a later call sees a newer one.
    const later = await waitFor(
      async () => {
        const t = await cpuTs();
        return t !== undefined && t > first ? t : undefined;
      },
      10_000,
      "a refreshed snapshot",
    );
    expect(later).toBeGreaterThan(first);
  });

  test(`ctr_stop_timeout = ${STOP_S}: StopContainer waits that long for the stopped state after SIGKILL, then DEADLINE_EXCEEDED`, async () => {
    const pod = podConfig("stuck", env.d.dir);
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod, runtimeHandler: "stuck" });
    const { containerId: id } = await env.d.cri.createContainer({
      podSandboxId,
      config: ctrConfig("stuck", env.busybox, ["sleep", "3600"], {}, pod),
      sandboxConfig: pod,
    });
    await env.d.cri.startContainer({ containerId: id });
    const t0 = Date.now();
    const err = await env.d.cri.stopContainer({ containerId: id, timeout: 0n }).then(
      () => undefined,
      (e: Error) => e,
    );
    const waited = (Date.now() - t0) / 1000;
    expect(String(err)).toContain("DEADLINE_EXCEEDED");
    expect(String(err)).toContain(`did not exit after SIGKILL within ${STOP_S}s`);
    expect(waited).toBeGreaterThanOrEqual(STOP_S - 0.5);
    expect(waited).toBeLessThan(STOP_S + 15);
    // Once the kill gets through, the same call stops it at once.
    writeFileSync(allowKill, "");
    await env.d.cri.stopContainer({ containerId: id, timeout: 0n });
    expect((await env.d.cri.containerStatus({ containerId: id })).status?.state).toBe(2); // CONTAINER_EXITED
    await env.d.cri.stopPodSandbox({ podSandboxId });
    await env.d.cri.removePodSandbox({ podSandboxId });
  }, 120_000);
});
