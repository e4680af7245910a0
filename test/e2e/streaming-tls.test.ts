// The streaming server over TLS: https URLs, certificate reload, client certificates.
// Certificates are made with the openssl CLI; the file is skipped where it is missing.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import tls from "node:tls";
import { StreamingServer } from "../../src/streaming/index.ts";
import { tempDir, waitFor } from "../harness.ts";
import { SpdyClient, rawRequest } from "../support/streaming-client.ts";
import { localBackend } from "./streaming-support.ts";

const openssl = Bun.which("openssl");
const dir = tempDir("crio-stream-tls-");
afterAll(() => dir[Symbol.dispose]());

function ossl(...args: string[]) {
  const r = Bun.spawnSync([openssl!, ...args], { cwd: dir.path, stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr.toString()}`);
}
/** A key and a certificate for `cn` signed by the test CA, with 127.0.0.1 as its address. */
function issue(name: string, cn: string) {
  ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`);
  Bun.write(join(dir.path, `${name}.ext`), "subjectAltName=IP:127.0.0.1\n");
  ossl(
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "1",
    "-out",
    `${name}.pem`,
    "-extfile",
    `${name}.ext`,
  );
}
const file = (n: string) => join(dir.path, n);

/** The CN of the certificate the server at `url` presents. */
function peerCommonName(url: string, ca: Buffer): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: u.hostname, port: Number(u.port), ca }, () => {
      resolve(s.getPeerCertificate().subject.CN as string);
      s.destroy();
    });
    s.on("error", reject);
  });
}

beforeAll(() => {
  if (!openssl) return;
  ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=test-ca");
  issue("one", "server-one");
  issue("two", "server-two");
  issue("client", "a-client");
});

test.skipIf(!openssl)(
  "https URLs work, and replaced certificate files are picked up",
  async () => {
    // the server checks the files at most once a second, on new connections
    const server = new StreamingServer({ backend: localBackend(), tls: { cert: file("one.pem"), key: file("one.key") } });
    await server.start();
    try {
      const ca = readFileSync(file("ca.pem"));
      const url = server.getExecUrl({ containerId: "c", cmd: ["echo", "over tls"], tty: false, stdin: false, stdout: true, stderr: false });
      expect(url).toStartWith("https://127.0.0.1:");
      const { client } = await SpdyClient.connect(url, ["v4.channel.k8s.io"], ca);
      expect((client.socket as tls.TLSSocket).getPeerCertificate().subject.CN).toBe("server-one");
      const error = await client.createStream({ streamType: "error" });
      const stdout = await client.createStream({ streamType: "stdout" });
      expect((await stdout.ended).toString()).toBe("over tls\n");
      expect(JSON.parse((await error.ended).toString()).status).toBe("Success");

      renameSync(file("two.pem"), file("one.pem"));
      renameSync(file("two.key"), file("one.key"));
      await waitFor(async () => (await peerCommonName(server.url, ca)) === "server-two", 10_000, "the new certificate");
    } finally {
      await server.stop();
    }
  },
  20_000,
);

test.skipIf(!openssl)("with a CA, clients must present a certificate it signed", async () => {
  const server = new StreamingServer({ backend: localBackend(), tls: { cert: file("client.pem"), key: file("client.key"), ca: file("ca.pem") } });
  await server.start();
  try {
    const ca = readFileSync(file("ca.pem"));
    const anonymous = await rawRequest(`${server.url}/exec/none`, { ca }).catch((e: Error) => e);
    expect(anonymous).toBeInstanceOf(Error);
    const r = await rawRequest(`${server.url}/exec/none`, { ca, tls: { cert: readFileSync(file("client.pem")), key: readFileSync(file("client.key")) } });
    expect(r.status).toBe(404);
  } finally {
    await server.stop();
  }
});
