// Regression: streaming exec sessions of quick commands failed about once in 10-20 runs, with
// "cannot attach: no monitor listens at …/attach" or with exit code 255 although the output
// arrived (critest "runtime should support exec with tty=true and stdin=true"). Two monitor bugs:
// - the attach server closed a client's connection outright after EXIT. When the process had
//   already exited, the monitor accepted the daemon's connection, sent output and EXIT and
//   closed it before the daemon's event loop had seen its connect() complete, and Bun reports a
//   connect that completes on a hung-up socket as a failed one. It now half-closes and waits for
//   the client to close.
// - the reaper reaped "stranger" zombie children while the runtime was still starting the
//   process: a quick exec, re-parented to the monitor as a zombie when `runc exec -d` exited,
//   could be reaped before the monitor waited for its pid, and its exit code became 255.
// The first describe runs through the compiled daemon (root, real runc); the second pins each
// mechanism on its own.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AttachServer } from "../../src/conmon/attach.ts";
import { buildArgs, Frame, MAX_TIMER_MS, parseArgs, type MonitorArgs } from "../../src/conmon/protocol.ts";
import { WsClient, channelData } from "../support/streaming-client.ts";
import { waitFor } from "../harness.ts";
import { ctrConfig, podConfig, startEnv } from "../support/pods.ts";

const SRC = join(import.meta.dir, "..", "..", "src");

interface Outcome {
  stdout: string;
  stderr: string;
  status: { status?: string; reason?: string; message?: string; details?: { causes?: Array<{ reason?: string; message?: string }> } };
}

describe("exec sessions through the daemon (shared pid namespace)", () => {
  test("many quick tty and non-tty sessions all attach and report the right output and exit code", async () => {
    // CRIO_MONITOR_DEBUG: monitors trace their steps (an exec monitor of its own keeps <dir>/monitor.log)
    await using env = await startEnv({ env: { CRIO_MONITOR_DEBUG: "1" } });
    const d = env.d;
    await d.cri.pullImage({ image: { image: env.busybox } });
    const pod = podConfig("xa", d.dir, { sharedPid: true });
    const { podSandboxId } = await d.cri.runPodSandbox({ config: pod });
    const { containerId } = await d.cri.createContainer({
      podSandboxId,
      config: ctrConfig("c", env.busybox, ["sleep", "3600"], {}, pod),
      sandboxConfig: pod,
    });
    await d.cri.startContainer({ containerId });
    const monitorRoot = join(d.runroot, "monitor");

    const failures: string[] = [];
    const run = async (name: string, cmd: string[], tty: boolean, stdin: boolean, check: (o: Outcome) => boolean) => {
      const before = new Set(readdirSync(monitorRoot));
      let o: Outcome | undefined;
      let error = "";
      try {
        o = await session(d.cri, containerId, cmd, tty, stdin);
      } catch (e) {
        error = String(e);
      }
      if (o && check(o)) return;
      const dirs = readdirSync(monitorRoot).filter((x) => !before.has(x));
      const logs = dirs.map((x) => readText(join(monitorRoot, x, "monitor.log"))).join("\n");
      failures.push(`${name}: ${error || JSON.stringify(o)}\n${logs}`);
    };

    const variants = [
      { tty: true, stdin: true },
      { tty: true, stdin: false },
      { tty: false, stdin: true },
      { tty: false, stdin: false },
    ];
    const ok = (o: Outcome, stdout: string, stderr = "") => o.status.status === "Success" && o.stdout === stdout && o.stderr === stderr;
    for (let i = 0; i < 60; i++) {
      const v = variants[i % variants.length]!;
      if (v.tty) await run(`#${i} tty stdin=${v.stdin}`, ["echo", "-n", "hello"], true, v.stdin, (o) => ok(o, "hello"));
      else await run(`#${i} stdin=${v.stdin}`, ["sh", "-c", "echo -n hello; echo -n oops >&2"], false, v.stdin, (o) => ok(o, "hello", "oops"));
    }
    // a few at once, as a busy kubelet would
    await Promise.all(Array.from({ length: 6 }, (_, i) => run(`concurrent #${i}`, ["echo", "-n", "hi"], i % 2 === 0, true, (o) => ok(o, "hi"))));
    // a command that fails: its own exit code, not 255, and its output
    const exited7 = (o: Outcome, stdout: string) =>
      o.stdout === stdout &&
      o.status.status === "Failure" &&
      o.status.reason === "NonZeroExitCode" &&
      JSON.stringify(o.status.details?.causes) === JSON.stringify([{ reason: "ExitCode", message: "7" }]);
    for (let i = 0; i < 3; i++) {
      await run(`exit 7 tty #${i}`, ["sh", "-c", "echo -n bye; exit 7"], true, true, (o) => exited7(o, "bye"));
      await run(`exit 7 #${i}`, ["sh", "-c", "echo -n bye; exit 7"], false, false, (o) => exited7(o, "bye"));
    }
    expect(failures).toEqual([]);

    // the sessions ran in the container's own monitor: each one's dir is gone once it ended,
    // and what is left are the two containers' (the infra container's and "c")
    // (a monitor may still be closing up after its client left)
    await waitFor(() => readdirSync(monitorRoot).length === 2, 10_000, "every session's dir to go").catch(() => {});
    const left = readdirSync(monitorRoot);
    expect([left.length, left.includes(containerId)]).toEqual([2, true]);
  }, 180_000);
});

describe("the monitor's mechanisms", () => {
  test("a client whose connect completes only after the session finished still gets the output and EXIT", async () => {
    const dir = mkdtempSync(join(tmpdir(), "crio-xa-"));
    try {
      const srv = new AttachServer(join(dir, "attach"), { stdin: () => {}, closeStdin: () => {}, resize: () => {} }, { stdin: true, stdinOnce: true });
      // the monitor's exec session when the process already exited: output and EXIT at once
      const served = srv.firstClient(10_000).then(async (attached) => {
        srv.send(Frame.STDOUT, new TextEncoder().encode("hello"));
        await srv.finish(0);
        return attached;
      });
      // the client blocks its event loop right after connect(), so the server is done first
      const script = `
        import { attach } from ${JSON.stringify(join(SRC, "monitor", "attach-client.ts"))};
        let out = "";
        const pending = attach(${JSON.stringify(join(dir, "attach"))}, { stdout: (d) => (out += new TextDecoder().decode(d)) });
        const until = Date.now() + 300;
        while (Date.now() < until) {}
        try {
          const exit = await (await pending).exit;
          console.log(JSON.stringify({ out, exit }));
        } catch (e) {
          console.log(JSON.stringify({ error: String(e) }));
        }`;
      const p = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
      const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      expect(err).toBe("");
      expect(JSON.parse(out)).toEqual({ out: "hello", exit: 0 });
      expect(await served).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a process that exits before the monitor waits for it keeps its exit code", async () => {
    // the reaper makes its process a child subreaper: run it in a child process of its own
    const script = `
      import { Reaper } from ${JSON.stringify(join(SRC, "conmon", "reaper.ts"))};
      import { readFileSync } from "node:fs";
      const r = new Reaper();
      r.start();
      const release = r.hold(); // what launch() does while the runtime runs
      // "the runtime": starts a process that exits soon, prints its pid and exits without
      // waiting for it (exec: a shell could reap it itself); the process dies as our orphan
      const rt = Bun.spawn(["sh", "-c", "sh -c 'sleep 0.3; exit 5' & echo $!; exec sleep 0.05"], { stdout: "pipe" });
      r.own(rt.pid);
      const pid = Number((await new Response(rt.stdout).text()).trim());
      await rt.exited;
      r.disown(rt.pid);
      // "Z" once it exited; "gone" had it been reaped (the bug)
      const state = () => { try { return /\\) (\\S)/.exec(readFileSync("/proc/" + pid + "/stat", "utf8"))[1]; } catch { return "gone"; } };
      for (let i = 0; i < 500 && !["Z", "gone"].includes(state()); i++) await Bun.sleep(10);
      const wasZombie = state() === "Z";
      r.check(); // a SIGCHLD before the monitor waits for the pid
      const exited = r.wait(pid);
      release();
      const e = await exited;
      r.stop();
      console.log(JSON.stringify({ wasZombie, exitCode: e.exitCode }));
      process.exit(0);`;
    const p = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
    const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    expect(err).toBe("");
    expect(JSON.parse(out)).toEqual({ wasZombie: true, exitCode: 5 });
  });
});

test("attach and exec-sync timeouts survive the command line; one a timer cannot hold is refused", () => {
  const a: MonitorArgs = {
    mode: "exec",
    id: "e1",
    container: "c1",
    runtime: ["/bin/runc", "--root", "/run/runc"],
    dir: "/run/m/e1",
    terminal: true,
    stdin: true,
    stdinOnce: true,
    logSizeMax: 0,
    timeoutMs: 0,
    attachTimeoutMs: 60_000,
  };
  expect(parseArgs(buildArgs(a)).attachTimeoutMs).toBe(60_000);
  // setTimeout fires at once for more than 2^31-1 ms: build clamps, parse refuses
  expect(parseArgs(buildArgs({ ...a, attachTimeoutMs: 1e12 })).attachTimeoutMs).toBe(MAX_TIMER_MS);
  expect(parseArgs(buildArgs({ ...a, attachTimeoutMs: 1.5 })).attachTimeoutMs).toBe(2);
  const argv = buildArgs(a);
  argv[argv.indexOf("--attach-timeout-ms") + 1] = String(2 ** 31);
  expect(() => parseArgs(argv)).toThrow("--attach-timeout-ms needs 0 to 2147483647 ms");
  argv[argv.indexOf("--attach-timeout-ms") + 1] = "-1";
  expect(() => parseArgs(argv)).toThrow("--attach-timeout-ms needs 0 to 2147483647 ms");
});

// --- helpers ---

/** One exec session over WebSocket (v4.channel.k8s.io), like critest and kubectl do. */
async function session(
  cri: Awaited<ReturnType<typeof startEnv>>["d"]["cri"],
  containerId: string,
  cmd: string[],
  tty: boolean,
  stdin: boolean,
): Promise<Outcome> {
  const { url } = await cri.exec({ containerId, cmd, tty, stdin, stdout: true, stderr: !tty });
  const { ws } = await WsClient.connect(url, ["v4.channel.k8s.io"]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("session did not end within 20 s")), 20_000)));
  try {
    await Promise.race([ws.closed, timeout]);
  } finally {
    clearTimeout(timer);
    ws.socket.destroy();
  }
  const ch = channelData(ws.messages);
  const status = ch.get(3)?.toString() ?? "{}";
  return { stdout: ch.get(1)?.toString() ?? "", stderr: ch.get(2)?.toString() ?? "", status: JSON.parse(status) };
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return `(no ${path})`;
  }
}
