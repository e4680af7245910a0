// The foundation on the compiled binary: CLI, configuration, logging, the CRI socket, SIGHUP
// reload, graceful stop.
import { describe, expect, test } from "bun:test";
import { status as grpcStatus } from "@grpc/grpc-js";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CgroupDriver } from "../../src/gen/runtime/v1/api_pb.ts";
import { CRIO, startDaemon, tempDir, waitFor } from "../harness.ts";

async function runCrio(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawn([CRIO, ...args], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH!, ...env } });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr, code };
}

describe("the CRI socket", () => {
  test.concurrent("Version, Status and RuntimeConfig answer", async () => {
    await using d = await startDaemon();
    expect(await d.cri.version({})).toMatchObject({ runtimeName: "cri-o", runtimeApiVersion: "v1" });
    const st = await d.cri.status({ verbose: true });
    const cond = Object.fromEntries(st.status!.conditions.map((c) => [c.type, c]));
    expect(cond.RuntimeReady!.status).toBe(true);
    expect(cond.NetworkReady!).toMatchObject({ status: false, reason: "NetworkPluginNotReady" });
    expect(JSON.parse(st.info.config!).crio.root).toBe(d.root);
    expect(st.runtimeHandlers.map((h) => h.name)).toEqual(["", "runc", "crun"]);
    expect((await d.cri.runtimeConfig({})).linux?.cgroupDriver).toBe(CgroupDriver.CGROUPFS);
    expect(statSync(d.socket).mode & 0o777).toBe(0o660);
  });

  test.concurrent("an RPC that is not built answers UNIMPLEMENTED naming itself", async () => {
    await using d = await startDaemon();
    const err = await d.cri.checkpointContainer({ containerId: "x" }).catch((e) => e);
    expect(err.code).toBe(grpcStatus.UNIMPLEMENTED);
    expect(err.details).toContain("CheckpointContainer");
  });

  test.concurrent("a second daemon on the same socket refuses to start; a stale socket is replaced", async () => {
    await using d = await startDaemon();
    const second = await runCrio(["--config", d.configFile, "--config-dir", d.configDir]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain("another daemon is already listening");
    expect((await d.cri.version({})).runtimeName).toBe("cri-o");
    // kill -9 leaves the socket file behind; the next start replaces it
    d.proc.kill("SIGKILL");
    await d.proc.exited;
    expect(existsSync(d.socket)).toBe(true);
    await using again = await startDaemon({ dir: d.dir });
    expect((await again.cri.version({})).runtimeName).toBe("cri-o");
  });

  test.concurrent("SIGTERM stops gracefully and removes the socket", async () => {
    await using d = await startDaemon();
    expect(await d.stop("SIGTERM")).toBe(0);
    expect(existsSync(d.socket)).toBe(false);
    expect(d.logs()).toContain("Received SIGTERM");
  });

  test.concurrent("a SIGTERM as soon as the socket exists (recovery may still run) is kept and stops the daemon gracefully", async () => {
    await using d = await startDaemon({ noWait: true });
    await waitFor(() => existsSync(d.socket) || d.proc.exitCode !== null, 20_000, "the socket");
    expect(await d.stop("SIGTERM")).toBe(0);
    expect(existsSync(d.socket)).toBe(false);
    expect(d.logs()).toContain("Received SIGTERM");
  });
});

describe("SIGHUP during start-up", () => {
  test.concurrent("a SIGHUP as soon as the socket exists (recovery may still run) is kept: the daemon lives and reloads", async () => {
    await using d = await startDaemon({ noWait: true });
    await waitFor(() => existsSync(d.socket) || d.proc.exitCode !== null, 20_000, "the socket");
    d.proc.kill("SIGHUP");
    await d.waitForLog(/msg="reloading configuration/);
    await waitFor(async () => (await d.cri.status({}, { timeoutMs: 1000 }).catch(() => undefined)) !== undefined, 20_000, "Status");
    expect(d.proc.exitCode).toBe(null);
    expect(d.proc.signalCode).toBe(null);
  });
});

describe("logging", () => {
  test.concurrent("debug level logs each request and response with one id, in CRI-O's text format", async () => {
    await using d = await startDaemon({ logLevel: "debug" });
    await d.cri.version({});
    const req = await d.waitForLog(/msg="VersionRequest \{/);
    expect(req).toMatch(
      /^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z" level=debug msg="VersionRequest \{\}" id=[0-9a-f-]{36} name=\/runtime\.v1\.RuntimeService\/Version$/,
    );
    const id = /id=([0-9a-f-]+)/.exec(req)![1];
    const res = await d.waitForLog(new RegExp(`msg="VersionResponse .*id=${id}`));
    expect(res).toContain('\\"runtimeName\\":\\"cri-o\\"');
    expect(d.logs()).toMatch(/level=info msg="Starting crio, version: /);
    expect(d.logs()).toContain(`Loaded configuration file \\"${d.configFile}\\"`);
  });

  test.concurrent("--log-format json writes JSON lines", async () => {
    await using d = await startDaemon({ args: ["--log-format", "json"] });
    const line = await d.waitForLog(/Starting crio/);
    expect(JSON.parse(line)).toMatchObject({ level: "info", msg: expect.stringContaining("Starting crio") });
  });

  test.concurrent("log_filter keeps only matching messages", async () => {
    await using d = await startDaemon({ logLevel: "debug", config: '[crio.runtime]\nlog_filter = "^Status"' });
    await d.cri.version({});
    await d.cri.status({});
    await d.waitForLog(/msg="StatusRequest/);
    expect(d.logs()).not.toContain("VersionRequest");
  });
});

describe("SIGHUP reload", () => {
  test.concurrent("changes the log level live and reports each changed option", async () => {
    await using d = await startDaemon({ logLevel: "info" });
    await d.cri.version({});
    expect(d.logs()).not.toContain("VersionRequest");
    writeFileSync(join(d.configDir, "50-debug.conf"), '[crio.runtime]\nlog_level = "debug"\n[crio.image]\npause_image = "example.com/pause:9"\n');
    d.proc.kill("SIGHUP");
    await d.waitForLog(/msg="reloading configuration \\".*crio\.conf\\""/);
    await d.waitForLog(/msg="set config log_level to \\"debug\\""/);
    await d.waitForLog(/msg="set config pause_image to \\"example.com\/pause:9\\""/);
    await d.cri.version({});
    await d.waitForLog(/level=debug msg="VersionRequest/);
    const st = await d.cri.status({ verbose: true });
    expect(JSON.parse(st.info.config!).image.pauseImage).toBe("example.com/pause:9");
  });

  test.concurrent("a bad reload is logged and the daemon keeps serving the old configuration", async () => {
    await using d = await startDaemon({ logLevel: "info" });
    writeFileSync(join(d.configDir, "99-bad.conf"), '[crio.runtime]\nlog_level = "loud"\n');
    d.proc.kill("SIGHUP");
    const line = await d.waitForLog(/configuration reload failed/);
    expect(line).toContain("level=error");
    expect(line).toContain("99-bad.conf");
    expect(line).toContain("loud");
    expect((await d.cri.version({})).runtimeName).toBe("cri-o");
    expect(d.proc.exitCode).toBeNull();
  });
});

describe("configuration", () => {
  test.concurrent("a wrong type or value stops start-up naming file, key, value and what was expected", async () => {
    using dir = tempDir();
    const file = join(dir.path, "crio.conf");
    writeFileSync(file, '[crio.runtime]\nlog_level = "loud"\n');
    let r = await runCrio(["--config", file, "--config-dir", join(dir.path, "none")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`config file \\"${file}\\": key \\"crio.runtime.log_level\\": value \\"loud\\" is not valid: expected one of fatal`);
    writeFileSync(file, '[crio.api]\ngrpc_max_send_msg_size = "big"\n');
    r = await runCrio(["--config", file, "--config-dir", join(dir.path, "none")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("grpc_max_send_msg_size");
    expect(r.stderr).toContain("expected an integer");
    writeFileSync(file, "[crio.api\n");
    r = await runCrio(["--config", file, "--config-dir", join(dir.path, "none")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("is not valid TOML");
  });

  test.concurrent("a wrong flag value and a missing --config file are errors", async () => {
    using dir = tempDir();
    let r = await runCrio(["--config", join(dir.path, "missing.conf"), "config"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("does not exist");
    const empty = join(dir.path, "empty.conf");
    writeFileSync(empty, "");
    r = await runCrio(["--config", empty, "--config-dir", dir.path, "--log-level", "loud", "config"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('flag --log-level: key "crio.runtime.log_level": value "loud"');
    r = await runCrio(["config", "--config-dir", join(dir.path, "none"), "--config", empty], { CONTAINER_STREAM_PORT: "99999" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("environment variable CONTAINER_STREAM_PORT");
  });

  test.concurrent("unknown keys warn once each, naming file and key, and the daemon starts", async () => {
    await using d = await startDaemon({ config: '[crio.runtime]\nmade_up_option = 1\n[crio.runtime.workloads.x]\nactivation_annotation = "a"\n' });
    const line = await d.waitForLog(/unknown key/);
    expect(line).toContain("level=warning");
    expect(line).toContain(`crio.runtime.made_up_option`);
    expect(d.logs()).toContain("crio.runtime.workloads");
  });

  test.concurrent("`crio config --default` parses back to the defaults; drop-ins and flags override in order", async () => {
    using dir = tempDir();
    const defaults = await runCrio(["config", "--default"]);
    expect(defaults.code).toBe(0);
    const file = join(dir.path, "crio.conf");
    writeFileSync(file, defaults.stdout);
    const back = await runCrio(["config", "--config", file, "--config-dir", join(dir.path, "d")]);
    expect(back.stderr).toBe("");
    expect(back.stdout).toBe(defaults.stdout);
    // drop-ins in lexical order, then flags, then nothing else
    Bun.spawnSync(["mkdir", "-p", join(dir.path, "d")]);
    writeFileSync(join(dir.path, "d", "01-a.conf"), '[crio.image]\npause_image = "a/pause:1"\n[crio.runtime]\nlog_level = "warn"\n');
    writeFileSync(join(dir.path, "d", "02-b.conf"), '[crio.image]\npause_image = "b/pause:2"\n[crio.runtime.runtimes.myrt]\nruntime_path = "/usr/bin/runc"\n');
    const eff = await runCrio(["--log-level", "debug", "config", "--config", file, "--config-dir", join(dir.path, "d")], { CONTAINER_ROOT: "/srv/crio" });
    expect(eff.code).toBe(0);
    expect(eff.stdout).toContain('pause_image = "b/pause:2"');
    expect(eff.stdout).toContain('log_level = "debug"');
    expect(eff.stdout).toContain('root = "/srv/crio"');
    expect(eff.stdout).toContain("[crio.runtime.runtimes.myrt]");
  });

  test.concurrent("crio version and --help", async () => {
    const v = await runCrio(["version", "--json"]);
    expect(JSON.parse(v.stdout)).toMatchObject({ criApiVersion: "v1" });
    const h = await runCrio(["--help"]);
    expect(h.stdout).toContain("--log-level");
    expect(h.stdout).toContain("config");
  });
});
