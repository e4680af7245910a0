// crio.conf keys of issue #16 on the compiled daemon with real runc: each non-default value does
// what CRI-O does with it. One daemon carries the container-side keys (container_attach_socket_dir,
// container_exits_dir, namespaces_dir, timezone, default_mounts_file, bind_mount_prefix,
// absent_mount_sources_to_reject); keys that act at start or stop get daemons of their own.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, watch, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CRIO, removeDaemonDirs, startDaemon, tempDir, waitFor, type TestDaemon } from "../harness.ts";
import { PodSandboxState } from "../../src/gen/runtime/v1/api_pb.ts";
import { ctrConfig, podConfig, startEnv, type CtrConfig, type Env, type PodConfig } from "../support/pods.ts";
import { busyboxImage, imageRef, pauseImage, pushImage } from "../support/images.ts";
import { startRegistry } from "../support/registry.ts";

const files = tempDir("crio-opts-");
// sockets live below the attach dir: keep it short (paths under 108 bytes), under /run
const short = `/run/cao-${randomBytes(3).toString("hex")}`;
const P = {
  attach: join(short, "attach"),
  exits: join(files.path, "exits-here"),
  ns: join(short, "pins"),
  prefix: join(files.path, "prefix"),
  secretSrc: join(files.path, "secret-src"),
  mountsConf: join(files.path, "mounts.conf"),
  cniBin: join(files.path, "cni-bin"),
  cniRecord: join(files.path, "cni-record"),
};
/** A CNI plugin (run by the test's bun) that records each request's config and passes prevResult on. */
const RECORDER = `#!${process.execPath}
const conf = JSON.parse(await Bun.stdin.text());
require("node:fs").appendFileSync(${JSON.stringify(join(files.path, "cni-record"))}, JSON.stringify({ cmd: process.env.CNI_COMMAND, runtimeConfig: conf.runtimeConfig ?? null }) + "\\n");
if (process.env.CNI_COMMAND === "VERSION") console.log(JSON.stringify({ cniVersion: "1.0.0", supportedVersions: ["1.0.0"] }));
else if (process.env.CNI_COMMAND === "ADD") console.log(JSON.stringify(conf.prevResult));
`;
const RECORDED_NET = JSON.stringify({
  cniVersion: "1.0.0",
  name: "opts-rec",
  plugins: [{ type: "loopback" }, { type: "recorder", capabilities: { portMappings: true } }],
});
/** Runroots of daemons started on directories of this file (startDaemon leaves those to the caller). */
const ownRunroots = new Set<string>();
const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

let env: Env;
beforeAll(async () => {
  mkdirSync(join(P.prefix, "data"), { recursive: true });
  writeFileSync(join(P.prefix, "data", "marker"), "from-the-prefix\n");
  mkdirSync(P.secretSrc, { recursive: true });
  writeFileSync(join(P.secretSrc, "token"), "s3cret\n");
  writeFileSync(P.mountsConf, `# default mounts\n\n${P.secretSrc}:/run/secrets/test\n${join(files.path, "missing")}:/run/secrets/missing\n`);
  mkdirSync(P.cniBin, { recursive: true });
  writeFileSync(join(P.cniBin, "recorder"), RECORDER, { mode: 0o755 });
  env = await startEnv({
    cniConf: RECORDED_NET,
    config: [
      "[crio]",
      `storage_option = ["overlay.mountopt=nodev,noatime"]`,
      "[crio.network]",
      `plugin_dirs = [${JSON.stringify(P.cniBin)}, "/usr/lib/cni", "/opt/cni/bin"]`,
      "[crio.runtime]",
      "disable_hostport_mapping = true",
      `default_env = ["OPT_ENV=from-config"]`,
      `default_sysctls = ["kernel.msgmax=12345"]`,
      "log_size_max = 8192",
      `default_capabilities = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "KILL", "NET_RAW"]`,
      `container_attach_socket_dir = ${JSON.stringify(P.attach)}`,
      `container_exits_dir = ${JSON.stringify(P.exits)}`,
      `namespaces_dir = ${JSON.stringify(P.ns)}`,
      `timezone = "Asia/Tokyo"`,
      `default_mounts_file = ${JSON.stringify(P.mountsConf)}`,
      `bind_mount_prefix = ${JSON.stringify(P.prefix)}`,
      `absent_mount_sources_to_reject = [${JSON.stringify(join(P.prefix, "absent"))}]`,
      "[crio.runtime.runtimes.runc]",
      `monitor_env = ["OPT_MONITOR=yes"]`,
      "",
    ].join("\n"),
  });
  await env.d.cri.pullImage({ image: { image: env.busybox } });
}, 120_000);
afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
  for (const r of ownRunroots) removeDaemonDirs(files.path, r);
  for (const l of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const m = l.split(" ")[4] ?? "";
    if (m.startsWith(short + "/")) Bun.spawnSync(["umount", "-l", m]);
  }
  rmSync(short, { recursive: true, force: true });
  files[Symbol.dispose]();
});

/** Remembers a daemon's runroot for afterAll. */
async function track(p: Promise<TestDaemon>): Promise<TestDaemon> {
  const d = await p;
  ownRunroots.add(d.runroot);
  return d;
}

const dec = new TextDecoder();
let seq = 0;

async function running(extra: Partial<CtrConfig> = {}, o: { pod?: boolean } = {}) {
  const name = `opt${++seq}`;
  const pod = podConfig(name, env.d.dir, { hostNetwork: !o.pod });
  const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
  const { containerId } = await env.d.cri.createContainer({
    podSandboxId,
    config: ctrConfig(name, env.busybox, ["sleep", "3600"], extra, pod),
    sandboxConfig: pod,
  });
  await env.d.cri.startContainer({ containerId });
  const exec = async (c: string) => {
    const r = await env.d.cri.execSync({ containerId, cmd: ["sh", "-c", c], timeout: 20n });
    return { out: dec.decode(r.stdout).trim(), err: dec.decode(r.stderr).trim(), code: r.exitCode };
  };
  return { podSandboxId, containerId, exec };
}

describe("where the runtime's files live", () => {
  test("container_attach_socket_dir holds <dir>/<id>/attach; container_exits_dir holds <dir>/<id>; namespaces_dir holds <dir>/{net,ipc,uts}ns/<pod id>", async () => {
    const c = await running({}, { pod: false });
    // a pod with its own network, IPC and UTS namespaces
    const name = `opt${++seq}`;
    const pod = podConfig(name, env.d.dir, { hostNetwork: false });
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    for (const k of ["netns", "ipcns", "utsns"]) expect(readdirSync(join(P.ns, k))).toContain(podSandboxId);
    expect(statSync(join(P.attach, c.containerId, "attach")).isSocket()).toBe(true);
    expect(existsSync(join(env.d.runroot, "monitor", c.containerId))).toBe(false);
    await env.d.cri.stopContainer({ containerId: c.containerId, timeout: 0n });
    const code = await waitFor(() => existsSync(join(P.exits, c.containerId)) && readFileSync(join(P.exits, c.containerId), "utf8"));
    expect(Number(code)).toBe(137);
    expect(existsSync(join(env.d.runroot, "exits", c.containerId))).toBe(false);
    await env.d.cri.removePodSandbox({ podSandboxId });
    expect(readdirSync(join(P.ns, "ipcns"))).not.toContain(podSandboxId);
    await env.d.cri.removePodSandbox({ podSandboxId: c.podSandboxId });
  });
});

describe("disable_hostport_mapping", () => {
  test("the CNI chain is handed no port mappings (a daemon without the key, on its cni_default_network, hands them on)", async () => {
    const portMappings = [{ protocol: 0, containerPort: 80, hostPort: 18080 }];
    const podWithPorts = (d: TestDaemon, name: string) => ({ ...podConfig(name, d.dir, { hostNetwork: false }), portMappings }) as PodConfig;
    const added = () =>
      readFileSync(P.cniRecord, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { cmd: string; runtimeConfig: { portMappings?: unknown[] } | null })
        .filter((r) => r.cmd === "ADD");
    rmSync(P.cniRecord, { force: true });
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: podWithPorts(env.d, `opt${++seq}`) });
    expect(added().map((r) => r.runtimeConfig?.portMappings ?? [])).toEqual([[]]);
    await env.d.cri.removePodSandbox({ podSandboxId });

    rmSync(P.cniRecord, { force: true });
    mkdirSync(join(files.path, "plain", "cni", "net.d"), { recursive: true });
    writeFileSync(join(files.path, "plain", "cni", "net.d", "10-rec.conflist"), RECORDED_NET);
    // cni_default_network picks the recording network over one that sorts first
    writeFileSync(
      join(files.path, "plain", "cni", "net.d", "05-first.conflist"),
      JSON.stringify({ cniVersion: "1.0.0", name: "opts-first", plugins: [{ type: "loopback" }] }),
    );
    await using d = await track(
      startDaemon({
        dir: join(files.path, "plain"),
        config: `[crio.network]\ncni_default_network = "opts-rec"\nplugin_dirs = [${JSON.stringify(P.cniBin)}, "/usr/lib/cni", "/opt/cni/bin"]\n[crio.image]\npause_image = ${JSON.stringify(env.pause)}\n`,
      }),
    );
    const pod2 = await d.cri.runPodSandbox({ config: podWithPorts(d, `opt${++seq}`) });
    expect(added().map((r) => r.runtimeConfig?.portMappings)).toEqual([[{ hostPort: 18080, containerPort: 80, protocol: "tcp" }]]);
    await d.cri.removePodSandbox({ podSandboxId: pod2.podSandboxId });
  });
});

describe("storage_option", () => {
  test("overlay.mountopt options are on the container's root filesystem mount", async () => {
    const c = await running();
    const root = (await c.exec("awk '$5 == \"/\" {print $6, $9}' /proc/self/mountinfo")).out.split("\n").at(-1)!;
    expect(root.split(" ")[1]).toBe("overlay");
    expect(root.split(" ")[0]!.split(",")).toEqual(expect.arrayContaining(["nodev", "noatime"]));
    await env.d.cri.removePodSandbox({ podSandboxId: c.podSandboxId });
  });
});

describe("defaults for every container (keys proven here besides their own tests)", () => {
  test("default_env, default_sysctls, default_capabilities, log_dir (a pod without log_directory), monitor_env", async () => {
    const name = `opt${++seq}`;
    const pod = { ...podConfig(name, env.d.dir), logDirectory: "" } as PodConfig;
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    const { containerId } = await env.d.cri.createContainer({
      podSandboxId,
      config: ctrConfig(name, env.busybox, ["sh", "-c", "echo logged; sleep 3600"], {}, pod),
      sandboxConfig: pod,
    });
    await env.d.cri.startContainer({ containerId });
    const r = await env.d.cri.execSync({
      containerId,
      cmd: ["sh", "-c", "echo $OPT_ENV; cat /proc/sys/kernel/msgmax; sed -n 's/^CapEff:\\t//p' /proc/self/status"],
      timeout: 20n,
    });
    const [envOut, msgmax, capEff] = dec.decode(r.stdout).trim().split("\n");
    expect([envOut, msgmax]).toEqual(["from-config", "12345"]);
    // default_capabilities: CRI-O's nine plus NET_RAW (bit 13), nothing else
    const bits = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13];
    expect(BigInt(`0x${capEff}`)).toBe(bits.reduce((n, b) => n | (1n << BigInt(b)), 0n));
    // log_dir: the harness sets it to <dir>/logs
    const logFile = join(env.d.dir, "logs", podSandboxId, `${containerId}.log`);
    await waitFor(() => existsSync(logFile) && readFileSync(logFile, "utf8").includes("stdout F logged"));
    // monitor_env: the container's monitor runs with it
    const monitorPid = readFileSync(join(P.attach, containerId, "monitor.pid"), "utf8").trim();
    expect(readFileSync(`/proc/${monitorPid}/environ`, "utf8").split("\0")).toContain("OPT_MONITOR=yes");
    await env.d.cri.removePodSandbox({ podSandboxId });
  });
});

describe("log_size_max", () => {
  test("a container's log file never grows beyond it: the monitor starts it over", async () => {
    const name = `opt${++seq}`;
    const pod = podConfig(name, env.d.dir);
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    // 400 lines of 100 bytes, then a marker line
    const cmd = ["sh", "-c", "i=0; while [ $i -lt 400 ]; do printf '%099d\\n' $i; i=$((i+1)); done; echo the-end; sleep 3600"];
    const { containerId } = await env.d.cri.createContainer({ podSandboxId, config: ctrConfig(name, env.busybox, cmd, {}, pod), sandboxConfig: pod });
    await env.d.cri.startContainer({ containerId });
    const logFile = join(pod.logDirectory!, `${name}.log`);
    await waitFor(() => existsSync(logFile) && readFileSync(logFile, "utf8").includes("the-end"));
    expect(statSync(logFile).size).toBeLessThanOrEqual(8192);
    await env.d.cri.removePodSandbox({ podSandboxId });
  });
});

describe("timezone", () => {
  test("the container's /etc/localtime is the zone's file", async () => {
    const c = await running();
    const r = await c.exec("sha256sum /etc/localtime; date +%z");
    expect(r.out.split("\n")).toEqual([`${sha(readFileSync("/usr/share/zoneinfo/Asia/Tokyo"))}  /etc/localtime`, "+0900"]);
    await env.d.cri.removePodSandbox({ podSandboxId: c.podSandboxId });
  });
});

describe("mounts", () => {
  test("default_mounts_file: its sources are copied in at their destinations; a missing source is skipped", async () => {
    const c = await running();
    expect((await c.exec("cat /run/secrets/test/token; ls /run/secrets")).out.split("\n")).toEqual(["s3cret", "test"]);
    await env.d.cri.removePodSandbox({ podSandboxId: c.podSandboxId });
  });

  test("bind_mount_prefix is put in front of a mount's host path", async () => {
    const c = await running({ mounts: [{ hostPath: "/data", containerPath: "/mnt/data", readonly: true }] as never });
    expect((await c.exec("cat /mnt/data/marker")).out).toBe("from-the-prefix");
    await env.d.cri.removePodSandbox({ podSandboxId: c.podSandboxId });
  });

  test("absent_mount_sources_to_reject: a missing listed source fails CreateContainer and is not created; others are created", async () => {
    const name = `opt${++seq}`;
    const pod = podConfig(name, env.d.dir);
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
    const bad = ctrConfig(name, env.busybox, ["true"], { mounts: [{ hostPath: "/absent", containerPath: "/x" }] as never }, pod);
    const err = await env.d.cri.createContainer({ podSandboxId, config: bad, sandboxConfig: pod }, { timeoutMs: 15_000 }).then(
      () => undefined,
      (e) => e as Error,
    );
    if (!/cannot mount/.test(String(err))) console.log(env.d.logs().slice(-6000));
    expect(String(err)).toMatch(/cannot mount .*\/prefix\/absent: path does not exist/);
    expect(existsSync(join(P.prefix, "absent"))).toBe(false);
    const ok = ctrConfig(`${name}b`, env.busybox, ["true"], { mounts: [{ hostPath: "/created", containerPath: "/x" }] as never }, pod);
    await env.d.cri.createContainer({ podSandboxId, config: ok, sandboxConfig: pod });
    expect(statSync(join(P.prefix, "created")).isDirectory()).toBe(true);
    await env.d.cri.removePodSandbox({ podSandboxId });
  });
});

describe("tls_min_version", () => {
  test("the streaming server (stream_enable_tls with stream_tls_cert and stream_tls_key, on stream_port) refuses TLS 1.2 with VersionTLS13 and serves TLS 1.3; with stream_tls_ca only clients with a certificate", async () => {
    const tls = await import("node:tls");
    const key = join(files.path, "s.key");
    const cert = join(files.path, "s.pem");
    const r = Bun.spawnSync(
      ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"],
      { stderr: "pipe" },
    );
    expect(r.exitCode).toBe(0);
    // stream_port: a fixed free port (found by binding port 0 first)
    const fixed = await new Promise<number>((resolve) => {
      const srv = require("node:net")
        .createServer()
        .listen(0, "127.0.0.1", () => {
          const p = srv.address().port as number;
          srv.close(() => resolve(p));
        });
    });
    await using d = await startDaemon({
      config: `[crio.api]\nstream_port = "${fixed}"\nstream_enable_tls = true\nstream_tls_cert = ${JSON.stringify(cert)}\nstream_tls_key = ${JSON.stringify(key)}\ntls_min_version = "VersionTLS13"\n`,
    });
    const port = Number(/Streaming server listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(await d.waitForLog(/Streaming server listening/))![1]);
    expect(port).toBe(fixed);
    const hello = (maxVersion: "TLSv1.2" | "TLSv1.3") =>
      new Promise<string>((resolve) => {
        const s = tls.connect({ host: "127.0.0.1", port, maxVersion, rejectUnauthorized: false }, () => {
          resolve(s.getProtocol() ?? "");
          s.destroy();
        });
        s.on("error", (e) => resolve(`error: ${e.message}`));
      });
    expect(await hello("TLSv1.3")).toBe("TLSv1.3");
    expect(await hello("TLSv1.2")).toMatch(/^error: .*(protocol version|alert)/i);

    // stream_tls_ca: clients must present a certificate it signed (the self-signed one is its own CA)
    await using d2 = await startDaemon({
      config: `[crio.api]\nstream_enable_tls = true\nstream_tls_cert = ${JSON.stringify(cert)}\nstream_tls_key = ${JSON.stringify(key)}\nstream_tls_ca = ${JSON.stringify(cert)}\n`,
    });
    const port2 = Number(/Streaming server listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(await d2.waitForLog(/Streaming server listening/))![1]);
    const withCert = (client: boolean) =>
      new Promise<string>((resolve) => {
        const s = tls.connect(
          { host: "127.0.0.1", port: port2, rejectUnauthorized: false, ...(client ? { cert: readFileSync(cert), key: readFileSync(key) } : {}) },
          () => {
            s.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
          },
        );
        s.once("data", (b) => (resolve(`answered ${String(b).split("\r\n")[0]}`), s.destroy()));
        s.on("error", (e) => resolve(`error: ${e.message}`));
        s.on("close", () => resolve("closed"));
      });
    expect(await withCert(true)).toMatch(/^answered HTTP\/1\.1/);
    expect(await withCert(false)).toMatch(/^(error|closed)/);
  });
});

describe("keys that cannot apply here: conmon, conmon_env, pinns_path", () => {
  test("a non-default value logs one start-up warning naming the key and why; crio config --default says so", async () => {
    await using d = await startDaemon({
      config: `[crio.runtime]\nconmon = "/usr/bin/conmon"\nconmon_env = ["PATH=/opt/bin"]\npinns_path = "/usr/bin/pinns"\n`,
    });
    await d.waitForLog(/State recovery finished/);
    const lines = d
      .logs()
      .split("\n")
      .filter((l) => /has no effect/.test(l));
    expect(lines.map((l) => /config key \\?"([a-z._]+)\\?"/.exec(l)?.[1])).toEqual([
      "crio.runtime.pinns_path",
      "crio.runtime.conmon",
      "crio.runtime.conmon_env",
    ]);
    expect(lines[1]).toContain("monitor is built into this binary");
    expect(lines.every((l) => /level=warn/.test(l))).toBe(true);
    const out = Bun.spawnSync([CRIO, "config", "--default"]).stdout.toString();
    for (const key of ["conmon", "conmon_env", "pinns_path"]) {
      const block = new RegExp(`((?:#[^\\n]*\\n)+)${key} = `).exec(out)?.[1] ?? "";
      expect(block.replace(/\n# /g, " ")).toContain("Has no effect here:");
    }
  });
});

describe("registries", () => {
  test("insecure_registries (a CIDR) lets a plain-HTTP registry be pulled from; big_files_temporary_dir receives the layer blobs, and is left empty", async () => {
    await using reg = await startRegistry();
    await pushImage(reg, await busyboxImage());
    const big = join(files.path, "big");
    await using d = await startDaemon({ config: `[crio.image]\ninsecure_registries = ["127.0.0.0/8"]\nbig_files_temporary_dir = ${JSON.stringify(big)}\n` });
    expect(statSync(big).isDirectory()).toBe(true); // created at start
    const seen: string[] = [];
    const w = watch(big, (_e, f) => f && seen.push(f));
    try {
      await d.cri.pullImage({ image: { image: imageRef(reg, "busybox") } });
    } finally {
      w.close();
    }
    expect(seen.some((f) => /^\d+\.blob\.[a-z0-9]+$/.test(f))).toBe(true);
    expect(readdirSync(big)).toEqual([]);
  });

  test("without insecure_registries the same pull fails; HOST:PORT entries work too", async () => {
    await using reg = await startRegistry();
    await pushImage(reg, await busyboxImage());
    {
      await using d = await startDaemon();
      // HTTPS to a plain-HTTP registry: refused, or left hanging by the registry (cut short here)
      await expect(d.cri.pullImage({ image: { image: imageRef(reg, "busybox") } }, { timeoutMs: 5000 })).rejects.toThrow();
    }
    await using d = await startDaemon({ config: `[crio.image]\ninsecure_registries = [${JSON.stringify(reg.host)}]\n` });
    await d.cri.pullImage({ image: { image: imageRef(reg, "busybox") } });
  });

  test("auto_reload_registries: a new registries.conf.d drop-in (in the harness's registries_conf_dir) applies without SIGHUP", async () => {
    await using reg = await startRegistry();
    await pushImage(reg, await busyboxImage());
    await using d = await startDaemon({ config: `[crio.image]\nauto_reload_registries = true\n` });
    await expect(d.cri.pullImage({ image: { image: imageRef(reg, "busybox") } }, { timeoutMs: 5000 })).rejects.toThrow();
    mkdirSync(join(d.dir, "registries.conf.d"), { recursive: true });
    writeFileSync(join(d.dir, "registries.conf.d", "10-local.conf"), `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
    await d.waitForLog(/Registries configuration reloaded/);
    await d.cri.pullImage({ image: { image: imageRef(reg, "busybox") } });
    // a malformed change is logged and the previous configuration stays
    writeFileSync(join(d.dir, "registries.conf.d", "20-bad.conf"), "[[registry]\n");
    await d.waitForLog(/registries configuration reload failed/);
  });
});

describe("clean_shutdown_file, internal_repair, internal_wipe", () => {
  test("the marker is removed at start and written on a clean stop; after an unclean stop internal_repair removes damaged images (false: they stay)", async () => {
    await using reg = await startRegistry();
    await pushImage(reg, await busyboxImage());
    await pushImage(reg, await pauseImage());
    const dir = join(files.path, "repair");
    const marker = join(files.path, "marker", "clean.shutdown");
    const conf = (repair: boolean) =>
      `[crio]\nclean_shutdown_file = ${JSON.stringify(marker)}\ninternal_repair = ${repair}\n[crio.image]\ninsecure_registries = [${JSON.stringify(reg.host)}]\n`;
    const busybox = imageRef(reg, "busybox");
    const pause = imageRef(reg, "pause");
    const names = async (d: TestDaemon) => (await d.cri.listImages({})).images.flatMap((i) => i.repoTags).sort();
    mkdirSync(dir, { recursive: true });
    {
      await using d = await track(startDaemon({ dir, config: conf(true) }));
      expect([existsSync(marker), existsSync(`${marker}.supported`)]).toEqual([false, true]);
      await d.cri.pullImage({ image: { image: busybox } });
      await d.cri.pullImage({ image: { image: pause } });
      expect(await d.stop("SIGTERM")).toBe(0);
      expect(existsSync(marker)).toBe(true);
    }
    // damage busybox's config blob, then stop uncleanly: SIGKILL leaves no marker
    const idx = JSON.parse(readFileSync(join(dir, "root", "images", "images.json"), "utf8")) as { images: Record<string, { id: string; repoTags: string[] }> };
    const bb = Object.values(idx.images).find((i) => i.repoTags.includes(busybox))!;
    writeFileSync(join(dir, "root", "images", "blobs", "sha256", bb.id.slice(7)), "{}");
    {
      await using d = await track(startDaemon({ dir, config: conf(false) }));
      expect(existsSync(marker)).toBe(false);
      expect(await names(d)).toEqual([busybox, pause].sort()); // internal_repair = false: not checked
      expect(await d.stop("SIGKILL")).not.toBe(0);
    }
    expect(existsSync(marker)).toBe(false);
    {
      await using d = await track(startDaemon({ dir, config: conf(true) }));
      expect(await names(d)).toEqual([pause]);
      expect(d.logs()).toMatch(/the last stop was unclean/);
      expect(d.logs()).toMatch(new RegExp(`removed damaged image ${bb.id} \\(${busybox.replace(/[.]/g, "\\.")}\\): blob ${bb.id} does not match its digest`));
      await d.cri.pullImage({ image: { image: busybox } }); // pulled again whole
      expect(await names(d)).toEqual([busybox, pause].sort());
      expect(await d.stop("SIGTERM")).toBe(0);
    }
    {
      // after a clean stop the store is not checked
      await using d = await track(startDaemon({ dir, config: conf(true) }));
      expect(d.logs()).not.toMatch(/checking the image store/);
    }
  });

  test("internal_wipe: after a reboot (version_file gone) pods and containers are removed at start; internal_wipe = false keeps them NOTREADY", async () => {
    const runPod = async (e: Env, name: string) => {
      const pod = podConfig(name, e.d.dir);
      const { podSandboxId } = await e.d.cri.runPodSandbox({ config: pod });
      const { containerId } = await e.d.cri.createContainer({
        podSandboxId,
        config: ctrConfig(name, e.busybox, ["sleep", "3600"], {}, pod),
        sandboxConfig: pod,
      });
      await e.d.cri.startContainer({ containerId });
      return { podSandboxId, containerId };
    };
    for (const wipe of [true, false]) {
      await using e = await startEnv({ config: `[crio]\ninternal_wipe = ${wipe}\n` });
      await e.d.cri.pullImage({ image: { image: e.busybox } });
      const { podSandboxId, containerId } = await runPod(e, `wipe${wipe}`);
      expect(await e.d.stop()).toBe(0);
      // the reboot: processes gone, runroot (tmpfs) emptied, version_file (tmpfs in production) gone
      Bun.spawnSync(["runc", "--root", e.d.runcRoot, "kill", containerId, "KILL"]);
      await waitFor(() => !Bun.spawnSync(["runc", "--root", e.d.runcRoot, "state", containerId]).stdout.toString().includes('"running"'));
      Bun.spawnSync(["runc", "--root", e.d.runcRoot, "delete", "--force", containerId]);
      for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n").reverse()) {
        const mp = line.split(" ")[4];
        if (mp?.startsWith(e.d.runroot)) Bun.spawnSync(["umount", "-l", mp]);
      }
      rmSync(e.d.runroot, { recursive: true, force: true });
      rmSync(join(e.d.dir, "version"));
      await using d2 = await startDaemon({ dir: e.d.dir });
      const pods = (await d2.cri.listPodSandbox({})).items;
      if (wipe) {
        expect(pods).toEqual([]);
        expect((await d2.cri.listContainers({})).containers).toEqual([]);
        expect(d2.logs()).toMatch(/internal_wipe: removed 1 pods, 1 containers and 0 images/);
        expect((await d2.cri.listImages({})).images.length).toBeGreaterThan(0); // images stay (no upgrade)
      } else {
        expect(pods.map((p) => [p.id, p.state])).toEqual([[podSandboxId, PodSandboxState.SANDBOX_NOTREADY]]);
        await d2.cri.removePodSandbox({ podSandboxId });
      }
      await d2.stop();
    }
  });
});

describe("version_file_persist", () => {
  test("after an upgrade (both version files of an older major.minor) internal_wipe removes pods and images too", async () => {
    const vp = join(files.path, "version-persist");
    await using e = await startEnv({ config: `[crio]\nversion_file_persist = ${JSON.stringify(vp)}\n` });
    await e.d.cri.pullImage({ image: { image: e.busybox } });
    const pod = podConfig("upgraded", e.d.dir);
    await e.d.cri.runPodSandbox({ config: pod });
    expect(await e.d.stop()).toBe(0);
    expect(existsSync(vp)).toBe(true); // written by the daemon that served
    for (const f of [vp, join(e.d.dir, "version")]) writeFileSync(f, JSON.stringify("0.0.1"));
    await using d2 = await startDaemon({ dir: e.d.dir });
    expect((await d2.cri.listPodSandbox({})).items).toEqual([]);
    expect((await d2.cri.listImages({})).images.flatMap((i) => i.repoTags)).not.toContain(e.busybox);
    expect(d2.logs()).toMatch(/internal_wipe: .*version-persist.* says 0\.0\.1/);
    await d2.stop();
  });
});

describe("log_to_journald", () => {
  test("each log record reaches the journal socket (a datagram socket of the test's) with conmon's fields", async () => {
    const { dlopen, FFIType, ptr } = await import("bun:ffi");
    const libc = dlopen("libc.so.6", {
      socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
      bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
      recv: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64_fast },
      close: { args: [FFIType.i32], returns: FFIType.i32 },
    }).symbols;
    const path = join(short, "journal.sock");
    mkdirSync(short, { recursive: true });
    const fd = libc.socket(1, 2, 0); // AF_UNIX, SOCK_DGRAM
    const addr = new Uint8Array(110);
    addr[0] = 1;
    addr.set(new TextEncoder().encode(path), 2);
    expect(libc.bind(fd, ptr(addr), 110)).toBe(0);
    /** Received entries, each a field map (binary fields decoded). */
    const entries: Array<Record<string, string>> = [];
    const buf = new Uint8Array(65536);
    const drain = () => {
      for (let n = Number(libc.recv(fd, ptr(buf), buf.length, 0x40)); n > 0; n = Number(libc.recv(fd, ptr(buf), buf.length, 0x40))) {
        const e: Record<string, string> = {};
        let i = 0;
        const d = buf.subarray(0, n);
        while (i < d.length) {
          const nl = d.indexOf(10, i);
          const line = new TextDecoder().decode(d.subarray(i, nl));
          if (line.includes("=")) {
            e[line.slice(0, line.indexOf("="))] = line.slice(line.indexOf("=") + 1);
            i = nl + 1;
          } else {
            const len = Number(new DataView(d.buffer, d.byteOffset + nl + 1, 8).getBigUint64(0, true));
            e[line] = new TextDecoder().decode(d.subarray(nl + 9, nl + 9 + len));
            i = nl + 9 + len + 1;
          }
        }
        entries.push(e);
      }
    };
    try {
      await using e2 = await startEnv({ config: `[crio.runtime]\nlog_to_journald = true\n`, env: { CRIO_JOURNAL_SOCKET: path } });
      await e2.d.cri.pullImage({ image: { image: e2.busybox } });
      const pod = podConfig("journal", e2.d.dir);
      const { podSandboxId } = await e2.d.cri.runPodSandbox({ config: pod });
      const { containerId } = await e2.d.cri.createContainer({
        podSandboxId,
        config: ctrConfig("jctr", e2.busybox, ["sh", "-c", "echo to-stdout; echo to-stderr >&2"], {}, pod),
        sandboxConfig: pod,
      });
      await e2.d.cri.startContainer({ containerId });
      const got = await waitFor(() => {
        drain();
        return entries.length >= 2 && entries;
      });
      const pick = (m: string) => got.find((x) => x.MESSAGE === m);
      expect(pick("to-stdout")).toEqual({
        MESSAGE: "to-stdout",
        CONTAINER_ID_FULL: containerId,
        CONTAINER_ID: containerId.slice(0, 12),
        CONTAINER_NAME: expect.stringMatching(/^k8s_jctr_journal_default_/),
        SYSLOG_IDENTIFIER: "jctr",
        PRIORITY: "6",
      });
      expect(pick("to-stderr")?.PRIORITY).toBe("3");
      await e2.d.cri.removePodSandbox({ podSandboxId });
    } finally {
      libc.close(fd);
    }
  });
});

describe("wrong values", () => {
  test("a wrong value stops the daemon at start with the file, the key and the value named", async () => {
    const dir = join(files.path, "wrong");
    mkdirSync(dir, { recursive: true });
    const d = await track(startDaemon({ dir, noWait: true, config: `[crio.runtime]\ntimezone = "Mars/Olympus_Mons"\n` }));
    expect(await d.proc.exited).toBe(1);
    expect(d.logs().replaceAll(`\\"`, `"`)).toContain(
      `config file "${join(dir, "crio.conf.d", "00-test.conf")}": key "crio.runtime.timezone": value "Mars/Olympus_Mons" is not valid: expected "Local" or an IANA time zone name`,
    );
    await d[Symbol.asyncDispose]();
  });
});

describe("no_pivot, drop_infra_ctr", () => {
  test("containers are created with `runtime create --no-pivot` (seen by a runtime wrapper that logs its argv); drop_infra_ctr = false gives every pod an infra container, on infra_ctr_cpuset", async () => {
    const runc = Bun.which("runc") ?? "/usr/sbin/runc";
    const wrapper = join(files.path, "runc-wrapper");
    const argvLog = join(files.path, "runc-argv");
    writeFileSync(wrapper, `#!/bin/sh\necho "$*" >> ${argvLog}\nexec ${runc} "$@"\n`, { mode: 0o755 });
    await using e = await startEnv({
      config: `[crio.runtime]\nno_pivot = true\ndrop_infra_ctr = false\ninfra_ctr_cpuset = "0"\n[crio.runtime.runtimes.runc]\nruntime_path = ${JSON.stringify(wrapper)}\n`,
    });
    await e.d.cri.pullImage({ image: { image: e.busybox } });
    const pod = podConfig("nopivot", e.d.dir);
    const { podSandboxId } = await e.d.cri.runPodSandbox({ config: pod });
    const { containerId } = await e.d.cri.createContainer({ podSandboxId, config: ctrConfig("np", e.busybox, ["sleep", "3600"], {}, pod), sandboxConfig: pod });
    await e.d.cri.startContainer({ containerId });
    const create = readFileSync(argvLog, "utf8")
      .split("\n")
      .find((l) => / create .*\b/.test(l) && l.endsWith(containerId));
    expect(create).toContain("--no-pivot");
    // drop_infra_ctr = false: this pod (its own PID namespace per container) still gets an infra container
    const info = JSON.parse((await e.d.cri.podSandboxStatus({ podSandboxId, verbose: true })).info.info ?? "{}") as { pid?: number };
    expect(info.pid).toBeGreaterThan(0);
    // infra_ctr_cpuset: the infra container runs on CPU 0 only
    expect(/Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${info.pid}/status`, "utf8"))?.[1]).toBe("0");
    await e.d.cri.removePodSandbox({ podSandboxId });
  });
});

describe("addresses and sizes of the daemon's servers", () => {
  test("stream_address, metrics_host and grpc_max_recv_msg_size", async () => {
    await using d = await startDaemon({
      config: `[crio.api]\nstream_address = "127.0.0.2"\ngrpc_max_recv_msg_size = 4096\n[crio.metrics]\nenable_metrics = true\nmetrics_host = "127.0.0.3"\nmetrics_port = 0\n`,
    });
    expect(await d.waitForLog(/Streaming server listening on http:\/\/127\.0\.0\.2:\d+/)).toBeTruthy();
    const url = /(http:\/\/127\.0\.0\.3:\d+\/metrics)/.exec(await d.waitForLog(/Serving metrics on http:\/\/127\.0\.0\.3:\d+\/metrics/))![1]!;
    expect((await fetch(url)).status).toBe(200);
    // a request larger than grpc_max_recv_msg_size is refused (RESOURCE_EXHAUSTED = 8); a small one is served
    const big = await d.cri.imageStatus({ image: { image: `x/${"a".repeat(6000)}` } }).then(
      () => undefined,
      (e: { code?: number }) => e.code,
    );
    expect(big).toBe(8);
    expect((await d.cri.imageStatus({ image: { image: "busybox" } })).image).toBeUndefined();
  });
});

describe("more keys of the daemon", () => {
  test("metrics_cert and metrics_key: metrics over HTTPS", async () => {
    const key = join(files.path, "m.key");
    const cert = join(files.path, "m.pem");
    expect(
      Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"], {
        stderr: "pipe",
      }).exitCode,
    ).toBe(0);
    await using d = await startDaemon({
      config: `[crio.metrics]\nenable_metrics = true\nmetrics_port = 0\nmetrics_cert = ${JSON.stringify(cert)}\nmetrics_key = ${JSON.stringify(key)}\n`,
    });
    const url = /(https:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(await d.waitForLog(/Serving metrics on https:/))![1]!;
    const res = await fetch(url, { tls: { rejectUnauthorized: false } } as RequestInit);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("container_runtime_crio_");
  });

  test("signature_policy: a policy that rejects everything refuses the pull", async () => {
    await using reg = await startRegistry();
    await pushImage(reg, await busyboxImage());
    const policy = join(files.path, "reject-policy.json");
    writeFileSync(policy, JSON.stringify({ default: [{ type: "reject" }] }));
    await using d = await startDaemon({
      config: `[crio.image]\nsignature_policy = ${JSON.stringify(policy)}\ninsecure_registries = [${JSON.stringify(reg.host)}]\n`,
    });
    const code = await d.cri.pullImage({ image: { image: imageRef(reg, "busybox") } }).then(
      () => 0,
      (e: { code?: number }) => e.code,
    );
    expect(code).toBe(7); // PERMISSION_DENIED
  });

  test("a handler's monitor_path runs the monitor, its container_min_memory and container_create_timeout apply to its pods", async () => {
    const runc = Bun.which("runc") ?? "/usr/sbin/runc";
    const monitorLog = join(files.path, "monitor-path-log");
    const monitor = join(files.path, "monitor-wrapper");
    writeFileSync(monitor, `#!/bin/sh\necho "$1" >> ${monitorLog}\nexec ${CRIO} "$@"\n`, { mode: 0o755 });
    const slow = join(files.path, "slow-runc");
    writeFileSync(slow, `#!/bin/sh\nfor a in "$@"; do [ "$a" = create ] && sleep 5; done\nexec ${runc} "$@"\n`, { mode: 0o755 });
    await using e = await startEnv({
      config: [
        "[crio.runtime.runtimes.wrapped]",
        `runtime_path = ${JSON.stringify(runc)}`,
        `runtime_root = ${JSON.stringify(join(files.path, "wrapped-root"))}`,
        `monitor_path = ${JSON.stringify(monitor)}`,
        "container_min_memory = 104857600",
        "[crio.runtime.runtimes.slow]",
        `runtime_path = ${JSON.stringify(slow)}`,
        `runtime_root = ${JSON.stringify(join(files.path, "slow-root"))}`,
        "container_create_timeout = 1",
        "",
      ].join("\n"),
    });
    await e.d.cri.pullImage({ image: { image: e.busybox } });
    for (const handler of ["wrapped", "slow"]) {
      const pod = podConfig(`mp-${handler}`, e.d.dir);
      const { podSandboxId } = await e.d.cri.runPodSandbox({ config: pod, runtimeHandler: handler });
      const create = e.d.cri.createContainer({ podSandboxId, config: ctrConfig(`mp-${handler}`, e.busybox, ["sleep", "3600"], {}, pod), sandboxConfig: pod });
      if (handler === "wrapped") {
        await create;
        // the pod's own handler's container_min_memory (100 MiB here; the default handler has 12 MiB)
        const small = ctrConfig("mp-small", e.busybox, ["true"], { linux: { resources: { memoryLimitInBytes: 50n * 1024n * 1024n } } } as never, pod);
        const err = await e.d.cri.createContainer({ podSandboxId, config: small, sandboxConfig: pod }).then(
          () => "created",
          (x: Error) => x.message,
        );
        expect(err).toContain("should be at least 104857600 bytes");
        expect(readFileSync(monitorLog, "utf8").split("\n")).toContain("conmon");
      } else {
        const err = await create.then(
          () => "created",
          (x: Error) => x.message,
        );
        expect(err).toMatch(/DEADLINE_EXCEEDED|timed out|deadline/i);
      }
      await e.d.cri.removePodSandbox({ podSandboxId });
    }
  });
});
