// A runtime with much to say (#17): a handler whose runtime_path is a wrapper around runc that
// writes 100 kB to stdout and 100 kB to stderr — more than a pipe holds — before it runs runc's
// create or exec. The monitor reads the runtime's output while it waits for it, so CreateContainer,
// ExecSync and a streaming exec complete (the output is the process's, as runc's own would be);
// a runtime that then fails is reported promptly with its last words; and nothing is left behind.
// (Before, the monitor read those pipes only once the runtime had exited: the runtime blocked on a
// full pipe and the create hung until container_create_timeout, its monitor and runc outliving it.)
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ContainerState } from "../../src/gen/runtime/v1/api_pb.ts";
import { CRIO, tempDir, waitFor } from "../harness.ts";
import { ctrConfig, podConfig, startEnv, type Env } from "../support/pods.ts";
import { Monitors } from "../../src/monitor/index.ts";
import { canRun, MonitorWorld } from "./monitor-support.ts";
import { SpdyClient } from "../support/streaming-client.ts";

setDefaultTimeout(120_000);

const RUNC = Bun.which("runc") ?? "/usr/sbin/runc";
const dir = tempDir("crio-loud-");
const WRAPPER = join(dir.path, "loud-runc");
const ROOT = join(dir.path, "loud-root");
const NOISE = 100_000; // bytes on each stream: more than a pipe's 64 kB
/** What the wrapper writes on each stream before runc runs. */
const NOISY_OUT = `${"o".repeat(NOISE)}\n`;
const NOISY_ERR = `${"e".repeat(NOISE)}\n`;
/** A generous bound on a create or exec here (the machine is shared); the timeouts below are 30 s. */
const PROMPT_MS = 20_000;

// for create and exec only (state, start, kill, … must answer as runc does): the noise, then runc —
// or, when <wrapper>.fail-<verb> exists, last words on stderr and a failure
writeFileSync(
  WRAPPER,
  `#!/bin/sh
verb=
for a in "$@"; do case "$a" in create|exec) verb=$a; break;; esac; done
if [ -n "$verb" ]; then
  head -c ${NOISE} /dev/zero | tr '\\0' o; echo
  head -c ${NOISE} /dev/zero | tr '\\0' e >&2; echo >&2
  if [ -e "$0.fail-$verb" ]; then echo "loud-runc: $verb refused on purpose" >&2; exit 1; fi
fi
exec ${RUNC} "$@"
`,
);
chmodSync(WRAPPER, 0o755);

let env: Env;
beforeAll(async () => {
  env = await startEnv({
    config: `[crio.runtime.runtimes.loud]\nruntime_path = ${JSON.stringify(WRAPPER)}\nruntime_root = ${JSON.stringify(ROOT)}\ncontainer_create_timeout = 30\n`,
  });
  await env.d.cri.pullImage({ image: { image: env.busybox } });
}, 120_000);
afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
  dir[Symbol.dispose]();
});

let seq = 0;
async function loudPod() {
  const name = `loud${++seq}`;
  const pod = podConfig(name, env.d.dir);
  const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod, runtimeHandler: "loud" });
  return { name, pod, podSandboxId };
}

async function running() {
  const p = await loudPod();
  const t0 = performance.now();
  const { containerId } = await env.d.cri.createContainer(
    { podSandboxId: p.podSandboxId, config: ctrConfig(p.name, env.busybox, ["sh", "-c", "echo started; exec sleep 3600"], {}, p.pod), sandboxConfig: p.pod },
    { timeoutMs: PROMPT_MS },
  );
  expect(performance.now() - t0).toBeLessThan(PROMPT_MS);
  await env.d.cri.startContainer({ containerId });
  return { ...p, containerId };
}

/** Output as a short description that still tells any two outputs here apart. */
function brief(b: Uint8Array | string): string {
  const s = typeof b === "string" ? b : Buffer.from(b).toString();
  return `${s.length} bytes: ${JSON.stringify(s.slice(0, 16))}…${JSON.stringify(s.slice(-24))} (${new Bun.CryptoHasher("sha256").update(s).digest("hex").slice(0, 12)})`;
}

/**
 * A streaming exec over SPDY v4 as client-go runs one (stdout, and stderr or with a tty a resize
 * stream), which must end within PROMPT_MS: its output and its status.
 */
async function streamingExec(containerId: string, cmd: string[], tty = false): Promise<{ out: string; err: string; status: string }> {
  const { url } = await env.d.cri.exec({ containerId, cmd, tty, stdout: true, stderr: !tty });
  const { client } = await SpdyClient.connect(url, ["v4.channel.k8s.io"]);
  const error = await client.createStream({ streamType: "error" });
  const stdout = await client.createStream({ streamType: "stdout" });
  const stderr = tty ? undefined : await client.createStream({ streamType: "stderr" });
  if (tty) await client.createStream({ streamType: "resize" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("the exec did not end in time")), PROMPT_MS)));
  const [out, err, status] = await Promise.race([Promise.all([stdout.ended, stderr?.ended, error.ended]), late]).finally(() => clearTimeout(timer));
  return { out: out.toString(), err: err?.toString() ?? "", status: status.toString() };
}

/** The error of a call that must fail, and how long it took. */
async function failure(p: Promise<unknown>): Promise<{ message: string; ms: number }> {
  const t0 = performance.now();
  const e = (await p.then(
    () => new Error("it succeeded"),
    (e) => e,
  )) as Error;
  return { message: e.message, ms: performance.now() - t0 };
}

/** Nothing of a failed create or exec is left: no wrapper or runc process, no monitor, runc state or monitor dir but the listed containers'. */
async function nothingLeft(): Promise<void> {
  const ids = new Set([...(await env.d.cri.listContainers({})).containers.map((c) => c.id), ...(await env.d.cri.listPodSandbox({})).items.map((p) => p.id)]);
  const strays = () => {
    const found: string[] = [];
    for (const p of readdirSync("/proc")) {
      if (!/^\d+$/.test(p)) continue;
      let argv: string[];
      let ppid: number;
      try {
        argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
        const stat = readFileSync(`/proc/${p}/stat`, "utf8");
        ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      } catch {
        continue; // gone meanwhile
      }
      // our daemon's monitors are its children and name their container (one in standby names
      // none yet); runc and the wrapper name the handler's root
      const id = argv[argv.indexOf("--id") + 1];
      const monitor = ppid === env.d.proc.pid && argv[1] === "conmon";
      if ((monitor && argv.includes("--id") && !ids.has(id!)) || argv.includes(WRAPPER) || argv.includes(ROOT))
        found.push(`${p}: ${argv.join(" ").slice(0, 200)}`);
    }
    return found;
  };
  // a process that is exiting may still be listed for a moment
  await waitFor(() => strays().length === 0, 10_000, "no stray wrapper, runc or monitor").catch(() => expect(strays()).toEqual([]));
  const state = Bun.spawnSync([RUNC, "--root", ROOT, "list", "-q"]).stdout.toString().split("\n").filter(Boolean);
  expect(state.filter((id) => !ids.has(id))).toEqual([]);
  const monitorDirs = join(env.d.runroot, "monitor");
  expect(existsSync(monitorDirs) ? readdirSync(monitorDirs).filter((id) => !ids.has(id)) : []).toEqual([]);
}

describe("a runtime that writes more than a pipe holds", () => {
  test("CreateContainer completes; the runtime's output is the container's, as runc's own would be", async () => {
    const c = await running();
    expect((await env.d.cri.containerStatus({ containerId: c.containerId })).status?.state).toBe(ContainerState.CONTAINER_RUNNING);
    const logPath = join(c.pod.logDirectory!, `${c.name}.log`);
    const log = await waitFor(
      () => {
        const text = existsSync(logPath) ? readFileSync(logPath, "utf8") : "";
        return text.includes(" stdout F started\n") && text;
      },
      10_000,
      "the container's own line in its log",
    );
    const bytes = (stream: string, ch: string) =>
      log
        .split("\n")
        .filter((l) => l.split(" ")[1] === stream)
        .reduce((n, l) => n + (l.split(" ").slice(3).join(" ").match(new RegExp(ch, "g"))?.length ?? 0), 0);
    expect({ o: bytes("stdout", "o"), e: bytes("stderr", "e") }).toEqual({ o: NOISE, e: NOISE });
    await nothingLeft();
  });

  test("ExecSync and a streaming exec complete, with the runtime's output first", async () => {
    const c = await running();
    const t0 = performance.now();
    const r = await env.d.cri.execSync(
      { containerId: c.containerId, cmd: ["sh", "-c", "echo out; echo err >&2; exit 3"], timeout: 30n },
      { timeoutMs: PROMPT_MS },
    );
    expect(performance.now() - t0).toBeLessThan(PROMPT_MS);
    expect({ exitCode: r.exitCode, stdout: brief(r.stdout), stderr: brief(r.stderr) }).toEqual({
      exitCode: 3,
      stdout: brief(`${NOISY_OUT}out\n`),
      stderr: brief(`${NOISY_ERR}err\n`),
    });

    const s = await streamingExec(c.containerId, ["sh", "-c", "echo out; echo err >&2; exit 4"]);
    expect({ out: brief(s.out), err: brief(s.err), code: JSON.parse(s.status).details.causes[0].message }).toEqual({
      out: brief(`${NOISY_OUT}out\n`),
      err: brief(`${NOISY_ERR}err\n`),
      code: "4",
    });
    await nothingLeft();
  });

  test("runc failing after the noise: CreateContainer fails promptly with runc's words, leaving nothing", async () => {
    const p = await loudPod();
    const f = await failure(
      env.d.cri.createContainer(
        { podSandboxId: p.podSandboxId, config: ctrConfig(p.name, env.busybox, ["/no/such/program"], {}, p.pod), sandboxConfig: p.pod },
        { timeoutMs: PROMPT_MS * 2 },
      ),
    );
    expect(f.ms).toBeLessThan(PROMPT_MS);
    expect(f.message).toContain("/no/such/program");
    expect(f.message).not.toContain("eeeeeeee");
    expect((await env.d.cri.listContainers({ filter: { podSandboxId: p.podSandboxId } })).containers).toEqual([]);
    await nothingLeft();
  });

  test("the runtime failing after the noise: create, ExecSync and exec fail promptly with its last words, leaving nothing", async () => {
    const c = await running();
    const words = (verb: string) => `loud-runc: ${verb} refused on purpose`;
    writeFileSync(`${WRAPPER}.fail-create`, "");
    writeFileSync(`${WRAPPER}.fail-exec`, "");
    try {
      const p = await loudPod();
      const create = await failure(
        env.d.cri.createContainer(
          { podSandboxId: p.podSandboxId, config: ctrConfig(p.name, env.busybox, ["sleep", "1"], {}, p.pod), sandboxConfig: p.pod },
          { timeoutMs: PROMPT_MS * 2 },
        ),
      );
      expect(create.ms).toBeLessThan(PROMPT_MS);
      expect(create.message).toContain(words("create"));
      expect((await env.d.cri.listContainers({ filter: { podSandboxId: p.podSandboxId } })).containers).toEqual([]);

      const exec = await failure(env.d.cri.execSync({ containerId: c.containerId, cmd: ["true"], timeout: 30n }, { timeoutMs: PROMPT_MS * 2 }));
      expect(exec.ms).toBeLessThan(PROMPT_MS);
      expect(exec.message).toContain(words("exec"));

      expect((await streamingExec(c.containerId, ["true"])).status).toContain(words("exec"));
    } finally {
      rmSync(`${WRAPPER}.fail-create`, { force: true });
      rmSync(`${WRAPPER}.fail-exec`, { force: true });
    }
    // the container is unharmed
    const r = await env.d.cri.execSync({ containerId: c.containerId, cmd: ["echo", "still here"], timeout: 30n });
    expect(brief(r.stdout)).toBe(brief(`${NOISY_OUT}still here\n`));
    await nothingLeft();
  });

  test("with a terminal (the runtime's stderr is a pipe of its own): create and a tty exec complete; a failing runtime's last words come through", async () => {
    const p = await loudPod();
    const tty = { tty: true, stdin: true };
    const t0 = performance.now();
    const { containerId } = await env.d.cri.createContainer(
      { podSandboxId: p.podSandboxId, config: ctrConfig(p.name, env.busybox, ["sh", "-c", "echo started; exec sleep 3600"], tty, p.pod), sandboxConfig: p.pod },
      { timeoutMs: PROMPT_MS },
    );
    expect(performance.now() - t0).toBeLessThan(PROMPT_MS);
    await env.d.cri.startContainer({ containerId });
    const logPath = join(p.pod.logDirectory!, `${p.name}.log`);
    await waitFor(() => existsSync(logPath) && readFileSync(logPath, "utf8").includes(" stdout F started\r"), 10_000, "the container's line in its log");

    const exec = async (cmd: string[]) => {
      const { out, status } = await streamingExec(containerId, cmd, true);
      return { out, status };
    };
    expect(await exec(["echo", "from a tty"])).toEqual({ out: "from a tty\r\n", status: '{"metadata":{},"status":"Success"}' });

    writeFileSync(`${WRAPPER}.fail-create`, "");
    writeFileSync(`${WRAPPER}.fail-exec`, "");
    try {
      const q = await loudPod();
      const create = await failure(
        env.d.cri.createContainer(
          { podSandboxId: q.podSandboxId, config: ctrConfig(q.name, env.busybox, ["sleep", "1"], tty, q.pod), sandboxConfig: q.pod },
          { timeoutMs: PROMPT_MS * 2 },
        ),
      );
      expect(create.ms).toBeLessThan(PROMPT_MS);
      expect(create.message).toContain("loud-runc: create refused on purpose");
      expect((await exec(["true"])).status).toContain("loud-runc: exec refused on purpose");
    } finally {
      rmSync(`${WRAPPER}.fail-create`, { force: true });
      rmSync(`${WRAPPER}.fail-exec`, { force: true });
    }
    await nothingLeft();
  });
});

// The daemon's fallbacks, where an exec gets a monitor of its own (the container's monitor cannot
// run it): an exec-sync monitor (the runtime's stdio are the daemon's pipes) and an exec monitor;
// and ExecSync as the daemon runs it by default, the runtime's exec as its own child (no monitor).
describe.skipIf(!canRun())("the exec monitors with a runtime that writes more than a pipe holds", () => {
  const proc = (args: string[]) => ({ args, env: ["PATH=/bin"], cwd: "/", user: { uid: 0, gid: 0 }, terminal: false });

  test.each([
    ["under an exec-sync monitor", false],
    ["run by the daemon (no monitor)", true],
  ])("ExecSync %s and a streaming exec under an exec monitor complete", async (_how, execSyncDirect) => {
    await using w = new MonitorWorld();
    // the compiled binary's monitor role, as the daemon runs it
    const m = new Monitors({
      ...w.config,
      selfCommand: [CRIO],
      runtime: [WRAPPER, "--root", w.runtimeRoot],
      execSyncDirect,
      execSyncInContainerMonitor: false,
    });
    try {
      const id = w.id();
      await m.spawn({ id, bundle: w.bundle(id, ["sleep", "1000"]), logPath: w.logPath(id) });
      await w.runc("start", id);
      const r = await m.execSync({ containerId: id, process: proc(["sh", "-c", "echo out; echo err >&2; exit 6"]) });
      expect({ exitCode: r.exitCode, stdout: brief(r.stdout), stderr: brief(r.stderr) }).toEqual({
        exitCode: 6,
        stdout: brief(`${NOISY_OUT}out\n`),
        stderr: brief(`${NOISY_ERR}err\n`),
      });

      const s = await m.spawnExec({ containerId: id, process: proc(["sh", "-c", "echo out; echo err >&2; exit 7"]) });
      let out = "";
      let err = "";
      const c = await m.attach(s.execId, { stdout: (d) => (out += new TextDecoder().decode(d)), stderr: (d) => (err += new TextDecoder().decode(d)) });
      expect(await c.exit).toBe(7);
      expect([brief(out), brief(err)]).toEqual([brief(`${NOISY_OUT}out\n`), brief(`${NOISY_ERR}err\n`)]);
    } finally {
      m.close();
    }
  });
});
