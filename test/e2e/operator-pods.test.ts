// The operator's side with real pods (compiled daemon, runc, loopback registry): image pull
// and OOM metrics, `crio status containers`, containers starting under a daemon that systemd
// notifies about, and `crio wipe` after a simulated reboot and with -f.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ContainerState } from "../../src/gen/runtime/v1/api_pb.ts";
import { CRIO, startDaemon, tempDir, waitFor } from "../harness.ts";
import { ctrConfig, podConfig, startEnv, type Env } from "../support/pods.ts";
import { NotifyReceiver, runCmd, sample } from "../support/operator.ts";

const P = "container_runtime_crio_";
const LAYER_TYPES = /^application\/vnd\.(oci\.image\.layer\.v1\.tar(\+gzip|\+zstd)?|docker\.image\.rootfs\.diff\.tar\.gzip)$/;

let env: Env;
let rcv: NotifyReceiver;
let vdir: ReturnType<typeof tempDir>;
let metricsUrl: string;
let versionArgs: string[];

beforeAll(async () => {
  vdir = tempDir("crio-opv-");
  rcv = new NotifyReceiver(join(vdir.path, "notify.sock"));
  versionArgs = ["--version-file", join(vdir.path, "version"), "--version-file-persist", join(vdir.path, "version-persist")];
  env = await startEnv({
    args: versionArgs,
    env: { NOTIFY_SOCKET: rcv.address },
    config: `[crio.metrics]\nenable_metrics = true\nmetrics_host = "127.0.0.1"\nmetrics_port = 0\n`,
  });
  metricsUrl = /(http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(await env.d.waitForLog(/Serving metrics on/))![1]!;
  await rcv.waitFor("READY=1");
}, 120_000);
afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
  rcv?.close();
  vdir?.[Symbol.dispose]();
});

const scrape = async () => await (await fetch(metricsUrl)).text();

async function running(name: string, cmd: string[], extra = {}) {
  const pod = podConfig(name, env.d.dir, { labels: { app: name } });
  const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
  const { containerId } = await env.d.cri.createContainer({ podSandboxId, config: ctrConfig(name, env.busybox, cmd, extra, pod), sandboxConfig: pod });
  await env.d.cri.startContainer({ containerId });
  return { podSandboxId, containerId, pod };
}

describe("metrics with pods", () => {
  test("image pulls: success, bytes by media type and size, layer reuse on a second pull, failures by error", async () => {
    await env.d.cri.pullImage({ image: { image: env.busybox } });
    let text = await scrape();
    expect(sample(text, `${P}image_pulls_success_total`)).toBeGreaterThanOrEqual(1);
    const bytes = text.split("\n").filter((l) => l.startsWith(`${P}image_pulls_bytes_total{`));
    expect(bytes.length).toBeGreaterThan(0);
    for (const l of bytes) expect(/mediatype="([^"]*)"/.exec(l)![1]).toMatch(LAYER_TYPES);
    expect(bytes.reduce((n, l) => n + Number(l.split(" ").at(-1)), 0)).toBeGreaterThan(100_000); // busybox-static
    expect(sample(text, `${P}image_pulls_layer_size_count`)).toBeGreaterThanOrEqual(1);
    await env.d.cri.pullImage({ image: { image: env.busybox } });
    text = await scrape();
    expect(text).toMatch(new RegExp(`${P}image_layer_reuse_total\\{name="sha256:[0-9a-f]{64}"\\} [1-9]`));
    expect(text).toMatch(new RegExp(`${P}image_pulls_skipped_bytes_total\\{size="[^"]+"\\} [1-9]`));
    const err = await env.d.cri.pullImage({ image: { image: `${env.reg.host}/no/such:image` } }).catch((e) => e);
    expect(err.code).toBeGreaterThan(0);
    text = await scrape();
    expect(text).toMatch(new RegExp(`${P}image_pulls_failure_total\\{error="[A-Z_]+"\\} 1`));
    expect(sample(text, `${P}operations_errors_total`, { operation: "PullImage" })).toBe(1);
  });

  test("an OOM kill counts in containers_oom_total and by container name", async () => {
    const c = await running("oomer", ["sh", "-c", "x=a; while :; do x=$x$x$x$x; done"], { linux: { resources: { memoryLimitInBytes: 16n * 1024n * 1024n } } });
    await waitFor(async () => (await env.d.cri.containerStatus({ containerId: c.containerId })).status?.reason === "OOMKilled", 60_000, "the OOM kill");
    const name = (await env.d.cri.containerStatus({ containerId: c.containerId, verbose: true })).status!;
    const text = await scrape();
    expect(sample(text, `${P}containers_oom_total`)).toBe(1);
    const series = text.split("\n").filter((l) => l.startsWith(`${P}containers_oom_count_total{`));
    expect(series).toEqual([expect.stringMatching(new RegExp(`^${P}containers_oom_count_total\\{name="k8s_oomer_oomer_default_[0-9a-f]+_0"\\} 1$`))]);
    expect(name.metadata?.name).toBe("oomer");
    await env.d.cri.removePodSandbox({ podSandboxId: c.podSandboxId });
    expect(await scrape()).not.toContain(`${P}containers_oom_count_total{`); // dropped with the container
  });
});

describe("status and notify with pods", () => {
  test("containers start normally although the daemon was given NOTIFY_SOCKET (children do not inherit it)", async () => {
    const c = await running("notified", ["sh", "-c", "echo $NOTIFY_SOCKET > /tmp/ns; exec sleep 3600"]);
    expect((await env.d.cri.containerStatus({ containerId: c.containerId })).status?.state).toBe(ContainerState.CONTAINER_RUNNING);
    const ex = await env.d.cri.execSync({ containerId: c.containerId, cmd: ["cat", "/tmp/ns"], timeout: 10n });
    expect(new TextDecoder().decode(ex.stdout)).toBe("\n");
    const monitors = readdirSync("/proc")
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return (
            readFileSync(`/proc/${p}/cmdline`, "utf8").includes(c.containerId) &&
            readFileSync(`/proc/${p}/environ`, "utf8")
              .split("\0")
              .some((e) => e.startsWith("NOTIFY_SOCKET="))
          );
        } catch {
          return false;
        }
      });
    expect(monitors).toEqual([]);
    await env.d.cri.removePodSandbox({ podSandboxId: c.podSandboxId });
  });

  test("crio status containers --id prints CRI-O's fields for a running container", async () => {
    const c = await running("shown", ["sleep", "3600"], { labels: { tier: "web" }, annotations: { note: "hello" } });
    const st = (await env.d.cri.containerStatus({ containerId: c.containerId, verbose: true })).status!;
    const r = runCmd([CRIO, "status", "--socket", env.d.socket, "containers", "--id", c.containerId.slice(0, 12)]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/^name: k8s_shown_shown_default_[0-9a-f]+_0\n/);
    expect(Number(/\npid: (\d+)\n/.exec(out)![1])).toBeGreaterThan(1);
    expect(out).toContain(`\nimage: ${env.busybox}\n`);
    expect(out).toMatch(/\nimage ref: sha256:[0-9a-f]{64}\n/);
    expect(BigInt(/\ncreated: (\d+)\n/.exec(out)![1]!)).toBe(st.createdAt);
    expect(out).toContain("\nlabels:\n  tier: web\n");
    expect(out).toContain("  note: hello\n");
    expect(out).toMatch(/\nCRI-O annotations:\n( {2}io\.kubernetes\.cri-o\.[^\n]+\n)+/);
    expect(out).toContain(`\nlog path: ${join(c.pod.logDirectory!, "shown.log")}\n`);
    expect(out).toContain(`\ngraph root: ${join(env.d.root, "storage", c.containerId, "merged")}\n`);
    expect(out).toContain(`\nsandbox: ${c.podSandboxId}\n`);
    const net = (await env.d.cri.podSandboxStatus({ podSandboxId: c.podSandboxId })).status?.network;
    expect(out).toEndWith(`\nips: ${[net?.ip, ...(net?.additionalIps ?? []).map((x) => x.ip)].filter(Boolean).join(", ")}\n`);
    await env.d.cri.removePodSandbox({ podSandboxId: c.podSandboxId });
  });
});

describe("crio wipe", () => {
  test("after a reboot (no version file) it removes pods and containers and keeps images; -f removes images", async () => {
    const c = await running("wiped", ["sleep", "3600"]);
    const pid = Number(/\npid: (\d+)\n/.exec(runCmd([CRIO, "status", "--socket", env.d.socket, "containers", "--id", c.containerId]).stdout)?.[1]);
    expect(pid).toBeGreaterThan(1);
    const imagesBefore = (await env.d.cri.listImages({})).images.length;
    expect(imagesBefore).toBeGreaterThan(0);
    expect(await env.d.stop()).toBe(0); // the container keeps running under its monitor
    const args = [CRIO, "--config", env.d.configFile, "--config-dir", env.d.configDir, ...versionArgs, "wipe"];
    rmSync(join(vdir.path, "version")); // what a reboot does to the tmpfs file
    const w = runCmd(args);
    expect(w.stderr + w.stdout).toContain("wiping containers");
    expect(w.code).toBe(0);
    expect(readdirSync(join(env.d.root, "containers"))).toEqual([]);
    expect(readdirSync(join(env.d.root, "sandboxes"))).toEqual([]);
    expect(existsSync(`/proc/${pid}`)).toBe(false); // the container's process was killed
    const runcLeft = runCmd(["runc", "--root", env.d.runcRoot, "list", "-q"]).stdout.trim();
    expect(runcLeft).toBe("");
    // Nothing mounted is left but the namespace pin directory's own private bind mount.
    const mounts = readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .map((l) => l.split(" ")[4] ?? "")
      .filter((m) => (m.startsWith(env.d.dir + "/") || m.startsWith(env.d.runroot + "/")) && m !== join(env.d.runroot, "ns"));
    expect(mounts).toEqual([]);

    // Restarted on the same directories: no pods, the images are still there.
    await using d2 = await startDaemon({ dir: env.d.dir, args: versionArgs });
    expect((await d2.cri.listPodSandbox({})).items).toEqual([]);
    expect((await d2.cri.listImages({})).images.length).toBe(imagesBefore);
    expect(await d2.stop()).toBe(0);

    const nothing = runCmd(args); // the version file is current again: nothing to do
    expect(nothing.stderr + nothing.stdout).toContain("no wipe needed");
    const forced = runCmd([...args, "--force"]);
    expect(forced.code).toBe(0);
    expect(forced.stderr + forced.stdout).toContain("forced");
    await using d3 = await startDaemon({ dir: env.d.dir, args: versionArgs });
    expect((await d3.cri.listImages({})).images).toEqual([]);
  }, 120_000);
});
