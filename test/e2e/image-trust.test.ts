// Image trust: policy.json signedBy (GPG) enforced on PullImage, `crio pull` and again at
// CreateContainer, with signatures in a file:// lookaside found through registries.d under
// $HOME/.config/containers. Images are signed here: with `skopeo copy --sign-by` (a key made by
// gpg --batch in a temporary GNUPGHOME), and with gpg over payloads the test writes for the bad
// cases. Each case is a namespace with its own policy (signature_policy_dir), so one daemon runs
// them all; `skopeo copy --policy` on the same image and policy must agree on every case.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status as grpc } from "@grpc/grpc-js";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { runRaw } from "../../src/sys/exec.ts";
import { CRIO, tempDir, waitFor } from "../harness.ts";
import { busyboxImage, pushImage, type PushedImage, type TestImage } from "../support/images.ts";
import { ctrConfig, podConfig, startEnv, type Env, type PodConfig } from "../support/pods.ts";
import { skopeoFlags } from "../support/registry.ts";
import {
  cosignKeyPair,
  cosignPayload,
  cosignSign,
  Gpg,
  pushCosignAttachment,
  rekorBundle,
  simplePayload,
  TestFulcio,
  writeLookaside,
  type GpgKey,
} from "../support/signing.ts";

const tmp = tempDir("crio-trust-");
const home = join(tmp.path, "home");
const registriesD = join(home, ".config", "containers", "registries.d");
const lookaside = join(tmp.path, "lookaside");
const policies = join(tmp.path, "policies");
const daemonDir = join(tmp.path, "d");
const gpg = new Gpg(join(tmp.path, "gnupg"));
let env: Env;
let host: string;
let bb: TestImage;
let digest: string;
let signed: PushedImage;
/** An http:// lookaside: serves <lookaside>/http/…; paths under /fail/ answer 500. */
let web: ReturnType<typeof Bun.serve> | undefined;
/** A proxy in front of the registry that serves the registry signature extension (X-Registry-Supports-Signatures). */
let ext: ReturnType<typeof Bun.serve> | undefined;
let extHost: string;
const extSigs = new Map<string, Uint8Array[]>();
const keys = {} as Record<"good" | "other" | "old" | "revoked", GpgKey>;

/** A policy whose docker scope for the test registry (and upstream.invalid) is `reqs`; everything else accepted. */
const policyDoc = (reqs: object[], scope = host) => ({ default: [{ type: "insecureAcceptAnything" }], transports: { docker: { [scope]: reqs } } });
const signedBy = (key: GpgKey | GpgKey[], extra: object = {}) =>
  Array.isArray(key)
    ? { type: "signedBy", keyType: "GPGKeys", keyPaths: key.map((k) => k.keyring), ...extra }
    : { type: "signedBy", keyType: "GPGKeys", keyPath: key.keyring, ...extra };

beforeAll(async () => {
  mkdirSync(registriesD, { recursive: true });
  mkdirSync(policies);
  mkdirSync(join(daemonDir, "registries.conf.d"), { recursive: true });
  bb = await busyboxImage();
  digest = bb.manifestDigest;
  [keys.good, keys.other, keys.old, keys.revoked] = [
    await gpg.newKey("good"),
    await gpg.newKey("other"),
    await gpg.newKey("old", { fakeTime: "20200101T000000", expire: "1y" }),
    await gpg.newKey("revoked"),
  ];
  // upstream.invalid is only ever reached through its mirror, the test registry
  writeFileSync(
    join(daemonDir, "policy.json"),
    JSON.stringify({ default: [{ type: "insecureAcceptAnything" }], transports: { docker: { "upstream.invalid": [signedBy(keys.good)] } } }),
  );
  env = await startEnv({
    dir: daemonDir,
    logLevel: "info",
    env: { HOME: home },
    config: `signature_policy_dir = ${JSON.stringify(policies)}\n`,
  });
  host = env.reg.host;
  ext = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const u = new URL(req.url);
      const m = /^\/extensions\/v2\/(.+)\/signatures\/(sha256:[0-9a-f]{64})$/.exec(u.pathname);
      if (m) {
        const sigs = extSigs.get(m[1]!);
        if (!sigs) return new Response("{}", { status: 404 });
        return Response.json({
          signatures: sigs.map((c) => ({ schemaVersion: 2, type: "atomic", name: `${m[2]}@sig`, content: Buffer.from(c).toString("base64") })),
        });
      }
      const r = await fetch(`${env.reg.url}${u.pathname}${u.search}`, { method: req.method, headers: req.headers, redirect: "manual" });
      const headers = new Headers(r.headers);
      headers.delete("content-encoding");
      if (u.pathname === "/v2/") headers.set("x-registry-supports-signatures", "1");
      return new Response(r.body, { status: r.status, headers });
    },
  });
  extHost = `127.0.0.1:${ext.port}`;
  writeFileSync(
    join(daemonDir, "registries.conf.d", "mirror.conf"),
    `[[registry]]\nlocation = "upstream.invalid"\n[[registry.mirror]]\nlocation = "${host}"\ninsecure = true\n[[registry]]\nlocation = "${extHost}"\ninsecure = true\n`,
  );
  env.d.proc.kill("SIGHUP"); // the mirror's registries.conf.d drop-in needs the registry's port
  await env.d.waitForLog(/configuration reloaded/);
  web = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const path = decodeURIComponent(new URL(req.url).pathname);
      if (path.startsWith("/fail/")) return new Response("boom", { status: 500 });
      const f = Bun.file(join(lookaside, "http", path.replace(/^\/sigs\//, "")));
      return f.exists().then((ok) => (ok ? new Response(f) : new Response("not found", { status: 404 })));
    },
  });
  writeFileSync(
    join(registriesD, "web.yaml"),
    `docker:\n  ${host}/trust/http:\n    lookaside: http://127.0.0.1:${web.port}/sigs\n  ${host}/trust/httpfail:\n    lookaside: http://127.0.0.1:${web.port}/fail\n`,
  );
  writeFileSync(
    join(registriesD, "test.yaml"),
    `docker:\n  ${host}:\n    lookaside: file://${lookaside}\n    use-sigstore-attachments: true\n  ${host}/cosign/noattach:\n    use-sigstore-attachments: false\n  upstream.invalid:\n    lookaside: file://${join(lookaside, "upstream")}\n`,
  );
  // skopeo signs one image the way an operator would
  const s = join(env.reg.dir, "skopeo");
  const r = await runRaw(
    [
      "skopeo",
      "--policy",
      join(s, "policy.json"),
      "--registries.d",
      registriesD,
      "copy",
      "-q",
      "--preserve-digests",
      ...skopeoFlags(env.reg, "dest-"),
      "--sign-by",
      keys.good.fingerprint,
      `oci:${bb.layoutDir}:${bb.tag}`,
      `docker://${host}/trust/signed:latest`,
    ],
    { env: { ...gpg.env, CONTAINERS_REGISTRIES_CONF: join(s, "registries.conf"), TMPDIR: s }, timeoutMs: 120_000 },
  );
  if (r.code !== 0) throw new Error(`skopeo copy --sign-by failed: ${r.stderr}`);
  signed = { ...bb, name: "trust/signed", ref: `${host}/trust/signed:latest` };
  expect(existsSync(join(lookaside, "trust", "signed@" + digest.replace(":", "="), "signature-1"))).toBe(true);
  // the other repositories hold the same image; their signatures are made below
  const repos = [
    "unsigned",
    "otherdigest",
    "otherrepo",
    "expired",
    "revoked",
    "truncated",
    "garbage",
    "noise",
    "http",
    "httpfail",
    "ext",
    "ext-bad",
    "alias",
    "twosigs",
    "mirrored",
    "mirrored-bad",
  ];
  await Promise.all(repos.map((n) => pushImage(env.reg, bb, { name: `trust/${n}` })));
  const sig = (key: GpgKey, repo: string, d = digest, time?: string) => gpg.sign(key, simplePayload(`${host}/trust/${repo}:latest`, d), time);
  const put = (repo: string, data: Uint8Array, n = 1) => writeLookaside(lookaside, `trust/${repo}`, digest, n, data);
  put("otherdigest", await sig(keys.good, "otherdigest", `sha256:${"ab".repeat(32)}`));
  put("otherrepo", await gpg.sign(keys.good, simplePayload(`${host}/trust/elsewhere:latest`, digest)));
  put("expired", await sig(keys.old, "expired", digest, "20200601T000000"));
  put("revoked", await sig(keys.revoked, "revoked"));
  await gpg.revoke(keys.revoked);
  const whole = await sig(keys.good, "truncated");
  put("truncated", whole.subarray(0, Math.floor(whole.length / 2)));
  // garbage: not a signature at all (containers/image refuses to read it); noise: looks like an
  // OpenPGP message (compressed-data packet tag) but is not one
  put("garbage", Buffer.concat([Buffer.from([0x13]), randomBytes(400)]));
  put("noise", Buffer.concat([Buffer.from([0xa3, 0x01]), randomBytes(400)]));
  // twosigs: a signature by an untrusted key first, then a good one: one accepted signature is enough
  put("twosigs", await sig(keys.other, "twosigs"), 1);
  put("twosigs", await sig(keys.good, "twosigs"), 2);
  // alias: the signature names trust/signed (remapIdentity maps trust/alias onto it)
  copyFileSync(join(lookaside, "trust", "signed@" + digest.replace(":", "="), "signature-1"), put("alias", new Uint8Array()));
  writeLookaside(join(lookaside, "http"), "trust/http", digest, 1, await sig(keys.good, "http"));
  // served by the registry's signature extension (through the proxy)
  extSigs.set("trust/ext", [await gpg.sign(keys.good, simplePayload(`${extHost}/trust/ext:latest`, digest))]);
  extSigs.set("trust/ext-bad", [await gpg.sign(keys.good, simplePayload(`${host}/trust/ext-bad:latest`, digest))]);
  // through the mirror: signatures name the upstream image, and live in upstream's lookaside
  writeLookaside(
    join(lookaside, "upstream"),
    "trust/mirrored",
    digest,
    1,
    await gpg.sign(keys.good, simplePayload("upstream.invalid/trust/mirrored:latest", digest)),
  );
  writeLookaside(
    join(lookaside, "upstream"),
    "trust/mirrored-bad",
    digest,
    1,
    await gpg.sign(keys.good, simplePayload(`${host}/trust/mirrored-bad:latest`, digest)),
  );
}, 240_000);

afterAll(async () => {
  web?.stop(true);
  ext?.stop(true);
  await env?.[Symbol.asyncDispose]();
  tmp[Symbol.dispose]();
});

/** Runs one case: writes the namespace's policy, pulls as a pod of that namespace; returns [code, message]. */
async function pullAs(ns: string, policy: object, image: string): Promise<[number, string]> {
  writeFileSync(join(policies, `${ns}.json`), JSON.stringify(policy));
  const pod = podConfig("p", env.d.dir);
  const sandboxConfig = { ...pod, metadata: { ...pod.metadata!, namespace: ns } } as PodConfig;
  try {
    await env.d.cri.pullImage({ image: { image }, sandboxConfig });
    return [0, ""];
  } catch (e) {
    const x = e as { code: number; details: string };
    return [x.code, x.details];
  }
}

/** skopeo's verdict on the same image under the same policy and registries.d: true = accepted. */
async function skopeoAccepts(policy: object, image: string): Promise<boolean> {
  const file = join(tmp.path, `skopeo-policy-${randomBytes(4).toString("hex")}.json`);
  writeFileSync(file, JSON.stringify(policy));
  const out = join(tmp.path, `skopeo-out-${randomBytes(4).toString("hex")}`);
  const r = await runRaw(
    ["skopeo", "--policy", file, "--registries.d", registriesD, "copy", "-q", ...skopeoFlags(env.reg, "src-"), `docker://${image}`, `dir:${out}`],
    {
      env: { ...process.env, HOME: home, CONTAINERS_REGISTRIES_CONF: join(daemonDir, "registries.conf") } as Record<string, string>,
      timeoutMs: 120_000,
    },
  );
  if (r.code !== 0 && !/rejected|signature|Signature|not allowed|identity/i.test(r.stderr)) throw new Error(`skopeo failed for another reason: ${r.stderr}`);
  if (process.env.TRUST_DEBUG) console.error(image, r.stderr);
  return r.code === 0;
}

/** Images, layers and blobs of the daemon's store. */
function storeState(): { images: string[]; layers: string[]; blobs: string[] } {
  const store = join(env.d.root, "images");
  const list = (d: string) => (existsSync(join(store, d)) ? readdirSync(join(store, d)).sort() : []);
  const idx = existsSync(join(store, "images.json")) ? JSON.parse(readFileSync(join(store, "images.json"), "utf8")) : { images: {} };
  return { images: Object.keys(idx.images).sort(), layers: list("layers"), blobs: list(join("blobs", "sha256")) };
}

function storeIsEmpty(): boolean {
  const store = join(env.d.root, "images");
  const list = (d: string) => (existsSync(join(store, d)) ? readdirSync(join(store, d)) : []);
  const idx = existsSync(join(store, "images.json")) ? JSON.parse(readFileSync(join(store, "images.json"), "utf8")) : { images: {} };
  return Object.keys(idx.images).length === 0 && list("layers").length === 0 && list(join("blobs", "sha256")).length === 0;
}

const ref = (repo: string) => `${host}/trust/${repo}:latest`;

describe("signedBy (GPG keys, file:// and http:// lookaside)", () => {
  test("each bad signature is refused with FAILED_PRECONDITION naming image, scope and reason; nothing is stored; skopeo agrees", async () => {
    const cases: Array<[string, object[], string, RegExp]> = [
      ["unsigned", [signedBy(keys.good)], ref("unsigned"), /has none in its lookaside/],
      ["otherdigest", [signedBy(keys.good)], ref("otherdigest"), /signs manifest sha256:abab.*, not the image's sha256:/],
      [
        "otherrepo",
        [signedBy(keys.good)],
        ref("otherrepo"),
        /its identity ".*\/trust\/elsewhere:latest" does not match ".*\/trust\/otherrepo:latest" \(signedIdentity matchRepoDigestOrExact\)/,
      ],
      ["expired", [signedBy(keys.old)], ref("expired"), /is not valid now: .*expired/],
      ["revoked", [signedBy(keys.revoked)], ref("revoked"), /revoked/],
      ["truncated", [signedBy(keys.good)], ref("truncated"), /not an OpenPGP signed message|not valid/],
      [
        "garbage",
        [signedBy(keys.good)],
        ref("garbage"),
        /its signatures cannot be checked: signature file:.*signature-1 has an unrecognized format, starting with byte 0x13/,
      ],
      ["noise", [signedBy(keys.good)], ref("noise"), /its signature is not accepted: it is not an OpenPGP signed message|its OpenPGP signature is not valid/],
      ["wrongkey", [signedBy(keys.other)], signed.ref, /not among the trusted keys/],
      [
        "exactref",
        [signedBy(keys.good, { signedIdentity: { type: "exactReference", dockerReference: `${host}/trust/signed:v2` } })],
        signed.ref,
        /does not match ".*signed:v2" \(signedIdentity exactReference\)/,
      ],
      ["matchexact", [signedBy(keys.good, { signedIdentity: { type: "matchExact" } })], `${host}/trust/signed@${digest}`, /signedIdentity matchExact/],
      [
        "remapwrong",
        [signedBy(keys.good, { signedIdentity: { type: "remapIdentity", prefix: `${host}/trust/alias`, signedPrefix: `${host}/trust/other` } })],
        ref("alias"),
        /remapped from/,
      ],
      ["bothneeded", [signedBy(keys.good), signedBy(keys.other)], signed.ref, /not among the trusted keys/],
      [
        "httpfail",
        [signedBy(keys.good)],
        ref("httpfail"),
        /its signatures cannot be checked: signature http:\/\/127\.0\.0\.1:\d+\/fail\/trust\/httpfail@sha256=[0-9a-f]{64}\/signature-1: the registry answered 500/,
      ],
    ];
    for (const [ns, reqs, image, reason] of cases) {
      const policy = policyDoc(reqs);
      const [code, msg] = await pullAs(ns, policy, image);
      expect({ ns, code }).toEqual({ ns, code: grpc.FAILED_PRECONDITION });
      expect(msg).toContain(`image "${image}" is refused by the signature policy ${join(policies, `${ns}.json`)} (scope ${host}: signedBy): `);
      expect({ ns, msg }).toEqual({ ns, msg: expect.stringMatching(reason) });
      expect({ ns, skopeo: await skopeoAccepts(policy, image) }).toEqual({ ns, skopeo: false });
    }
    const [c, m] = await pullAs("baselayer", policyDoc([{ type: "signedBaseLayer", baseLayerIdentity: { type: "matchRepository" } }]), signed.ref);
    expect([c, m]).toEqual([grpc.FAILED_PRECONDITION, expect.stringMatching(/signedBaseLayer cannot be satisfied/)]);
    // reject is unchanged: PERMISSION_DENIED before anything is fetched
    const [rc, rm] = await pullAs("rejected", policyDoc([{ type: "reject" }]), signed.ref);
    expect([rc, rm]).toEqual([grpc.PERMISSION_DENIED, expect.stringMatching(/is rejected by the signature policy/)]);
    // the registry's signature extension: a signature for another name is refused (skopeo agrees)
    const extPolicy = policyDoc([signedBy(keys.good)], extHost);
    const [ec, em] = await pullAs("extbad", extPolicy, `${extHost}/trust/ext-bad:latest`);
    expect([ec, em]).toEqual([grpc.FAILED_PRECONDITION, expect.stringMatching(/identity ".*\/trust\/ext-bad:latest" does not match/)]);
    expect(await skopeoAccepts(extPolicy, `${extHost}/trust/ext-bad:latest`)).toBe(false);
    // a signature through the mirror that names the mirror, not the upstream name, is refused
    const [mc, mm] = await pullAs("mirrorbad", policyDoc([signedBy(keys.good)], "upstream.invalid"), "upstream.invalid/trust/mirrored-bad:latest");
    expect([mc, mm]).toEqual([
      grpc.FAILED_PRECONDITION,
      expect.stringMatching(/identity ".*trust\/mirrored-bad:latest" does not match "upstream\.invalid\/trust\/mirrored-bad:latest"/),
    ]);
    expect(storeIsEmpty()).toBe(true);
  }, 240_000);

  test("good signatures are accepted under each identity rule and key form; skopeo agrees", async () => {
    const armored = await gpg.gpg(["--armor", "--export", keys.good.fingerprint]);
    const cases: Array<[string, object[], string]> = [
      ["keypath", [signedBy(keys.good)], signed.ref],
      ["keypaths", [signedBy([keys.other, keys.good])], signed.ref],
      ["keydata", [{ type: "signedBy", keyType: "GPGKeys", keyData: Buffer.from(armored).toString("base64") }], signed.ref],
      ["bydigest", [signedBy(keys.good)], `${host}/trust/signed@${digest}`],
      ["exactrepo", [signedBy(keys.good, { signedIdentity: { type: "exactRepository", dockerRepository: `${host}/trust/elsewhere` } })], ref("otherrepo")],
      ["matchrepo", [signedBy(keys.good, { signedIdentity: { type: "matchRepository" } })], `${host}/trust/signed:other-tag-no-sig`],
      [
        "remap",
        [signedBy(keys.good, { signedIdentity: { type: "remapIdentity", prefix: `${host}/trust/alias`, signedPrefix: `${host}/trust/signed` } })],
        ref("alias"),
      ],
      ["twosigs", [signedBy(keys.good)], ref("twosigs")],
      ["http", [signedBy(keys.good)], ref("http")],
      ["anything", [{ type: "insecureAcceptAnything" }], ref("unsigned")],
    ];
    // matchRepository: a tag that was never signed still carries the repository's signature (same digest)
    await pushImage(env.reg, bb, { name: "trust/signed", tag: "other-tag-no-sig" });
    for (const [ns, reqs, image] of cases) {
      const policy = policyDoc(reqs);
      expect({ ns, r: await pullAs(ns, policy, image) }).toEqual({ ns, r: [0, ""] });
      if (ns !== "anything") expect({ ns, skopeo: await skopeoAccepts(policy, image) }).toEqual({ ns, skopeo: true });
    }
    // signatures served by the registry's extension API
    const extPolicy = policyDoc([signedBy(keys.good)], extHost);
    expect(await pullAs("extok", extPolicy, `${extHost}/trust/ext:latest`)).toEqual([0, ""]);
    expect(await skopeoAccepts(extPolicy, `${extHost}/trust/ext:latest`)).toBe(true);
    // through the mirror, verified against the name as written
    expect(await pullAs("mirrorok", policyDoc([signedBy(keys.good)], "upstream.invalid"), "upstream.invalid/trust/mirrored:latest")).toEqual([0, ""]);
    expect((await env.d.cri.imageStatus({ image: { image: signed.ref } })).image?.id).toBe(bb.imageId);
    expect(storeIsEmpty()).toBe(false); // the check above can fail
  }, 240_000);
});

describe("the same policy elsewhere", () => {
  test("crio pull applies the global policy and prints the same reason (exit 1, nothing stored)", async () => {
    const pull = async (image: string) => {
      const p = Bun.spawn([CRIO, "--config", env.d.configFile, "--config-dir", env.d.configDir, "pull", image], {
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
        env: { PATH: process.env.PATH!, HOME: home },
      });
      const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
      return { code, last: err.trim().split("\n").at(-1) ?? "" };
    };
    const bad = await pull("upstream.invalid/trust/mirrored-bad:latest");
    const why = `its signature is not accepted: its identity "${host}/trust/mirrored-bad:latest" does not match "upstream.invalid/trust/mirrored-bad:latest" (signedIdentity matchRepoDigestOrExact)`;
    expect(bad).toEqual({
      code: 1,
      last: `crio pull: image "upstream.invalid/trust/mirrored-bad:latest" is refused by the signature policy ${join(daemonDir, "policy.json")} (scope upstream.invalid: signedBy): ${why}`,
    });
    expect((await env.d.cri.imageStatus({ image: { image: "upstream.invalid/trust/mirrored-bad:latest" } })).image).toBeUndefined();
    expect(await pull("upstream.invalid/trust/mirrored:latest")).toEqual({ code: 0, last: expect.any(String) });
  }, 120_000);

  test("CreateContainer verifies the stored image again under the pod namespace's policy", async () => {
    const tryCreate = async (ns: string, policy: object) => {
      writeFileSync(join(policies, `${ns}.json`), JSON.stringify(policy));
      const p = podConfig(`c-${ns}`, env.d.dir);
      const pod = { ...p, metadata: { ...p.metadata!, namespace: ns } } as PodConfig;
      const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
      const r = await env.d.cri.createContainer({ podSandboxId, config: ctrConfig("c", signed.ref, ["sleep", "60"], {}, pod), sandboxConfig: pod }).then(
        () => [0, ""],
        (e: { code: number; details: string }) => [e.code, e.details],
      );
      const left = (await env.d.cri.listContainers({ filter: { podSandboxId } })).containers.length;
      await env.d.cri.stopPodSandbox({ podSandboxId });
      await env.d.cri.removePodSandbox({ podSandboxId });
      return [...r, left];
    };
    expect(await tryCreate("create-wrongkey", policyDoc([signedBy(keys.other)]))).toEqual([
      grpc.FAILED_PRECONDITION,
      expect.stringMatching(/is refused by the signature policy .*create-wrongkey\.json .*not among the trusted keys/),
      0,
    ]);
    expect(await tryCreate("create-ok", policyDoc([signedBy(keys.good)]))).toEqual([0, "", 1]);
  }, 120_000);

  test("SIGHUP re-reads registries.d and policy.json", async () => {
    const file = join(registriesD, "test.yaml");
    const saved = readFileSync(file, "utf8");
    const reload = async () => {
      const n = (env.d.logs().match(/configuration reloaded/g) ?? []).length;
      env.d.proc.kill("SIGHUP");
      await waitFor(() => (env.d.logs().match(/configuration reloaded/g) ?? []).length > n, 20_000, "reload");
    };
    try {
      writeFileSync(file, `docker:\n  ${host}:\n    lookaside: file://${join(tmp.path, "empty-lookaside")}\n`);
      await reload();
      const [code, msg] = await pullAs("hup", policyDoc([signedBy(keys.good)]), signed.ref);
      expect([code, msg]).toEqual([grpc.FAILED_PRECONDITION, expect.stringMatching(/has none in its lookaside/)]);
    } finally {
      writeFileSync(file, saved);
      await reload();
    }
    expect(await pullAs("hup", policyDoc([signedBy(keys.good)]), signed.ref)).toEqual([0, ""]);
    // a malformed registries.d file refuses signed pulls, naming the file
    const broken = join(registriesD, "zz-broken.yaml");
    try {
      writeFileSync(broken, "docker: [unclosed\n");
      await reload();
      const [code, msg] = await pullAs("hup", policyDoc([signedBy(keys.good)]), signed.ref);
      expect([code, msg]).toEqual([
        grpc.FAILED_PRECONDITION,
        expect.stringContaining(`its signatures cannot be checked: registries.d file ${broken}: invalid YAML`),
      ]);
    } finally {
      rmSync(broken, { force: true });
      await reload();
    }
    // the global policy: upstream.invalid now needs the other key
    const global = join(daemonDir, "policy.json");
    const savedPolicy = readFileSync(global, "utf8");
    const mirrored = "upstream.invalid/trust/mirrored:latest";
    const pullGlobal = () =>
      env.d.cri.pullImage({ image: { image: mirrored } }).then(
        () => [0, ""],
        (e: { code: number; details: string }) => [e.code, e.details],
      );
    expect(await pullGlobal()).toEqual([0, ""]);
    try {
      writeFileSync(
        global,
        JSON.stringify({ default: [{ type: "insecureAcceptAnything" }], transports: { docker: { "upstream.invalid": [signedBy(keys.other)] } } }),
      );
      await reload();
      expect(await pullGlobal()).toEqual([grpc.FAILED_PRECONDITION, expect.stringMatching(/not among the trusted keys/)]);
    } finally {
      writeFileSync(global, savedPolicy);
      await reload();
    }
    expect(await pullGlobal()).toEqual([0, ""]);
  }, 120_000);
});

describe("sigstoreSigned (cosign public keys, attachments)", () => {
  const cosign = { good: cosignKeyPair(), other: cosignKeyPair() };
  const pem = (k: { publicPem: string }, name: string) => {
    const f = join(tmp.path, `${name}.pub`);
    writeFileSync(f, k.publicPem);
    return f;
  };
  const sigstore = (keyPath: string, extra: object = {}) => ({ type: "sigstoreSigned", keyPath, ...extra });
  const cref = (repo: string) => `${host}/cosign/${repo}:latest`;
  let goodPub: string;
  let otherPub: string;

  beforeAll(async () => {
    goodPub = pem(cosign.good, "cosign");
    otherPub = pem(cosign.other, "other-cosign");
    const repos = ["signed", "unsigned", "otherdigest", "otherrepo", "truncated", "garbage", "badpayload", "two", "noattach"];
    await Promise.all(repos.map((n) => pushImage(env.reg, bb, { name: `cosign/${n}` })));
    const attach = (repo: string, layers: Array<{ payload: string; signature: string }>) => pushCosignAttachment(env.reg, `cosign/${repo}`, digest, layers);
    const signedLayer = (repo: string, key = cosign.good.privateKey, p = cosignPayload(cref(repo), digest)) => ({ payload: p, signature: cosignSign(key, p) });
    await attach("signed", [signedLayer("signed")]);
    await attach("noattach", [signedLayer("noattach")]);
    await attach("otherdigest", [signedLayer("otherdigest", undefined, cosignPayload(cref("otherdigest"), `sha256:${"cd".repeat(32)}`))]);
    await attach("otherrepo", [signedLayer("otherrepo", undefined, cosignPayload(cref("elsewhere"), digest))]);
    const good = signedLayer("truncated");
    await attach("truncated", [{ payload: good.payload, signature: good.signature.slice(0, 40) }]);
    await attach("garbage", [{ payload: good.payload, signature: randomBytes(70).toString("base64") }]);
    const extra = JSON.stringify({
      critical: {
        identity: { "docker-reference": cref("badpayload") },
        image: { "docker-manifest-digest": digest },
        type: "cosign container image signature",
        extra: 1,
      },
      optional: null,
    });
    await attach("badpayload", [{ payload: extra, signature: cosignSign(cosign.good.privateKey, extra) }]);
    await attach("two", [signedLayer("two", cosign.other.privateKey), signedLayer("two")]);
  }, 120_000);

  test("bad signatures are refused with nothing stored for the image", async () => {
    // the pause image of the pods above stays; the busybox image goes
    await env.d.cri.removeImage({ image: { image: bb.imageId } });
    const before = storeState();
    expect(before.images).not.toContain(bb.imageId);
    expect(before.blobs).not.toContain(digest.slice("sha256:".length));
    const cases: Array<[string, object[], string, RegExp]> = [
      ["cs-unsigned", [sigstore(goodPub)], cref("unsigned"), /has no sigstore signature attached/],
      ["cs-noattach", [sigstore(goodPub)], cref("noattach"), /has no sigstore signature attached/],
      ["cs-otherdigest", [sigstore(goodPub)], cref("otherdigest"), /signs manifest sha256:cdcd.*, not the image's sha256:/],
      ["cs-otherrepo", [sigstore(goodPub)], cref("otherrepo"), /identity ".*\/cosign\/elsewhere:latest" does not match/],
      ["cs-truncated", [sigstore(goodPub)], cref("truncated"), /does not verify with the trusted public key/],
      ["cs-garbage", [sigstore(goodPub)], cref("garbage"), /does not verify with the trusted public key/],
      ["cs-badpayload", [sigstore(goodPub)], cref("badpayload"), /critical has an unexpected member "extra"/],
      ["cs-wrongkey", [sigstore(otherPub)], cref("signed"), /does not verify with the trusted public key/],
      [
        "cs-exactref",
        [sigstore(goodPub, { signedIdentity: { type: "exactReference", dockerReference: cref("x") } })],
        cref("signed"),
        /signedIdentity exactReference/,
      ],
      ["cs-notkey", [sigstore(keys.good.keyring)], cref("signed"), /holds no PEM public key/],
    ];
    for (const [ns, reqs, image, reason] of cases) {
      const [code, msg] = await pullAs(ns, policyDoc(reqs), image);
      expect({ ns, code }).toEqual({ ns, code: grpc.FAILED_PRECONDITION });
      expect(msg).toContain(`image "${image}" is refused by the signature policy ${join(policies, `${ns}.json`)} (scope ${host}: sigstoreSigned): `);
      expect({ ns, msg }).toEqual({ ns, msg: expect.stringMatching(reason) });
    }
    expect(storeState()).toEqual(before);
  }, 120_000);

  test("good signatures are accepted: keyPath, keyPaths, keyData, by digest, one good among several", async () => {
    const cases: Array<[string, object[], string]> = [
      ["cs-keypath", [sigstore(goodPub)], cref("signed")],
      ["cs-keypaths", [{ type: "sigstoreSigned", keyPaths: [otherPub, goodPub] }], cref("signed")],
      ["cs-keydata", [{ type: "sigstoreSigned", keyData: Buffer.from(cosign.good.publicPem).toString("base64") }], cref("signed")],
      ["cs-digest", [sigstore(goodPub)], `${host}/cosign/signed@${digest}`],
      ["cs-two", [sigstore(goodPub)], cref("two")],
      ["cs-both", [sigstore(goodPub), signedBy(keys.good, { signedIdentity: { type: "exactReference", dockerReference: signed.ref } })], cref("signed")],
    ];
    // cs-both: a GPG requirement too, met by trust/signed's lookaside signature copied to cosign/signed
    const from = join(lookaside, "trust", "signed@" + digest.replace(":", "="), "signature-1");
    copyFileSync(from, writeLookaside(lookaside, "cosign/signed", digest, 1, new Uint8Array()));
    for (const [ns, reqs, image] of cases) expect({ ns, r: await pullAs(ns, policyDoc(reqs), image) }).toEqual({ ns, r: [0, ""] });
    expect(storeState().images).toContain(bb.imageId);
  }, 120_000);
});

describe("sigstoreSigned with Rekor, and keyless (Fulcio + Rekor)", () => {
  const key = cosignKeyPair();
  const rekor = cosignKeyPair();
  const otherRekor = cosignKeyPair();
  const ISSUER = "https://oidc.crio.test";
  const EMAIL = "signer@crio.test";
  const kref = (repo: string) => `${host}/keyless/${repo}:latest`;
  let files: { key: string; rekor: string; ca: string };
  const withRekor = (extra: object = {}) => ({ type: "sigstoreSigned", keyPath: files.key, rekorPublicKeyPath: files.rekor, ...extra });
  const keyless = (f: object = {}) => ({
    type: "sigstoreSigned",
    fulcio: { caPath: files.ca, oidcIssuer: ISSUER, subjectEmail: EMAIL, ...f },
    rekorPublicKeyPath: files.rekor,
  });

  beforeAll(async () => {
    const fulcio = await TestFulcio.create(join(tmp.path, "fulcio"));
    files = { key: join(tmp.path, "rk-cosign.pub"), rekor: join(tmp.path, "rekor.pub"), ca: join(tmp.path, "fulcio-ca.pem") };
    writeFileSync(files.key, key.publicPem);
    writeFileSync(files.rekor, rekor.publicPem);
    writeFileSync(files.ca, fulcio.caPem);
    const repos = ["rekor", "rekor-nobundle", "rekor-otherlog", "rekor-otherpayload", "fulcio", "fulcio-late", "fulcio-otherca", "fulcio-nochain"];
    await Promise.all(repos.map((n) => pushImage(env.reg, bb, { name: `keyless/${n}` })));
    const attach = (repo: string, payload: string, signature: string, annotations: Record<string, string>) =>
      pushCosignAttachment(env.reg, `keyless/${repo}`, digest, [{ payload, signature, annotations }]);
    // with a public key, and the Rekor bundle of the signature
    for (const repo of ["rekor", "rekor-nobundle", "rekor-otherlog", "rekor-otherpayload"]) {
      const payload = cosignPayload(kref(repo), digest);
      const signature = cosignSign(key.privateKey, payload);
      const bundleFor = { keyOrCertPem: key.publicPem, signature, payload: repo === "rekor-otherpayload" ? "another payload" : payload };
      const bundle: Record<string, string> =
        repo === "rekor-nobundle"
          ? {}
          : { "dev.sigstore.cosign/bundle": rekorBundle(repo === "rekor-otherlog" ? otherRekor.privateKey : rekor.privateKey, bundleFor) };
      await attach(repo, payload, signature, bundle);
    }
    // keyless: a Fulcio-style certificate for the signing key, its chain, and the Rekor bundle
    const good = await fulcio.leaf("good", EMAIL, ISSUER);
    const stranger = await fulcio.leaf("stranger", EMAIL, ISSUER, { selfSigned: true });
    const keylessSig = async (
      repo: string,
      leaf: { certPem: string; privateKey: import("node:crypto").KeyObject },
      o: { integratedTime?: number; chain?: boolean } = {},
    ) => {
      const payload = cosignPayload(kref(repo), digest);
      const signature = cosignSign(leaf.privateKey, payload);
      const annotations: Record<string, string> = {
        "dev.sigstore.cosign/certificate": leaf.certPem,
        "dev.sigstore.cosign/bundle": rekorBundle(rekor.privateKey, { keyOrCertPem: leaf.certPem, signature, payload, integratedTime: o.integratedTime }),
      };
      if (o.chain !== false) annotations["dev.sigstore.cosign/chain"] = fulcio.chainPem;
      await attach(repo, payload, signature, annotations);
    };
    await keylessSig("fulcio", good);
    await keylessSig("fulcio-late", good, { integratedTime: Math.floor(Date.now() / 1000) - 3 * 86400 });
    await keylessSig("fulcio-otherca", stranger);
    await keylessSig("fulcio-nochain", good, { chain: false });
  }, 120_000);

  test("refused: missing, foreign or mismatched Rekor bundles; certificates of another CA, time, issuer or email", async () => {
    await env.d.cri.removeImage({ image: { image: bb.imageId } }).catch(() => {});
    const before = storeState();
    const cases: Array<[string, object[], string, RegExp]> = [
      ["rk-nobundle", [withRekor()], kref("rekor-nobundle"), /no dev\.sigstore\.cosign\/bundle annotation/],
      ["rk-otherlog", [withRekor()], kref("rekor-otherlog"), /SignedEntryTimestamp does not verify with the trusted Rekor key/],
      ["rk-otherpayload", [withRekor()], kref("rekor-otherpayload"), /payload hash in its Rekor entry does not match/],
      ["fc-late", [keyless()], kref("fulcio-late"), /is not valid at the Rekor time/],
      ["fc-otherca", [keyless()], kref("fulcio-otherca"), /does not chain to the trusted Fulcio CA/],
      ["fc-nochain", [keyless()], kref("fulcio-nochain"), /does not chain to the trusted Fulcio CA/],
      [
        "fc-issuer",
        [keyless({ oidcIssuer: "https://other.issuer" })],
        kref("fulcio"),
        /OIDC issuer is "https:\/\/oidc\.crio\.test", not "https:\/\/other\.issuer"/,
      ],
      ["fc-email", [keyless({ subjectEmail: "someone@else" })], kref("fulcio"), /is for signer@crio\.test, not someone@else/],
      ["fc-nokey", [{ ...keyless(), rekorPublicKeyPath: files.key }], kref("fulcio"), /SignedEntryTimestamp does not verify/],
      ["fc-keyonly", [withRekor()], kref("fulcio"), /signature does not verify with the trusted public key/],
    ];
    for (const [ns, reqs, image, reason] of cases) {
      const [code, msg] = await pullAs(ns, policyDoc(reqs), image);
      expect({ ns, code }).toEqual({ ns, code: grpc.FAILED_PRECONDITION });
      expect({ ns, msg }).toEqual({ ns, msg: expect.stringMatching(reason) });
    }
    expect(storeState()).toEqual(before);
  }, 120_000);

  test("accepted: a public key with its Rekor bundle; a Fulcio certificate with chain and Rekor bundle", async () => {
    expect(await pullAs("rk-ok", policyDoc([withRekor()]), kref("rekor"))).toEqual([0, ""]);
    expect(await pullAs("fc-ok", policyDoc([keyless()]), kref("fulcio"))).toEqual([0, ""]);
    const caData = Buffer.from(readFileSync(files.ca)).toString("base64");
    const rekorData = Buffer.from(rekor.publicPem).toString("base64");
    expect(
      await pullAs(
        "fc-data",
        policyDoc([{ type: "sigstoreSigned", fulcio: { caData, oidcIssuer: ISSUER, subjectEmail: EMAIL }, rekorPublicKeyData: rekorData }]),
        kref("fulcio"),
      ),
    ).toEqual([0, ""]);
  }, 120_000);
});
