// Node-wide security settings of crio.conf on the compiled daemon with real runc: seccomp_profile
// replacing the built-in RuntimeDefault (and refusing a missing or invalid file),
// seccomp_use_default_when_empty, default_ulimits,
// additional_devices, read_only, and OCI hooks from hooks_dir (containers-common hooks.d files).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SecurityProfile_ProfileType as Profile } from "../../src/gen/runtime/v1/api_pb.ts";
import { startDaemon, tempDir, waitFor } from "../harness.ts";
import { ctrConfig, podConfig, startEnv, type CtrConfig, type Env } from "../support/pods.ts";

const files = tempDir("crio-secconf-");
const P = {
  profile: join(files.path, "deny-mkdir.json"),
  profile2: join(files.path, "deny-rmdir.json"),
  hooksA: join(files.path, "hooks-a"),
  hooksB: join(files.path, "hooks-b"),
  hookScript: join(files.path, "hook.sh"),
  marker: join(files.path, "marker"),
};
const DENY_MKDIR = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }] };

/** A hooks.d file (version 1.0.0) running hook.sh with `tag`. */
function hookFile(dir: string, name: string, tag: string, when: object, stages: string[]) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), JSON.stringify({ version: "1.0.0", hook: { path: P.hookScript, args: ["hook.sh", tag], timeout: 10 }, when, stages }));
}

let env: Env;
beforeAll(async () => {
  writeFileSync(P.profile, JSON.stringify(DENY_MKDIR));
  // The hook reads the container state from stdin and appends "<tag> <status> <id>" to the marker.
  writeFileSync(
    P.hookScript,
    `#!/bin/sh\nstate=$(cat)\nstatus=$(echo "$state" | sed -n 's/.*"status": *"\\([a-z]*\\)".*/\\1/p')\nid=$(echo "$state" | sed -n 's/.*"id": *"\\([0-9a-f]*\\)".*/\\1/p')\necho "$1 $status $id" >> ${P.marker}\n`,
  );
  chmodSync(P.hookScript, 0o755);
  hookFile(P.hooksA, "10-always.json", "masked-by-b", { always: true }, ["prestart"]);
  hookFile(P.hooksB, "10-always.json", "prestart", { always: true }, ["prestart"]);
  hookFile(P.hooksA, "20-post.json", "post", { always: true }, ["poststart", "poststop"]);
  hookFile(P.hooksA, "30-annotated.json", "annotated", { annotations: { "^io\\.example\\.hook$": "^yes$" } }, ["createRuntime"]);
  hookFile(P.hooksA, "40-command.json", "command", { commands: ["^sleep$"] }, ["poststart"]);
  writeFileSync(join(P.hooksA, "50-broken.json"), "{ not json");
  env = await startEnv({
    config: [
      "[crio.runtime]",
      `seccomp_profile = ${JSON.stringify(P.profile)}`,
      "seccomp_use_default_when_empty = true",
      `default_ulimits = ["nofile=1024:2048"]`,
      `additional_devices = ["/dev/loop-control:/dev/extra-loop:r"]`,
      `hooks_dir = ${JSON.stringify([P.hooksA, P.hooksB])}`,
      "",
    ].join("\n"),
  });
  await env.d.cri.pullImage({ image: { image: env.busybox } });
}, 120_000);
afterAll(async () => {
  await env?.[Symbol.asyncDispose]();
  files[Symbol.dispose]();
});

const dec = new TextDecoder();
let seq = 0;

async function running(extra: Partial<CtrConfig> = {}, cmd = ["sleep", "3600"]) {
  const name = `conf${++seq}`;
  const pod = podConfig(name, env.d.dir);
  const { podSandboxId } = await env.d.cri.runPodSandbox({ config: pod });
  const { containerId } = await env.d.cri.createContainer({ podSandboxId, config: ctrConfig(name, env.busybox, cmd, extra, pod), sandboxConfig: pod });
  await env.d.cri.startContainer({ containerId });
  const exec = async (c: string) => {
    const r = await env.d.cri.execSync({ containerId, cmd: ["sh", "-c", c], timeout: 20n });
    return { out: dec.decode(r.stdout).trim(), err: dec.decode(r.stderr).trim(), code: r.exitCode };
  };
  return { podSandboxId, containerId, exec };
}

const seccomp = (profileType: Profile) => ({ linux: { securityContext: { seccomp: { profileType, localhostRef: "" } } } }) as Partial<CtrConfig>;

describe("seccomp_profile", () => {
  test("replaces the built-in RuntimeDefault profile", async () => {
    const c = await running(seccomp(Profile.RuntimeDefault));
    expect((await c.exec("grep ^Seccomp: /proc/self/status")).out).toBe("Seccomp:\t2");
    const r = await c.exec("mkdir /tmp/d");
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("Operation not permitted");
    // The built-in profile would have refused this; the configured one allows it.
    expect((await c.exec("unshare -U true && echo allowed")).out).toBe("allowed");
    const u = await running(seccomp(Profile.Unconfined));
    expect((await u.exec("mkdir /tmp/d && echo made")).out).toBe("made");
  });

  test("seccomp_use_default_when_empty: a container naming no profile gets RuntimeDefault", async () => {
    const c = await running();
    expect((await c.exec("grep ^Seccomp: /proc/self/status")).out).toBe("Seccomp:\t2");
    expect((await c.exec("mkdir /tmp/d")).err).toContain("Operation not permitted");
  });

  test("a reload naming a file that fails to load keeps the previous profile, with an error", async () => {
    writeFileSync(join(env.d.configDir, "50-reload.conf"), `[crio.runtime]\nseccomp_profile = ${JSON.stringify(join(files.path, "missing.json"))}\n`);
    env.d.proc.kill("SIGHUP");
    await env.d.waitForLog(/set config seccomp_profile/);
    const c = await running(seccomp(Profile.RuntimeDefault));
    expect((await c.exec("mkdir /tmp/d")).err).toContain("Operation not permitted");
    await env.d.waitForLog(/invalid seccomp_profile .*missing\.json.*keeping the previous profile/);
    // A valid new profile is taken on the next reload.
    writeFileSync(P.profile2, JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["rmdir"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }] }));
    writeFileSync(join(env.d.configDir, "50-reload.conf"), `[crio.runtime]\nseccomp_profile = ${JSON.stringify(P.profile2)}\n`);
    const before = env.d.logs().length;
    env.d.proc.kill("SIGHUP");
    await waitFor(() => env.d.logs().slice(before).includes("set config seccomp_profile"), 10_000, "the second reload");
    const d = await running(seccomp(Profile.RuntimeDefault));
    expect((await d.exec("mkdir /tmp/d && echo made")).out).toBe("made");
    expect((await d.exec("rmdir /tmp/d")).err).toContain("Operation not permitted");
  });

  test("a missing or invalid seccomp_profile at start stops the daemon with a clear error", async () => {
    const bad = join(files.path, "bad.json");
    writeFileSync(bad, JSON.stringify({ defaultAction: "SCMP_ACT_NOPE" }));
    for (const [path, why] of [
      [join(files.path, "absent.json"), "no such file or directory"],
      [bad, "has an invalid defaultAction"],
    ] as const) {
      await using d = await startDaemon({ config: `[crio.runtime]\nseccomp_profile = ${JSON.stringify(path)}\n`, noWait: true });
      expect(await d.proc.exited).toBe(1);
      const line = d
        .logs()
        .split("\n")
        .find((l) => l.includes("cannot start"));
      expect(line).toContain(`invalid seccomp_profile \\"${path}\\"`);
      expect(line).toContain(why);
    }
  });
});

describe("other node-wide settings", () => {
  test("default_ulimits become the container's rlimits", async () => {
    const c = await running();
    // The container's own process (pid 1), not the exec'd shell: runc 1.1.5 (Debian's) sets an
    // exec'd process's NOFILE from outside while Go's start-up raises it, and now and then Go
    // wins (runc#4195, fixed in runc 1.1.13), so an exec may see a soft limit of 2048.
    expect((await c.exec("grep 'open files' /proc/1/limits")).out).toMatch(/^Max open files\s+1024\s+2048\s+files$/);
  });

  test("additional_devices are added to every container with their permissions", async () => {
    const c = await running();
    expect((await c.exec("stat -c '%t:%T %F' /dev/extra-loop")).out).toBe("a:ed character special file");
    expect((await c.exec("exec 3</dev/extra-loop && echo read-ok")).out).toBe("read-ok");
    expect((await c.exec("exec 3>/dev/extra-loop")).err).toContain("Operation not permitted");
  });
});

describe("OCI hooks from hooks_dir", () => {
  const markerLines = () => (existsSync(P.marker) ? readFileSync(P.marker, "utf8").trim().split("\n") : []);
  const linesOf = (id: string) =>
    markerLines()
      .filter((l) => l.endsWith(` ${id}`))
      .map((l) => l.split(" ").slice(0, 2).join(" "));

  test("prestart and poststart run at start, poststop at removal; later dirs mask earlier ones; conditions select", async () => {
    const c = await running({ annotations: { "io.example.hook": "yes" } } as Partial<CtrConfig>);
    await waitFor(() => linesOf(c.containerId).length >= 4, 10_000, "the hooks to run");
    // File-name order within a stage; prestart is injected as createRuntime (containers-common).
    // runc hands poststart hooks the state it had before the process ran ("created").
    expect(linesOf(c.containerId)).toEqual(["prestart creating", "annotated creating", "post created", "command created"]);
    await env.d.cri.stopContainer({ containerId: c.containerId, timeout: 0n });
    await env.d.cri.removeContainer({ containerId: c.containerId });
    await waitFor(() => linesOf(c.containerId).includes("post stopped"), 10_000, "the poststop hook");
    expect(markerLines().some((l) => l.startsWith("masked-by-b"))).toBe(false);

    // No annotation and another command: only the "always" hooks.
    const d = await running({}, ["sh", "-c", "exec sleep 3600"]);
    await waitFor(() => linesOf(d.containerId).length >= 2, 10_000, "the hooks to run");
    expect(linesOf(d.containerId)).toEqual(["prestart creating", "post created"]);
    expect(env.d.logs()).toContain("50-broken.json");
  });
});

describe("read_only", () => {
  test("every container gets a read-only rootfs with writable tmpfs /run, /tmp and /var/tmp", async () => {
    await using d = await startEnv({ config: "[crio.runtime]\nread_only = true\n" });
    await d.d.cri.pullImage({ image: { image: d.busybox } });
    const pod = podConfig("ro", d.d.dir);
    const { podSandboxId } = await d.d.cri.runPodSandbox({ config: pod });
    const { containerId } = await d.d.cri.createContainer({ podSandboxId, config: ctrConfig("ro", d.busybox, ["sleep", "3600"], {}, pod), sandboxConfig: pod });
    await d.d.cri.startContainer({ containerId });
    const r = await d.d.cri.execSync({
      containerId,
      cmd: ["sh", "-c", "touch /etc/x 2>&1; for p in /run /tmp /var/tmp; do touch $p/x && echo $p ok; done; grep ' /tmp ' /proc/self/mounts | cut -d' ' -f3"],
      timeout: 10n,
    });
    expect(dec.decode(r.stdout).trim().split("\n")).toEqual(["touch: /etc/x: Read-only file system", "/run ok", "/tmp ok", "/var/tmp ok", "tmpfs"]);
  });
});
