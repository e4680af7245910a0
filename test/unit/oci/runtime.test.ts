// The runtime driver against a fake runtime: a shell script that records its argv and stdin and
// answers with runc's (or crun's) real texts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { classify, OciRuntime } from "../../../src/oci/runtime.ts";
import { ExecError } from "../../../src/sys/exec.ts";

let dir = "";
let log = "";

/** A fake runtime: argv lines go to $dir/calls, stdin to $dir/stdin; behaviour by subcommand and id. */
function fakeRuntime(name: string): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    `#!/bin/sh
echo "$*" >> ${dir}/calls
# skip global flags
while [ "$1" = "--root" ] || [ "$1" = "--systemd-cgroup" ]; do
  if [ "$1" = "--root" ]; then shift 2; else shift; fi
done
cmd="$1"; shift
last=""; special=""
for a in "$@"; do last="$a"; case "$a" in missing|stopped|exists|broken) special="$a";; esac; done
case "$cmd" in
  --version) printf '${name} version 1.8.1\\ncommit: f8a096be\\nspec: 1.0.0\\n+SYSTEMD +SECCOMP\\n'; exit 0;;
  features) ${name === "runc" ? `echo '{"ociVersionMax":"1.0.2-dev","mountOptions":["bind","rro"],"linux":{"namespaces":["pid","network"],"cgroup":{"v1":true,"v2":true,"systemd":true},"seccomp":{"enabled":true},"apparmor":{"enabled":true},"selinux":{"enabled":false}}}'; exit 0` : `echo "unknown command features" >&2; exit 1`};;
  list) echo '[{"id":"a","pid":10,"status":"running","bundle":"/b/a"}]'; exit 0;;
  update) cat > ${dir}/stdin; exit 0;;
esac
case "$special" in
  missing)
    if [ "${name}" = "crun" ]; then echo "error opening file \\\`/run/crun/missing/status\\\`: No such file or directory" >&2;
    else echo 'time="2026-11-29T09:06:37Z" level=error msg="container does not exist"' >&2; fi; exit 1;;
  stopped) echo 'time="2026-11-29T09:06:37Z" level=error msg="container not running"' >&2; exit 1;;
  exists) echo 'time="2026-11-29T09:06:37Z" level=error msg="container with id exists: exists"' >&2; echo "already exists" >&2; exit 1;;
  broken) echo 'time="x" level=error msg="unable to freeze: \\"weird\\""' >&2; exit 1;;
esac
case "$cmd" in
  state) echo '{"ociVersion":"1.0.2-dev","id":"'"$last"'","pid":4242,"status":"running","bundle":"/b/'"$last"'","rootfs":"/r","created":"2026-11-29T06:47:05Z"}';;
esac
exit 0
`,
  );
  chmodSync(path, 0o755);
  return path;
}

const calls = () => readFileSync(log, "utf8").trim().split("\n");

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "oci-runtime-test-"));
  log = join(dir, "calls");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("OciRuntime (runc)", () => {
  const rt = () => new OciRuntime({ name: "runc", path: fakeRuntime("runc"), root: "/run/runc-test", systemdCgroup: true });

  test("argv of every verb carries --root and the cgroup driver flag", async () => {
    writeFileSync(log, "");
    const r = rt();
    await r.start("c1");
    await r.kill("c1", "SIGTERM");
    await r.kill("c1", 9, true);
    await r.pause("c1");
    await r.resume("c1");
    await r.delete("c1", { force: true });
    expect(calls()).toEqual([
      "--root /run/runc-test --systemd-cgroup start c1",
      "--root /run/runc-test --systemd-cgroup kill c1 SIGTERM",
      "--root /run/runc-test --systemd-cgroup kill --all c1 9",
      "--root /run/runc-test --systemd-cgroup pause c1",
      "--root /run/runc-test --systemd-cgroup resume c1",
      "--root /run/runc-test --systemd-cgroup delete --force c1",
    ]);
  });

  test("its commands come from the one builder, with the cgroup driver flag", () => {
    expect(rt().command.prefix).toEqual([join(dir, "runc"), "--root", "/run/runc-test", "--systemd-cgroup"]);
    expect(new OciRuntime({ name: "runc", path: "/usr/bin/runc", root: "/run/runc" }).command.prefix).toEqual(["/usr/bin/runc", "--root", "/run/runc"]);
  });

  test("state: parsed, or undefined when the container does not exist", async () => {
    const r = rt();
    expect(await r.state("c1")).toMatchObject({ id: "c1", pid: 4242, status: "running", bundle: "/b/c1" });
    expect(await r.state("missing")).toBeUndefined();
    // the state root holds something: the runtime is asked
    const root = join(dir, "state-root");
    mkdirSync(join(root, "a"), { recursive: true });
    const listing = new OciRuntime({ name: "runc", path: fakeRuntime("runc"), root });
    expect(await listing.list()).toEqual([{ id: "a", pid: 10, status: "running", bundle: "/b/a" }] as never);
  });

  test("list: a missing or empty state root holds no container; the runtime is not started", async () => {
    writeFileSync(log, "");
    const empty = join(dir, "empty-root");
    mkdirSync(empty, { recursive: true });
    expect(await new OciRuntime({ name: "runc", path: fakeRuntime("runc"), root: join(dir, "no-such-root") }).list()).toEqual([]);
    expect(await new OciRuntime({ name: "runc", path: fakeRuntime("runc"), root: empty }).list()).toEqual([]);
    expect(readFileSync(log, "utf8")).toBe("");
  });

  test("errors map to kinds with the runtime's message", async () => {
    const r = rt();
    await expect(r.kill("missing", "KILL")).rejects.toMatchObject({ kind: "not-found", message: "runc kill missing: container does not exist" });
    await expect(r.kill("stopped", "KILL")).rejects.toMatchObject({ kind: "failed-precondition", message: "runc kill stopped: container not running" });
    await expect(r.start("exists")).rejects.toMatchObject({ kind: "already-exists" });
    await expect(r.pause("broken")).rejects.toMatchObject({ kind: "internal", message: 'runc pause broken: unable to freeze: "weird"' });
    await r.delete("missing"); // idempotent
  });

  test("update sends the resources as JSON on stdin", async () => {
    writeFileSync(log, "");
    await rt().update("c1", { cpu: { shares: 256 }, memory: { limit: 1 << 27 } });
    expect(calls()).toEqual(["--root /run/runc-test --systemd-cgroup update --resources - c1"]);
    expect(JSON.parse(readFileSync(join(dir, "stdin"), "utf8"))).toEqual({ cpu: { shares: 256 }, memory: { limit: 1 << 27 } });
  });

  test("features from `runc features`; version facts", async () => {
    const f = await rt().features();
    expect(f).toMatchObject({ source: "features", rro: true, idmap: false, seccomp: true, apparmor: true, selinux: false, namespaces: ["pid", "network"] });
    expect(await rt().version()).toEqual({ name: "runc", version: "1.8.1", commit: "f8a096be", spec: "1.0.0" });
  });

  test("a missing binary is unavailable", async () => {
    const r = new OciRuntime({ name: "runc", path: join(dir, "no-such-runtime"), root: "/run/x" });
    await expect(r.start("c1")).rejects.toMatchObject({ kind: "unavailable" });
  });
});

describe("OciRuntime (crun)", () => {
  const rt = () => new OciRuntime({ name: "crun", path: fakeRuntime("crun"), root: "/run/crun-test" });

  test("crun's not-found wording; update reads /dev/stdin", async () => {
    expect(await rt().state("missing")).toBeUndefined();
    writeFileSync(log, "");
    await rt().update("c1", { pids: { limit: 10 } });
    expect(calls()).toEqual(["--root /run/crun-test update --resources /dev/stdin c1"]);
  });

  test("no `features` command: a static record by version", async () => {
    expect(await rt().features()).toMatchObject({ source: "static", rro: true, idmap: true });
  });
});

test("classify keeps non-exec errors' kinds", () => {
  expect(classify(new Error("boom"), "runc", "start", "x").kind).toBe("unknown");
  expect(classify(new ExecError(["runc"], 1, "container with id exists"), "runc", "create", "x").kind).toBe("internal");
  expect(classify(new ExecError(["runc"], 1, "open /run/runc/x/state.json: no such file or directory: container does not exist"), "runc", "state").kind).toBe(
    "not-found",
  );
});
