import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXPOSITION_CONTENT_TYPE, removeUnusedSocket, serveMetrics } from "../../../src/metrics/index.ts";

test("serves /metrics on TCP (a free port for 0) and on the unix socket; other paths are 404", async () => {
  const dir = mkdtempSync(join(tmpdir(), "crio-metrics-"));
  const socket = join(dir, "m", "metrics.sock");
  let n = 0;
  const s = await serveMetrics({ host: "127.0.0.1", port: 0, socket, render: () => `x ${++n}\n` });
  try {
    expect(s.port).toBeGreaterThan(0);
    expect(s.url).toBe(`http://127.0.0.1:${s.port}/metrics`);
    const r = await fetch(s.url);
    expect(r.headers.get("content-type")).toBe(EXPOSITION_CONTENT_TYPE);
    expect(await r.text()).toBe("x 1\n");
    const u = await fetch("http://localhost/metrics", { unix: socket } as RequestInit);
    expect(await u.text()).toBe("x 2\n");
    expect((await fetch(`http://127.0.0.1:${s.port}/other`)).status).toBe(404);
    expect((await fetch(s.url, { method: "POST" })).status).toBe(405);
  } finally {
    await s.stop();
  }
  expect(existsSync(socket)).toBe(false);
  rmSync(dir, { recursive: true, force: true });
});

test("a port in use fails naming the address, and leaves nothing listening", async () => {
  const first = await serveMetrics({ host: "127.0.0.1", port: 0, render: () => "" });
  try {
    await expect(serveMetrics({ host: "127.0.0.1", port: first.port, render: () => "" })).rejects.toThrow(`metrics endpoint on 127.0.0.1:${first.port}`);
  } finally {
    await first.stop();
  }
});

test("removeUnusedSocket removes a stale socket, refuses a live one and a regular file", async () => {
  const dir = mkdtempSync(join(tmpdir(), "crio-sock-"));
  const live = join(dir, "live.sock");
  const srv = createServer(() => {}).listen(live);
  await new Promise((r) => srv.once("listening", r));
  await expect(removeUnusedSocket(live)).rejects.toThrow(/another process is already listening/);
  await new Promise((r) => srv.close(r));
  // a socket whose owner died without unlinking it (a crash): a child bound it and was SIGKILLed
  const stale = join(dir, "stale.sock");
  const child = Bun.spawn(
    [process.execPath, "-e", `Bun.listen({ unix: ${JSON.stringify(stale)}, socket: { data() {} } }); console.log("up"); setInterval(() => {}, 1000)`],
    { stdout: "pipe" },
  );
  const reader = child.stdout.getReader();
  await reader.read(); // "up": bound
  child.kill("SIGKILL");
  await child.exited;
  expect(existsSync(stale)).toBe(true);
  await removeUnusedSocket(stale);
  expect(existsSync(stale)).toBe(false);
  writeFileSync(join(dir, "file"), "");
  await expect(removeUnusedSocket(join(dir, "file"))).rejects.toThrow(/is not a socket/);
  await removeUnusedSocket(join(dir, "absent")); // nothing to do
  rmSync(dir, { recursive: true, force: true });
});
