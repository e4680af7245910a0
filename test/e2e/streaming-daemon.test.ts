// Exec, attach and port-forward through the compiled daemon with real runc: the CRI call
// returns a URL, and the test speaks SPDY or WebSocket to it like kubectl and crictl do.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { waitFor } from "../harness.ts";
import { ctrConfig, podConfig, startEnv, type Env } from "../support/pods.ts";
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
const tag = Math.random().toString(16).slice(2, 8);
beforeAll(async () => {
  env = await startEnv({ cniConf: CNI(`crt${tag}`, `10.${200 + (parseInt(tag, 16) % 50)}.${parseInt(tag.slice(0, 2), 16)}.0/24`, `/run/crt-ipam-${tag}`) });
  await env.d.cri.pullImage({ image: { image: env.busybox } });
}, 120_000);
afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
  Bun.spawnSync(["ip", "link", "del", `crt${tag}`]);
  Bun.spawnSync(["rm", "-rf", `/run/crt-ipam-${tag}`]);
});

async function running(name: string, cmd: string[], extra = {}, hostNetwork = true) {
  const pod = podConfig(name, env.d.dir, { hostNetwork });
  const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
  const { containerId } = await env.d.cri.createContainer({ podSandboxId, config: ctrConfig(name, env.busybox, cmd, extra, pod), sandboxConfig: pod });
  await env.d.cri.startContainer({ containerId });
  return { podSandboxId, containerId };
}

describe("streaming through the daemon", () => {
  test("exec over SPDY v4: stdout, stderr, stdin and the exit code", async () => {
    const c = await running("sx", ["sleep", "3600"]);
    const { url } = await env.d.cri.exec({
      containerId: c.containerId,
      cmd: ["sh", "-c", "cat; echo err >&2; exit 3"],
      stdin: true,
      stdout: true,
      stderr: true,
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/exec\/\S+$/);
    const { client } = await SpdyClient.connect(url, ["v4.channel.k8s.io"]);
    const error = await client.createStream({ streamType: "error" });
    const stdin = await client.createStream({ streamType: "stdin" });
    const stdout = await client.createStream({ streamType: "stdout" });
    const stderr = await client.createStream({ streamType: "stderr" });
    stdin.write("typed in\n");
    stdin.end();
    const [out, err, status] = await Promise.all([stdout.ended, stderr.ended, error.ended]);
    expect(out.toString()).toBe("typed in\n");
    expect(err.toString()).toBe("err\n");
    expect(JSON.parse(status.toString()).details.causes[0]).toEqual({ reason: "ExitCode", message: "3" });
    // the token was single use
    const again = await SpdyClient.connect(url, ["v4.channel.k8s.io"]).catch((e) => e);
    expect(String(again)).toContain("404");
  });

  test("exec with a tty over WebSocket v5: resize reaches the process (stty size)", async () => {
    const c = await running("tty", ["sleep", "3600"]);
    const { url } = await env.d.cri.exec({ containerId: c.containerId, cmd: ["sh", "-c", "sleep 0.5; stty size"], tty: true, stdin: true, stdout: true });
    const { ws, protocol } = await WsClient.connect(url, ["v5.channel.k8s.io", "v4.channel.k8s.io"]);
    expect(protocol).toBe("v5.channel.k8s.io");
    ws.send(channelMessage(4, JSON.stringify({ Width: 91, Height: 37 })));
    await ws.closed;
    expect(channelData(ws.messages).get(1)?.toString()).toContain("37 91");
  });

  test("a 10 MB stream through exec arrives whole", async () => {
    const c = await running("big", ["sleep", "3600"]);
    const { url } = await env.d.cri.exec({
      containerId: c.containerId,
      cmd: ["sh", "-c", "head -c 10485760 /dev/urandom | tee /tmp/blob | cat >/dev/null; sha256sum /tmp/blob >&2; cat /tmp/blob"],
      stdout: true,
      stderr: true,
    });
    const { client } = await SpdyClient.connect(url, ["v4.channel.k8s.io"]);
    const error = await client.createStream({ streamType: "error" });
    const stdout = await client.createStream({ streamType: "stdout" });
    const stderr = await client.createStream({ streamType: "stderr" });
    const [out, err] = await Promise.all([stdout.ended, stderr.ended, error.ended]);
    expect(out.length).toBe(10485760);
    expect(err.toString().split(" ")[0]).toBe(createHash("sha256").update(out).digest("hex"));
  });

  test("attach to a tty container: typing reaches its shell", async () => {
    const c = await running("att", ["sh"], { tty: true, stdin: true });
    const { url } = await env.d.cri.attach({ containerId: c.containerId, tty: true, stdin: true, stdout: true });
    const { ws } = await WsClient.connect(url, ["v5.channel.k8s.io"]);
    ws.send(channelMessage(0, "echo hello-$((6*7))\n"));
    await ws.waitFor(() => channelData(ws.messages).get(1)?.toString().includes("hello-42"), 10_000);
    ws.close();
    await ws.closed;
  });

  test("port-forward to an HTTP server in a pod, several connections at once", async () => {
    const c = await running("web", ["sh", "-c", "mkdir -p /www && echo served-by-pod > /www/index.html && httpd -f -p 8080 -h /www"], {}, false);
    await waitFor(async () => {
      const r = await env.d.cri.execSync({ containerId: c.containerId, cmd: ["wget", "-qO-", "http://127.0.0.1:8080/"], timeout: 5n });
      return r.exitCode === 0;
    });
    const { url } = await env.d.cri.portForward({ podSandboxId: c.podSandboxId, port: [8080] });
    const { client } = await SpdyClient.connect(url, ["portforward.k8s.io"]);
    const one = async (i: number) => {
      const h = { port: "8080", requestID: String(i) };
      const error = await client.createStream({ ...h, streamType: "error" });
      error.end();
      const data = await client.createStream({ ...h, streamType: "data" });
      data.write("GET / HTTP/1.0\r\nHost: x\r\n\r\n");
      data.end();
      return (await data.ended).toString();
    };
    const answers = await Promise.all([0, 1, 2, 3].map(one));
    for (const a of answers) expect(a).toContain("served-by-pod");
    await client.close();
  });

  test("a client that vanishes mid-stream leaves no exec process behind", async () => {
    const c = await running("gone", ["sleep", "3600"]);
    const { url } = await env.d.cri.exec({ containerId: c.containerId, cmd: ["sh", "-c", "while :; do echo y; sleep 0.05; done"], stdout: true, stderr: true });
    const { ws } = await WsClient.connect(url, ["v5.channel.k8s.io"]);
    await ws.waitFor(() => (channelData(ws.messages).get(1)?.length ?? 0) > 0);
    ws.socket.destroy();
    await waitFor(
      async () => {
        const r = await env.d.cri.execSync({ containerId: c.containerId, cmd: ["ps", "-o", "args"], timeout: 5n });
        return !new TextDecoder().decode(r.stdout).includes("while");
      },
      15_000,
      "the exec process to be gone",
    );
  });
});
