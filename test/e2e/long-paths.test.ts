// Every path deep (issue #16): root, runroot, log_dir, the pods' log dirs, the listen socket and
// the metrics socket each over 150 characters, so every unix socket the daemon and the monitors
// bind or connect — CRI, info, metrics, monitor attach and ctl, console sockets, the journal
// socket of log_to_journald — is far beyond
// sun_path's 107 bytes. The full lifecycle runs on the compiled daemon with real runc, CNI and a
// loopback registry: runp → create → start → exec sync → streaming exec/attach → logs → stop → rm
// → stopp → rmp.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ContainerState, PodSandboxState } from "../../src/gen/runtime/v1/api_pb.ts";
import { shortSocketPath, withShortSocketPath, type ShortSocketPath } from "../../src/sys/short-path.ts";
import { CRIO, LONG_PATH_PADDING, removeDaemonDirs, waitFor } from "../harness.ts";
import { ctrConfig, logLines, podConfig, startEnv, type Env } from "../support/pods.ts";
import { NotifyReceiver, runCmd, sample } from "../support/operator.ts";
import { SpdyClient, WsClient, channelData, channelMessage } from "../support/streaming-client.ts";

const CNI = (bridge: string, subnet: string, dataDir: string) =>
  JSON.stringify({
    cniVersion: "1.0.0",
    name: "crio-test",
    plugins: [
      {
        type: "bridge",
        bridge,
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: { type: "host-local", ranges: [[{ subnet }]], routes: [{ dst: "0.0.0.0/0" }], dataDir },
      },
      { type: "portmap", capabilities: { portMappings: true }, snat: true },
    ],
  });

let env: Env;
const top = mkdtempSync(join(process.env.CRIO_TEST_TMP ?? tmpdir(), "crio-long-"));
const dir = join(top, LONG_PATH_PADDING);
const metricsSocket = join(dir, "metrics", "crio-metrics.sock");
const journalSocket = join(dir, "journal", "socket");
/** The test's stand-in for journald (a datagram socket, bound through an alias: it is deep too). */
let journal: { alias: ShortSocketPath; r: NotifyReceiver } | undefined;
const tag = Math.random().toString(16).slice(2, 8);
beforeAll(async () => {
  mkdirSync(join(dir, "journal"), { recursive: true });
  const alias = shortSocketPath(journalSocket);
  journal = { alias, r: new NotifyReceiver(alias.path) };
  env = await startEnv({
    dir,
    longPaths: true,
    cniConf: CNI(`crl${tag}`, `10.${200 + (parseInt(tag, 16) % 50)}.${parseInt(tag.slice(2, 4), 16)}.0/24`, `/run/crl-ipam-${tag}`),
    config: `[crio.runtime]\nlog_to_journald = true\n[crio.metrics]\nenable_metrics = true\nmetrics_host = "127.0.0.1"\nmetrics_port = 0\nmetrics_socket = ${JSON.stringify(metricsSocket)}\n`,
    env: { CRIO_JOURNAL_SOCKET: journalSocket },
  });
  await env.d.cri.pullImage({ image: { image: env.busybox } });
}, 120_000);
afterAll(async () => {
  const runroot = env?.d.runroot;
  await env?.[Symbol.asyncDispose]();
  journal?.r[Symbol.dispose]();
  journal?.alias.release();
  if (!process.env.CRIO_TEST_KEEP) removeDaemonDirs(top, runroot ?? join(dir, "run"));
  Bun.spawnSync(["ip", "link", "del", `crl${tag}`]);
  Bun.spawnSync(["rm", "-rf", `/run/crl-ipam-${tag}`]);
});

const bytes = (s: string) => Buffer.byteLength(s);

describe("every path over 150 characters", () => {
  test("the paths are as deep as promised, and the daemon's sockets sit at their full paths", async () => {
    const d = env.d;
    for (const p of [d.root, d.runroot, join(d.dir, "logs"), d.socket, metricsSocket, journalSocket]) expect(bytes(p)).toBeGreaterThan(150);
    for (const s of [d.socket, join(d.dir, "crio-info.sock"), metricsSocket]) expect(statSync(s).isSocket()).toBe(true);
    // crio status reaches the info API on <listen without .sock>-info.sock
    const st = runCmd([CRIO, "status", "--socket", d.socket, "info"]);
    expect(st.stderr).toBe("");
    expect(st.stdout).toContain(`storage graph root: ${d.root}\n`);
    // metrics on the deep unix socket
    const text = await withShortSocketPath(metricsSocket, async (unix) => (await fetch("http://localhost/metrics", { unix } as RequestInit)).text());
    expect(sample(text, "container_runtime_crio_operations_total", { operation: "PullImage" })).toBeGreaterThanOrEqual(1);
  });

  test("runp → create → start → exec sync → streaming exec and attach → logs → stop → rm → stopp → rmp", async () => {
    const cri = env.d.cri;
    const pod = podConfig("deep", env.d.dir, { hostNetwork: false });
    expect(bytes(pod.logDirectory!)).toBeGreaterThan(150);
    const { podSandboxId } = await cri.runPodSandbox({ config: pod });
    expect((await cri.podSandboxStatus({ podSandboxId })).status).toMatchObject({
      state: PodSandboxState.SANDBOX_READY,
      network: { ip: expect.stringMatching(/^10\./) },
    });

    // a plain container (attach and ctl sockets) and a tty one (console socket in create mode)
    const cfg = ctrConfig(
      "web",
      env.busybox,
      ["sh", "-c", "echo hello-deep; echo oops >&2; while :; do if [ -e /tmp/go ]; then echo after-reopen; rm /tmp/go; fi; sleep 0.1; done"],
      {},
      pod,
    );
    const { containerId } = await cri.createContainer({ podSandboxId, config: cfg, sandboxConfig: pod });
    await cri.startContainer({ containerId });
    const tty = ctrConfig("tty", env.busybox, ["sh"], { tty: true, stdin: true }, pod);
    const { containerId: ttyId } = await cri.createContainer({ podSandboxId, config: tty, sandboxConfig: pod });
    await cri.startContainer({ containerId: ttyId });
    for (const id of [containerId, ttyId]) {
      expect((await cri.containerStatus({ containerId: id })).status?.state).toBe(ContainerState.CONTAINER_RUNNING);
      for (const name of ["attach", "ctl"]) {
        const sock = join(env.d.runroot, "monitor", id, name);
        expect(bytes(sock)).toBeGreaterThan(200);
        expect(statSync(sock).isSocket()).toBe(true);
      }
    }

    // logs, written by the monitor into the deep pod log dir
    const logPath = join(pod.logDirectory!, "web.log");
    const lines = await waitFor(() => (existsSync(logPath) && logLines(logPath).length >= 2 ? logLines(logPath) : undefined));
    expect(lines.map((l) => [l.stream, l.text]).sort()).toEqual([
      ["stderr", "oops"],
      ["stdout", "hello-deep"],
    ]);
    // and the same records in the (deep) journal socket, sent by the monitor
    await waitFor(
      () => {
        journal!.r.drain();
        return journal!.r.messages.some((m) => m.text.includes("hello-deep") && m.text.includes(`CONTAINER_ID_FULL=${containerId}\n`));
      },
      10_000,
      "the journal entry",
    );

    // exec sync: through the container monitor's ctl socket
    const ex = await cri.execSync({ containerId, cmd: ["sh", "-c", "echo out; echo err >&2; exit 7"], timeout: 10n });
    expect([Buffer.from(ex.stdout).toString(), Buffer.from(ex.stderr).toString(), ex.exitCode]).toEqual(["out\n", "err\n", 7]);

    // streaming exec over SPDY: stdin, stdout, stderr, exit code
    {
      const { url } = await cri.exec({ containerId, cmd: ["sh", "-c", "cat; echo err >&2; exit 3"], stdin: true, stdout: true, stderr: true });
      const { client } = await SpdyClient.connect(url, ["v4.channel.k8s.io"]);
      const error = await client.createStream({ streamType: "error" });
      const stdin = await client.createStream({ streamType: "stdin" });
      const stdout = await client.createStream({ streamType: "stdout" });
      const stderr = await client.createStream({ streamType: "stderr" });
      stdin.write("typed in\n");
      stdin.end();
      const [out, err, status] = await Promise.all([stdout.ended, stderr.ended, error.ended]);
      expect([out.toString(), err.toString()]).toEqual(["typed in\n", "err\n"]);
      expect(JSON.parse(status.toString()).details.causes[0]).toEqual({ reason: "ExitCode", message: "3" });
      await client.close();
    }

    // streaming exec with a tty over WebSocket (a console socket in the exec's dir), with a resize
    {
      const { url } = await cri.exec({ containerId, cmd: ["sh", "-c", "sleep 0.5; stty size"], tty: true, stdin: true, stdout: true });
      const { ws } = await WsClient.connect(url, ["v5.channel.k8s.io"]);
      ws.send(channelMessage(4, JSON.stringify({ Width: 91, Height: 37 })));
      await ws.closed;
      expect(channelData(ws.messages).get(1)?.toString()).toContain("37 91");
    }

    // attach to the tty container: typing reaches its shell
    {
      const { url } = await cri.attach({ containerId: ttyId, tty: true, stdin: true, stdout: true });
      const { ws } = await WsClient.connect(url, ["v5.channel.k8s.io"]);
      ws.send(channelMessage(0, "echo deep-$((6*7))\n"));
      await ws.waitFor(() => channelData(ws.messages).get(1)?.toString().includes("deep-42"), 10_000);
      ws.close();
      await ws.closed;
    }

    // log rotation: ReopenContainerLog over the ctl socket
    renameSync(logPath, `${logPath}.1`);
    await cri.reopenContainerLog({ containerId });
    await cri.execSync({ containerId, cmd: ["touch", "/tmp/go"], timeout: 10n });
    await waitFor(() => existsSync(logPath) && logLines(logPath).some((l) => l.text === "after-reopen"), 10_000, "the reopened log");

    // stop → rm → stopp → rmp, and nothing of them is left in the deep runroot
    await cri.stopContainer({ containerId, timeout: 2n });
    expect((await cri.containerStatus({ containerId })).status?.state).toBe(ContainerState.CONTAINER_EXITED);
    await cri.removeContainer({ containerId });
    await cri.stopPodSandbox({ podSandboxId });
    expect((await cri.podSandboxStatus({ podSandboxId })).status?.state).toBe(PodSandboxState.SANDBOX_NOTREADY);
    await cri.removePodSandbox({ podSandboxId });
    expect((await cri.listPodSandbox({ filter: { id: podSandboxId } })).items).toEqual([]);
    expect((await cri.listContainers({})).containers).toEqual([]);
    const monitors = join(env.d.runroot, "monitor");
    expect(existsSync(monitors) ? readdirSync(monitors).filter((n) => [containerId, ttyId, podSandboxId].includes(n)) : []).toEqual([]);
  });
});
