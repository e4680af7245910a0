// The operator's side of the compiled daemon, without pods: systemd notifications (READY after
// the CRI socket answers, STATUS, WATCHDOG, STOPPING), the Prometheus endpoint, the info API and
// `crio status`, `crio wipe` refusing a running daemon, completion scripts and --help.
import { describe, expect, test } from "bun:test";
import { status as grpc } from "@grpc/grpc-js";
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { CRIO, startDaemon, tempDir } from "../harness.ts";
import { NotifyReceiver, getUnix, runCmd, sample } from "../support/operator.ts";

const P = "container_runtime_crio_";

describe("systemd notifications", () => {
  test("STATUS while starting, READY=1 once the CRI socket answers every RPC, WATCHDOG=1, STOPPING=1 at SIGTERM", async () => {
    using tmp = tempDir("crio-notify-");
    using rcv = new NotifyReceiver(join(tmp.path, "notify.sock"));
    using vf = versionFiles();
    await using d = await startDaemon({ env: { NOTIFY_SOCKET: rcv.address, WATCHDOG_USEC: "400000" }, args: vf.args });
    const ready = await rcv.waitFor("READY=1");
    // READY means recovery is done: the gated RPCs answer now.
    expect((await d.cri.status({}, { timeoutMs: 2000 })).status?.conditions.length).toBeGreaterThan(0);
    const texts = rcv.messages.map((m) => m.text);
    const readyAt = texts.indexOf(ready.text);
    expect(texts.slice(0, readyAt)).toContain("STATUS=recovering pods and containers");
    expect(ready.text).toBe(`READY=1\nSTATUS=serving CRI on ${d.socket}`);
    // WatchdogSec/2 = 200 ms: keep-alives keep coming.
    await waitCount(rcv, "WATCHDOG=1", 3);
    expect(await d.stop("SIGTERM")).toBe(0);
    expect(rcv.lines()).toContain("STOPPING=1");
    expect(d.logs()).toContain("systemd watchdog: pinging every 200 ms");
  });

  test("an abstract NOTIFY_SOCKET (@name) works too, and SIGHUP sends RELOADING=1 then READY=1", async () => {
    using rcv = new NotifyReceiver(`@crio-e2e-${process.pid}-${Date.now()}`);
    using vf = versionFiles();
    await using d = await startDaemon({ env: { NOTIFY_SOCKET: rcv.address }, args: vf.args });
    await rcv.waitFor("READY=1");
    d.proc.kill("SIGHUP");
    await rcv.waitFor("RELOADING=1");
    await waitCount(rcv, "READY=1", 2);
    expect(rcv.lines()).not.toContain("WATCHDOG=1"); // no WATCHDOG_USEC: no keep-alives
  });

  test("a NOTIFY_SOCKET nobody listens on is a warning, not a failure", async () => {
    using vf = versionFiles();
    await using d = await startDaemon({ env: { NOTIFY_SOCKET: "/nonexistent/notify.sock" }, args: vf.args });
    await d.waitForLog(/systemd notification failed: sendto \/nonexistent\/notify.sock/);
    expect((await d.cri.version({})).runtimeName).toBe("cri-o");
  });
});

describe("metrics", () => {
  test("enable_metrics serves CRI-O's metrics on TCP and on metrics_socket, counting operations and errors", async () => {
    using tmp = tempDir("crio-metrics-");
    const socket = join(tmp.path, "metrics.sock");
    using vf = versionFiles();
    await using d = await startDaemon({
      args: vf.args,
      config: `[crio.metrics]\nenable_metrics = true\nmetrics_host = "127.0.0.1"\nmetrics_port = 0\nmetrics_socket = ${JSON.stringify(socket)}\n`,
    });
    const line = await d.waitForLog(/Serving metrics on http:\/\/127\.0\.0\.1:\d+\/metrics/);
    const url = /(http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(line)![1]!;
    await d.cri.version({});
    await d.cri.version({});
    // (bun's rejects.toMatchObject walks a grpc ServiceError forever: compare the code alone)
    expect(((await d.cri.containerStatus({ containerId: "nope" }).catch((e) => e)) as { code: number }).code).toBe(grpc.NOT_FOUND);
    const res = await fetch(url);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    expect(sample(text, `${P}operations_total`, { operation: "Version" })).toBeGreaterThanOrEqual(2);
    expect(sample(text, `${P}operations_total`, { operation: "ContainerStatus" })).toBe(1);
    expect(sample(text, `${P}operations_errors_total`, { operation: "ContainerStatus" })).toBe(1);
    expect(sample(text, `${P}operations_errors_total`, { operation: "Version" })).toBeUndefined();
    expect(sample(text, `${P}operations_latency_seconds_total_count`, { operation: "Version" })).toBeGreaterThanOrEqual(2);
    expect(sample(text, `${P}operations_latency_seconds_total`, { operation: "Version", quantile: "0.99" })).toBeLessThan(5);
    expect(sample(text, `${P}operations_latency_seconds`, { operation: "ContainerStatus" })).toBeGreaterThanOrEqual(0);
    expect(sample(text, `${P}containers_oom_total`)).toBe(0);
    expect(sample(text, `${P}containers_events_dropped_total`)).toBe(0);
    expect(sample(text, "process_resident_memory_bytes")).toBeGreaterThan(10 * 1024 * 1024);
    expect(sample(text, "process_open_fds")).toBeGreaterThan(3);
    expect(sample(text, "process_cpu_seconds_total")).toBeGreaterThan(0);
    expect(Math.abs(sample(text, "process_start_time_seconds")! - Date.now() / 1000)).toBeLessThan(600);
    const viaSocket = await getUnix(socket, "/metrics");
    expect(sample(viaSocket.body, `${P}operations_total`, { operation: "Version" })).toBeGreaterThanOrEqual(2);
    await d.stop();
    expect(existsSync(socket)).toBe(false);
  });

  test("metrics are off by default; metrics_collectors limits them and warns about unknown names", async () => {
    using vf = versionFiles();
    await using off = await startDaemon({ args: vf.args });
    expect(off.logs()).not.toContain("Serving metrics");
    await using d = await startDaemon({
      args: vf.args,
      config: `[crio.metrics]\nenable_metrics = true\nmetrics_port = 0\nmetrics_collectors = ["operations_total", "bogus"]\n`,
    });
    await d.waitForLog(/metrics_collectors: unknown collector \\"bogus\\" ignored/);
    const url = /(http:\/\/[^ "]+\/metrics)/.exec(await d.waitForLog(/Serving metrics on/))![1]!;
    await d.cri.version({});
    const text = await (await fetch(url)).text();
    expect(sample(text, `${P}operations_total`, { operation: "Version" })).toBe(1);
    expect(text).not.toContain("process_");
    expect(text).not.toContain("latency");
  });
});

describe("crio status and the info API", () => {
  test("info, config and containers through the info socket beside the CRI socket", async () => {
    using vf = versionFiles();
    await using d = await startDaemon({ args: vf.args });
    const info = join(d.dir, "crio-info.sock");
    expect(d.logs()).toContain(`Serving the info API on \\"${info}\\"`);
    const raw = await getUnix(info, "/info");
    expect(JSON.parse(raw.body)).toEqual({
      storage_driver: "overlay",
      storage_image: "",
      storage_root: d.root,
      cgroup_driver: "cgroupfs",
      default_id_mappings: { uids: [], gids: [] },
    });
    const st = runCmd([CRIO, "status", "--socket", d.socket, "info"]);
    expect(st).toMatchObject({ code: 0 });
    expect(st.stdout).toContain(`cgroup driver: cgroupfs\nstorage driver: overlay\nstorage graph root: ${d.root}\n`);
    const cfg = runCmd([CRIO, "status", "-s", d.socket, "c"]);
    expect(cfg.code).toBe(0);
    expect(cfg.stdout).toContain("[crio]");
    expect(cfg.stdout).toContain(`root = ${JSON.stringify(d.root)}`);
    expect(runCmd([CRIO, "status", "--socket", info, "config"]).stdout).toBe(cfg.stdout); // the info socket itself is accepted
    expect(runCmd([CRIO, "status", "--socket", d.socket, "containers"])).toMatchObject({ code: 1, stderr: "crio status: the argument --id cannot be empty\n" });
    const missing = runCmd([CRIO, "status", "--socket", d.socket, "containers", "--id", "nope"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('container "nope" not found');
    expect((await getUnix(info, "/containers/nope")).status).toBe(404);
    expect((await getUnix(info, "/elsewhere")).status).toBe(404);
    expect(runCmd([CRIO, "status", "--socket", d.socket, "bogus"])).toMatchObject({ code: 1 });
    expect(runCmd([CRIO, "status", "--socket", d.socket])).toMatchObject({ code: 1 });
    await d.stop();
    expect(existsSync(info)).toBe(false);
    const down = runCmd([CRIO, "status", "--socket", d.socket, "info"]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`cannot reach the daemon's info API on "${info}"`);
  });
});

describe("SIGUSR1 debug dump", () => {
  test("writes memory, heap and monitor figures to $TMPDIR/crio-debug-*.json (0600) and keeps serving", async () => {
    using tmp = tempDir("crio-dump-");
    await using d = await startDaemon({ env: { TMPDIR: tmp.path } });
    d.proc.kill("SIGUSR1");
    const line = await d.waitForLog(/wrote debug dump to [^"\s]+/, 10_000);
    const path = /wrote debug dump to ([^"\s]+)/.exec(line)![1]!;
    expect(path.startsWith(join(tmp.path, "crio-debug-"))).toBe(true);
    const dump = JSON.parse(readFileSync(path, "utf8"));
    expect(dump).toMatchObject({ pid: d.proc.pid, sandboxes: 0, containers: 0, standbyMonitors: {} });
    expect(dump.memoryKiB.Rss).toBeGreaterThan(1000);
    expect(dump.memoryKiB.Anonymous).toBeGreaterThan(1000);
    expect(dump.heap.objects).toBeGreaterThan(1000);
    expect(Object.keys(dump.heap.objectTypes).length).toBeGreaterThan(5);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect((await d.cri.version({})).runtimeName).toBe("cri-o");
  });

  test("a SIGUSR1 while the daemon is still starting (socket up, recovery running) is a dump, not the end of the process", async () => {
    using tmp = tempDir("crio-dump-early-");
    await using d = await startDaemon({ env: { TMPDIR: tmp.path }, noWait: true });
    // from the moment the socket exists until every RPC is served: SIGUSR1's default action
    // would end the process (CI saw the dump test's signal land in that window and the daemon die)
    const until = Date.now() + 20_000;
    while (!existsSync(d.socket) && d.proc.exitCode === null && Date.now() < until) await Bun.sleep(1);
    let sent = 0;
    while (!d.logs().includes("serving every RPC") && d.proc.exitCode === null && sent < 200) {
      d.proc.kill("SIGUSR1");
      sent++;
      await Bun.sleep(2);
    }
    expect(sent).toBeGreaterThan(0);
    await d.waitForLog(/wrote debug dump to [^"\s]+/, 10_000);
    expect(d.proc.exitCode).toBeNull();
    await d.waitForLog(/serving every RPC/, 20_000);
    expect((await d.cri.version({})).runtimeName).toBe("cri-o");
  });
});

describe("crio wipe", () => {
  test("refuses while a daemon answers on the socket; after the daemon ran, nothing needs wiping", async () => {
    using vf = versionFiles();
    await using d = await startDaemon({ args: vf.args });
    const args = ["--config", d.configFile, "--config-dir", d.configDir, ...vf.args];
    const refused = runCmd([CRIO, ...args, "wipe", "-f"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`a crio daemon is running on "${d.socket}": stop it before wiping`);
    expect(JSON.parse(readFileSync(vf.file, "utf8"))).toMatch(/^\d+\.\d+\.\d+/);
    await d.stop();
    const w = runCmd([CRIO, ...args, "wipe"]);
    expect(w).toMatchObject({ code: 0 });
    expect(w.stderr + w.stdout).toContain("version unchanged and node not rebooted; no wipe needed");
  });

  test("a version file from another minor version wipes containers, and images when it is the persistent one", async () => {
    using vf = versionFiles();
    await using d = await startDaemon({ args: vf.args });
    await d.stop();
    const args = [CRIO, "--config", d.configFile, "--config-dir", d.configDir, ...vf.args, "wipe"];
    writeFileSync(vf.file, JSON.stringify("0.0.9"));
    const ctr = runCmd(args);
    expect(ctr.code).toBe(0);
    expect(ctr.stderr + ctr.stdout).toContain(`version file \\"${vf.file}\\" says 0.0.9, this is `);
    expect(ctr.stderr + ctr.stdout).not.toContain("wiping images");
    writeFileSync(vf.file + "-persist", JSON.stringify("v0.0.9"));
    const img = runCmd(args);
    expect(img.code).toBe(0);
    expect(img.stderr + img.stdout).toContain("wiping images");
    expect(img.stderr + img.stdout).toContain("wiped 0 pods, 0 containers and 0 images");
  });
});

describe("completion and help", () => {
  test.each(["bash", "zsh", "fish"])("crio completion %s matches contrib/completion", (shell) => {
    const r = runCmd([CRIO, "completion", shell]);
    expect(r.code).toBe(0);
    const file = { bash: "crio.bash", zsh: "_crio", fish: "crio.fish" }[shell]!;
    // When this fails after a CLI change: sh contrib/completion/generate.sh (after bun run build).
    expect(r.stdout).toBe(readFileSync(resolve(import.meta.dir, "../../contrib/completion", file), "utf8"));
    expect(r.stdout).toContain("status");
    expect(r.stdout).toContain("metrics-port");
  });

  test("the bash script completes commands and flags", () => {
    using tmp = tempDir("crio-compl-");
    const script = join(tmp.path, "c.bash");
    Bun.write(script, runCmd([CRIO, "completion", "bash"]).stdout);
    const complete = (line: string) => {
      const words = line.split(" ");
      const r = Bun.spawnSync([
        "bash",
        "-c",
        `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _crio; printf '%s\\n' "\${COMPREPLY[@]}"`,
      ]);
      return r.stdout.toString().trim().split("\n").filter(Boolean).sort();
    };
    expect(complete("crio st")).toEqual(["status"]);
    expect(complete("crio status ")).toEqual(expect.arrayContaining(["config", "info", "containers", "--socket", "--id"]));
    expect(complete("crio wipe --fo")).toEqual(["--force"]);
    expect(complete("crio --metrics-p")).toEqual(["--metrics-port"]);
    rmSync(script);
  });

  test("crio completion rejects an unknown shell", () => {
    expect(runCmd([CRIO, "completion", "tcsh"])).toMatchObject({ code: 1, stderr: 'crio completion: unknown shell "tcsh": use bash, zsh or fish\n' });
  });

  test.each(["(no command)", "daemon", "config", "version", "pull", "status", "wipe", "completion"])("crio %s --help describes the command", (name) => {
    const cmd = name.startsWith("(") ? [] : [name];
    const r = runCmd([CRIO, ...cmd, "--help"], { NO_COLOR: "1" });
    expect(r.code).toBe(0);
    expect(r.stdout + r.stderr).toContain("USAGE");
    expect(r.stdout + r.stderr).toContain(`crio${cmd.length ? ` ${cmd[0]}` : ""}`);
  });
});

// --- helpers ---

/**
 * Flags putting the version files in a temp dir (the defaults are /var/run/crio/version and
 * the persistent one unset); removed at dispose.
 */
function versionFiles(): { args: string[]; file: string; [Symbol.dispose](): void } {
  const t = tempDir("crio-ver-");
  return {
    args: ["--version-file", join(t.path, "version"), "--version-file-persist", join(t.path, "version-persist")],
    file: join(t.path, "version"),
    [Symbol.dispose]: () => t[Symbol.dispose](),
  };
}

async function waitCount(rcv: NotifyReceiver, line: string, n: number, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (rcv.lines().filter((l) => l === line).length < n) {
    if (Date.now() > end) throw new Error(`fewer than ${n} "${line}" within ${timeoutMs} ms: ${JSON.stringify(rcv.lines())}`);
    await Bun.sleep(20);
  }
}
