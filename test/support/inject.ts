// Crash injection at chosen steps (issue #17), shared by test/e2e/robust-inject.test.ts (runc and
// monitor killed at a step) and test/e2e/robust-powercut.test.ts (the daemon killed at a step, a
// power cut): runc is a wrapper (runtime_path) that, when a test arms it, stops at one verb —
// before running the real runc, or after it finished and before it reports — until released.
import { status } from "@grpc/grpc-js";
import { expect } from "bun:test";
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ContainerState } from "../../src/gen/runtime/v1/api_pb.ts";
import { startDaemon, waitFor, type TestDaemon } from "../harness.ts";
import { ctrConfig, podConfig, startEnv, type Env } from "./pods.ts";
import { truthAndLeaks } from "./crash-churn.ts";
import { cleanupNet, pluginDir, testNet } from "./network.ts";

export type Verb = "create" | "start" | "exec";
export type Phase = "before" | "after";

/** The state the tests share: the daemon that runs now (restarted where a test killed it), its pod, the wrapper's control dir. */
export const S = {} as {
  env: Env;
  d: TestDaemon;
  podId: string;
  pod: ReturnType<typeof podConfig>;
  ctl: string;
  plugins: ReturnType<typeof pluginDir>;
  net: ReturnType<typeof testNet>;
};
/** A runtime or monitor failure: UNKNOWN for the runtime's own error (as CRI-O's plain errors), INTERNAL otherwise. */
export const RUNTIME_FAILED = [status.UNKNOWN, status.INTERNAL];

/** The wrapper: holds the first call of an armed verb (hold-<verb> holds the phase) until `release` exists. */
export function wrapper(dir: string): string {
  const real = Bun.which("runc") ?? "/usr/sbin/runc";
  const path = join(dir, "runc-hold");
  writeFileSync(
    path,
    `#!/bin/sh
ctl=${JSON.stringify(dir)}
verb=
for a in "$@"; do case $a in create|start|exec|kill|delete|state|list|features|update|pause|resume|ps|events) verb=$a; break ;; esac; done
if [ -n "$verb" ] && mv "$ctl/hold-$verb" "$ctl/taken-$verb" 2>/dev/null; then
  phase=$(cat "$ctl/taken-$verb")
  rc=0
  if [ "$phase" = after ]; then ${real} "$@"; rc=$?; fi
  echo $$ > "$ctl/held.tmp" && mv "$ctl/held.tmp" "$ctl/held"
  while [ ! -e "$ctl/release" ]; do sleep 0.05; done
  rm -f "$ctl/release"
  [ "$phase" = after ] && exit $rc
fi
exec ${real} "$@"
`,
  );
  chmodSync(path, 0o755);
  return path;
}

/** Arms `verb` at `phase`; resolves to the held wrapper's pid once a call reached it. */
export async function hold(verb: Verb, phase: Phase, what: Promise<unknown>): Promise<number> {
  const pid = await waitFor(
    async () => {
      if (existsSync(join(S.ctl, "held"))) return Number(readFileSync(join(S.ctl, "held"), "utf8").trim()) || undefined;
      // the call ended without reaching the verb: say how
      const early = await Promise.race([
        what.then(
          (v) => ({ v }),
          (e) => ({ e }),
        ),
        Bun.sleep(0).then(() => undefined),
      ]);
      if (early) throw new Error(`the call ended before ${verb} was held: ${JSON.stringify(early)}`);
      return undefined;
    },
    60_000,
    `runc ${verb} held ${phase}`,
  );
  rmSync(join(S.ctl, "held"));
  return pid;
}

export function arm(verb: Verb, phase: Phase): void {
  for (const f of ["held", "release"]) rmSync(join(S.ctl, f), { force: true });
  writeFileSync(join(S.ctl, `hold-${verb}`), phase);
}

export function release(): void {
  writeFileSync(join(S.ctl, "release"), "");
}

export function parentOf(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[1]);
}

export function kill(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {}
}

/** The gRPC code a call ended with (0 when it succeeded). */
export async function codeOf(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
    return { code: 0, message: "" };
  } catch (e) {
    const x = e as { code?: number; details?: string; message?: string };
    if (process.env.INJECT_VERBOSE) console.log(`code ${x.code}: ${x.details ?? x.message}`);
    return { code: x.code ?? -1, message: x.details ?? x.message ?? String(e) };
  }
}

export async function restart(): Promise<void> {
  S.d.cri.close();
  S.d = await startDaemon({ dir: S.env.d.dir });
}

export async function killDaemon(): Promise<void> {
  S.d.proc.kill("SIGKILL");
  await S.d.proc.exited;
}

export async function running(name: string): Promise<string> {
  const { containerId } = await S.d.cri.createContainer({
    podSandboxId: S.podId,
    config: ctrConfig(name, S.env.busybox, ["sh", "-c", "while :; do echo tick; sleep 1; done"], {}, S.pod),
    sandboxConfig: S.pod,
  });
  await S.d.cri.startContainer({ containerId });
  return containerId;
}

export async function created(name: string): Promise<string> {
  const { containerId } = await S.d.cri.createContainer({
    podSandboxId: S.podId,
    config: ctrConfig(name, S.env.busybox, ["sleep", "3600"], {}, S.pod),
    sandboxConfig: S.pod,
  });
  return containerId;
}

export function createCall(name: string): Promise<{ containerId: string }> {
  return S.d.cri.createContainer(
    { podSandboxId: S.podId, config: ctrConfig(name, S.env.busybox, ["sleep", "3600"], {}, S.pod), sandboxConfig: S.pod },
    { timeoutMs: 120_000 },
  );
}

/** Truthful states and no leaks; also: no held wrapper or runc of ours left running. */
export async function expectConsistent(): Promise<void> {
  expect(await truthAndLeaks(S.d, S.net.ipamDir)).toEqual([]);
}

/** Truthful states and no leaks within 20 s (a monitor's death is noticed by the 5 s watchdog). */
export async function eventuallyConsistent(what: string): Promise<void> {
  let last: string[] = [];
  for (const end = Date.now() + 20_000; Date.now() < end; await Bun.sleep(500)) if ((last = await truthAndLeaks(S.d, S.net.ipamDir)).length === 0) return;
  expect({ what, violations: last }).toEqual({ what, violations: [] });
}

export async function stateOf(id: string): Promise<string> {
  const st = (await S.d.cri.containerStatus({ containerId: id })).status!;
  return ContainerState[st.state]!;
}

/** Starts the registry, the network and the daemon with runc behind the holding wrapper, a pulled busybox and a host-network pod. */
export async function setUp(): Promise<void> {
  S.net = testNet({ dualStack: false });
  S.env = await startEnv({ logLevel: "info", cniConf: S.net.conflist });
  S.ctl = S.env.d.dir;
  const runc = wrapper(S.ctl);
  S.env.d.cri.close();
  await S.env.d.stop("SIGTERM");
  S.plugins = pluginDir(join(S.ctl, "cni-bin"));
  writeFileSync(
    join(S.env.d.configDir, "10-hold.conf"),
    `[crio.runtime.runtimes.runc]\nruntime_path = ${JSON.stringify(runc)}\n[crio.network]\nplugin_dirs = [${JSON.stringify(S.plugins.dir)}]\n`,
  );
  S.d = await startDaemon({ dir: S.env.d.dir, logLevel: "info" });
  await S.d.cri.pullImage({ image: { image: S.env.busybox } });
  S.pod = podConfig("inject", S.d.dir);
  S.podId = (await S.d.cri.runPodSandbox({ config: S.pod })).podSandboxId;
}

/** Removes every pod, stops the daemon, removes the network. */
export async function tearDown(): Promise<void> {
  release();
  if (S.d.proc.exitCode === null && S.d.proc.signalCode === null) {
    const { items } = await S.d.cri.listPodSandbox({}).catch(() => ({ items: [] }));
    for (const p of items) await S.d.cri.removePodSandbox({ podSandboxId: p.id }).catch(() => {});
    S.d.cri.close();
    await S.d.stop("SIGTERM");
  }
  S.env.d = S.d; // the env's clean-up stops the daemon that runs now
  await S.env[Symbol.asyncDispose]();
  await cleanupNet(S.net);
}
