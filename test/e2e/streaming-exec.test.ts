// Exec and attach through the streaming server, with test clients speaking SPDY/3.1 and
// WebSocket to a backend that runs local processes. No root needed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { StreamingServer } from "../../src/streaming/index.ts";
import { waitFor } from "../harness.ts";
import { SpdyClient, WsClient, channelData, channelMessage, rawRequest } from "../support/streaming-client.ts";
import { localBackend } from "./streaming-support.ts";

const backend = localBackend();
const server = new StreamingServer({ backend, streamCreationTimeoutMs: 5000 });
beforeAll(() => server.start());
afterAll(() => server.stop());

const exec = (cmd: string[], o: Partial<{ tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }> = {}) =>
  server.getExecUrl({ containerId: "c1", cmd, tty: false, stdin: false, stdout: true, stderr: true, ...o });

/** Opens the v4 SPDY streams client-go opens for an exec, in its order. */
async function spdyExec(url: string, want: { stdin?: boolean; stdout?: boolean; stderr?: boolean; resize?: boolean }, protocols = ["v4.channel.k8s.io"]) {
  const { client, protocol } = await SpdyClient.connect(url, protocols);
  const error = await client.createStream({ streamType: "error" });
  const stdin = want.stdin ? await client.createStream({ streamType: "stdin" }) : undefined;
  const stdout = want.stdout !== false ? await client.createStream({ streamType: "stdout" }) : undefined;
  const stderr = want.stderr ? await client.createStream({ streamType: "stderr" }) : undefined;
  const resize = want.resize ? await client.createStream({ streamType: "resize" }) : undefined;
  return { client, protocol, error, stdin, stdout, stderr, resize };
}

describe("SPDY exec", () => {
  test.concurrent("stdout, stderr and the exit code in a v4 status", async () => {
    const s = await spdyExec(exec(["sh", "-c", "echo out; echo err >&2; exit 3"]), { stderr: true });
    expect(s.protocol).toBe("v4.channel.k8s.io");
    const [out, err, status] = await Promise.all([s.stdout!.ended, s.stderr!.ended, s.error.ended]);
    expect({ out: out.toString(), err: err.toString(), status: JSON.parse(status.toString()) }).toEqual({
      out: "out\n",
      err: "err\n",
      status: {
        metadata: {},
        status: "Failure",
        message: "command terminated with non-zero exit code: command 'sh -c echo out; echo err >&2; exit 3' exited with 3",
        reason: "NonZeroExitCode",
        details: { causes: [{ reason: "ExitCode", message: "3" }] },
      },
    });
    await s.client.closed;
  });

  test.concurrent("success is a Success status", async () => {
    const s = await spdyExec(exec(["true"]), { stderr: true });
    expect((await s.error.ended).toString()).toBe('{"metadata":{},"status":"Success"}');
  });

  test.concurrent("stdin reaches the process and its FIN ends it", async () => {
    const s = await spdyExec(exec(["cat"], { stdin: true }), { stdin: true, stderr: true });
    s.stdin!.write("hello ");
    s.stdin!.write("world");
    s.stdin!.end();
    expect((await s.stdout!.ended).toString()).toBe("hello world");
    expect(JSON.parse((await s.error.ended).toString()).status).toBe("Success");
  });

  test.concurrent("a tty session's resize messages reach the backend", async () => {
    const url = exec(["sh", "-c", "read x; echo got $x"], { tty: true, stdin: true, stderr: false });
    const s = await spdyExec(url, { stdin: true, resize: true });
    s.resize!.write('{"Width":120,"Height":40}\n{"width":80,');
    s.resize!.write('"height":25}\n');
    await waitFor(() => backend.log.resizes.some((r) => r.width === 80 && r.height === 25), 5000, "resize");
    expect(backend.log.resizes).toContainEqual({ width: 120, height: 40 });
    s.stdin!.write("line\n");
    expect((await s.stdout!.ended).toString()).toBe("got line\n");
  });

  test.concurrent("10 MB through stdin and back out without loss", async () => {
    const data = randomBytes(10 << 20);
    const s = await spdyExec(exec(["cat"], { stdin: true }), { stdin: true, stderr: true });
    s.stdin!.write(data);
    s.stdin!.end();
    const out = await s.stdout!.ended;
    expect(out.length).toBe(data.length);
    expect(sha(out)).toBe(sha(data));
  }, 60_000);

  test.concurrent("older protocols: v2 has no resize, v1 carries errors as text", async () => {
    const v2 = await spdyExec(exec(["sh", "-c", "exit 2"]), { stderr: true }, ["v2.channel.k8s.io"]);
    expect(v2.protocol).toBe("v2.channel.k8s.io");
    expect((await v2.error.ended).toString()).toBe("command terminated with non-zero exit code: command 'sh -c exit 2' exited with 2");
    const v3 = await spdyExec(exec(["true"]), { stderr: true }, ["v5.channel.k8s.io", "v3.channel.k8s.io"]);
    expect(v3.protocol).toBe("v3.channel.k8s.io");
    expect((await v3.error.ended).toString()).toBe(""); // success: nothing on the error stream
  });

  test.concurrent("attach runs until the client ends stdin", async () => {
    const url = server.getAttachUrl({ containerId: "c2", tty: false, stdin: true, stdout: true, stderr: false });
    const s = await spdyExec(url, { stdin: true });
    s.stdin!.write("attached\n");
    s.stdin!.end();
    expect((await s.stdout!.ended).toString()).toBe("attached\n");
    expect(JSON.parse((await s.error.ended).toString()).status).toBe("Success");
  });

  test.concurrent("pings are answered", async () => {
    const s = await spdyExec(exec(["sh", "-c", "read x"], { stdin: true }), { stdin: true, stderr: true });
    await s.client.ping(7);
    s.stdin!.end();
    await s.error.ended;
  });

  test.concurrent("the client vanishing mid-stream aborts the backend", async () => {
    const s = await spdyExec(exec(["sleep", "30"]), { stderr: true });
    await waitFor(() => backend.log.execs.some((e) => e.cmd[1] === "30"), 5000, "exec started");
    s.client.socket.destroy();
    await waitFor(() => backend.log.aborted.includes("exec:sleep 30"), 5000, "backend abort");
  });

  test.concurrent("a client that never opens its streams is dropped", async () => {
    const { client } = await SpdyClient.connect(exec(["true"]), ["v4.channel.k8s.io"]);
    await client.createStream({ streamType: "error" });
    const start = Date.now();
    await client.closed;
    expect(Date.now() - start).toBeGreaterThan(1000);
  });
});

describe("WebSocket exec", () => {
  test.concurrent("v5: output, exit code, and the stdin close signal", async () => {
    const { ws, protocol } = await WsClient.connect(exec(["sh", "-c", "cat; echo bye >&2; exit 4"], { stdin: true }), [
      "v5.channel.k8s.io",
      "v4.channel.k8s.io",
    ]);
    expect(protocol).toBe("v5.channel.k8s.io");
    ws.send(channelMessage(0, "abc"), 3); // fragmented into 3 frames
    ws.send(channelMessage(0, "def"));
    ws.send(Buffer.from([255, 0])); // close stdin
    await ws.closed;
    expect(ws.messages[0]!.data).toEqual(Buffer.from([1])); // the empty "ready" message on stdout
    const ch = channelData(ws.messages);
    expect({ out: ch.get(1)?.toString(), err: ch.get(2)?.toString(), code: ws.closeFrame?.code }).toEqual({ out: "abcdef", err: "bye\n", code: 1000 });
    expect(JSON.parse(ch.get(3)!.toString()).details).toEqual({ causes: [{ reason: "ExitCode", message: "4" }] });
  });

  test.concurrent("v4 base64 framing", async () => {
    const { ws, protocol } = await WsClient.connect(exec(["sh", "-c", "printf '\\001\\002\\377'"]), ["v4.base64.channel.k8s.io"]);
    expect(protocol).toBe("v4.base64.channel.k8s.io");
    await ws.closed;
    expect(ws.messages.every((m) => m.opcode === 1)).toBe(true); // text frames
    const ch = channelData(ws.messages, true);
    expect(ch.get(1)).toEqual(Buffer.from([1, 2, 255]));
    expect(ch.get(3)!.toString()).toBe('{"metadata":{},"status":"Success"}');
  });

  test.concurrent("channel.k8s.io carries a failure as text", async () => {
    const { ws } = await WsClient.connect(exec(["sh", "-c", "exit 1"]), ["channel.k8s.io"]);
    await ws.closed;
    expect(channelData(ws.messages).get(3)!.toString()).toStartWith("command terminated with non-zero exit code");
  });

  test.concurrent("resize over channel 4, and 10 MB round trip", async () => {
    const url = exec(["cat"], { stdin: true, tty: true, stderr: false });
    const { ws } = await WsClient.connect(url, ["v5.channel.k8s.io"]);
    ws.send(channelMessage(4, '{"Width":133,"Height":51}'));
    await waitFor(() => backend.log.resizes.some((r) => r.width === 133 && r.height === 51), 5000, "resize");
    const data = randomBytes(10 << 20);
    for (let off = 0; off < data.length; off += 1 << 20) ws.send(channelMessage(0, data.subarray(off, off + (1 << 20))));
    ws.send(Buffer.from([255, 0]));
    await ws.closed;
    const out = channelData(ws.messages).get(1)!;
    expect(out.length).toBe(data.length);
    expect(sha(out)).toBe(sha(data));
  }, 60_000);

  test.concurrent("the client vanishing mid-stream aborts the backend", async () => {
    const { ws } = await WsClient.connect(exec(["sleep", "31"]), ["v5.channel.k8s.io"]);
    await waitFor(() => backend.log.execs.some((e) => e.cmd[1] === "31"), 5000, "exec started");
    ws.socket.destroy();
    await waitFor(() => backend.log.aborted.includes("exec:sleep 31"), 5000, "backend abort");
  });

  test.concurrent("unsupported subprotocols are refused with 403", async () => {
    const e = await WsClient.connect(exec(["true"]), ["v9.channel.k8s.io"]).catch((e) => e);
    expect(e.result.status).toBe(403);
  });
});

describe("tokens and handshakes", () => {
  test.concurrent("a token works once; reuse, unknown tokens and the wrong endpoint get 404", async () => {
    const url = exec(["true"]);
    const s = await spdyExec(url, { stderr: true });
    await s.error.ended;
    const again = await rawRequest(url, {
      headers: [
        ["Connection", "Upgrade"],
        ["Upgrade", "SPDY/3.1"],
        ["X-Stream-Protocol-Version", "v4.channel.k8s.io"],
      ],
    });
    expect({ status: again.status, body: again.body }).toEqual({ status: 404, body: "404 page not found\n" });
    expect((await rawRequest(`${server.url}/exec/AAAAAAAAAAAAAAAAAAAAAA`)).status).toBe(404);
    const wrong = exec(["true"]).replace("/exec/", "/attach/");
    expect((await rawRequest(wrong)).status).toBe(404);
    expect((await rawRequest(`${server.url}/other`)).status).toBe(404);
  });

  test.concurrent("an expired token gets 404 and starts nothing", async () => {
    const short = new StreamingServer({ backend, tokenTtlMs: 50 });
    await short.start();
    try {
      const url = short.getExecUrl({ containerId: "c", cmd: ["echo", "expired"], tty: false, stdin: false, stdout: true, stderr: false });
      await Bun.sleep(120);
      const e = await SpdyClient.connect(url, ["v4.channel.k8s.io"]).catch((e) => e);
      expect(e.result.status).toBe(404);
      expect(backend.log.execs.some((x) => x.cmd[1] === "expired")).toBe(false);
    } finally {
      await short.stop();
    }
  });

  test.concurrent("SPDY negotiation: 403 lists what the server accepts, 400 without the header", async () => {
    const bad = await SpdyClient.connect(exec(["true"]), ["v9.channel.k8s.io"]).catch((e) => e);
    expect(bad.result.status).toBe(403);
    expect(bad.result.headers.get("x-accepted-stream-protocol-versions")).toEqual([
      "v4.channel.k8s.io",
      "v3.channel.k8s.io",
      "v2.channel.k8s.io",
      "channel.k8s.io",
    ]);
    const none = await rawRequest(exec(["true"]), {
      headers: [
        ["Connection", "Upgrade"],
        ["Upgrade", "SPDY/3.1"],
      ],
    });
    expect(none.status).toBe(400);
  });

  test("bad requests are refused before a token is made", () => {
    const base = { containerId: "c", cmd: ["true"], tty: false, stdin: false, stdout: true, stderr: false };
    expect(() => server.getExecUrl({ ...base, tty: true, stderr: true })).toThrow("tty and stderr cannot both be true");
    expect(() => server.getExecUrl({ ...base, stdout: false })).toThrow("one of stdin, stdout, or stderr must be set");
    expect(() => server.getExecUrl({ ...base, containerId: "" })).toThrow("missing required container_id");
    expect(() => server.getPortForwardUrl({ podSandboxId: "", ports: [] })).toThrow("missing required pod_sandbox_id");
    expect(exec(["true"])).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]{22}$/);
  });

  test("an idle connection is closed and its backend aborted", async () => {
    const idle = new StreamingServer({ backend, idleTimeoutMs: 300 });
    await idle.start();
    try {
      const url = idle.getExecUrl({ containerId: "c", cmd: ["sleep", "32"], tty: false, stdin: false, stdout: true, stderr: false });
      const { ws } = await WsClient.connect(url, ["v5.channel.k8s.io"]);
      await ws.closed;
      await waitFor(() => backend.log.aborted.includes("exec:sleep 32"), 5000, "backend abort");
    } finally {
      await idle.stop();
    }
  });
});

function sha(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}
