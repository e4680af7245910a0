// Devices on the compiled daemon with real runc: CDI devices from cdi_spec_dirs (JSON and YAML
// specs, later dirs overriding earlier ones, re-read when the dirs change) asked for by the CRI's
// CDI_devices and by cdi.k8s.io/<name> annotations, with their env, device nodes (major/minor
// read from the host), mounts, hooks and additional GIDs; an unknown CDI device refused naming it
// with nothing left behind; the io.kubernetes.cri-o.Devices pod annotation gated by the handler's
// allowed_annotations and by allowed_devices; device_ownership_from_security_context; and start-up
// errors for wrong values of these keys.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { startDaemon, tempDir } from "../harness.ts";
import { ctrConfig, podConfig, startEnv, type CtrConfig, type Env, type PodConfig } from "../support/pods.ts";

const files = tempDir("crio-cdi-");
const RUNC = Bun.which("runc") ?? "/usr/sbin/runc";
const P = {
  dirA: join(files.path, "cdi-a"),
  dirB: join(files.path, "cdi-b"),
  data: join(files.path, "data"),
  hook: join(files.path, "hook.sh"),
  marker: join(files.path, "hook-marker"),
};

let env: Env;
beforeAll(async () => {
  mkdirSync(P.dirA, { recursive: true });
  mkdirSync(P.dirB, { recursive: true });
  mkdirSync(P.data, { recursive: true });
  writeFileSync(join(P.data, "file"), "from-cdi\n");
  writeFileSync(P.hook, `#!/bin/sh\necho "$1" >> ${P.marker}\n`);
  chmodSync(P.hook, 0o755);
  // dir A, JSON, 0.6.0: a device node with no major/minor (read from the host's /dev/null), spec-wide
  // edits (env, a read-only bind mount, a createRuntime hook, an additional GID), and "shared" (overridden by B).
  writeFileSync(
    join(P.dirA, "vendor.json"),
    JSON.stringify({
      cdiVersion: "0.6.0",
      kind: "example.com/dev",
      containerEdits: {
        env: ["CDI_VENDOR=example"],
        mounts: [{ hostPath: P.data, containerPath: "/cdi-data", options: ["ro", "bind"] }],
        hooks: [{ hookName: "createRuntime", path: P.hook, args: ["hook.sh", "cdi-hook-ran"] }],
        additionalGIDs: [4242],
      },
      devices: [
        { name: "null0", containerEdits: { env: ["CDI_DEV=null0"], deviceNodes: [{ path: "/dev/cdi-null", hostPath: "/dev/null" }] } },
        { name: "shared", containerEdits: { env: ["SHARED=a"] } },
        { name: "ghost", containerEdits: { deviceNodes: [{ path: "/dev/ghost-absent-on-host" }] } },
      ],
    }),
  );
  // dir B, YAML, 0.8.0: "shared" again, which wins over dir A's.
  writeFileSync(
    join(P.dirB, "override.yaml"),
    [
      'cdiVersion: "0.8.0"',
      "kind: example.com/dev",
      "devices:",
      "  - name: shared",
      "    containerEdits:",
      "      env: [SHARED=b]",
      "      deviceNodes:",
      "        - path: /dev/cdi-loop",
      "          hostPath: /dev/loop-control",
      "          permissions: r",
      "",
    ].join("\n"),
  );
  writeFileSync(join(P.dirB, "broken.json"), "{ not json");
  const devs = [
    "[crio.runtime.runtimes.devs]",
    `runtime_path = ${JSON.stringify(RUNC)}`,
    `runtime_root = ${JSON.stringify(join(files.path, "devs-root"))}`,
    `allowed_annotations = ["io.kubernetes.cri-o.Devices"]`,
  ].join("\n");
  env = await startEnv({
    config: [
      "[crio.runtime]",
      `cdi_spec_dirs = ${JSON.stringify([P.dirA, P.dirB, join(files.path, "absent")])}`,
      `allowed_devices = ["/dev/loop-control", "/dev/null"]`,
      "device_ownership_from_security_context = true",
      devs,
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

async function pod(o: { handler?: string; annotations?: Record<string, string> } = {}) {
  const name = `dev${++seq}`;
  const p: PodConfig = podConfig(name, env.d.dir, { extra: { annotations: o.annotations ?? {} } });
  const { podSandboxId } = await env.d.cri.runPodSandbox({ config: p, runtimeHandler: o.handler ?? "" });
  return { name, p, podSandboxId };
}

async function running(extra: Partial<CtrConfig> = {}, o: { handler?: string; annotations?: Record<string, string> } = {}) {
  const { name, p, podSandboxId } = await pod(o);
  const { containerId } = await env.d.cri.createContainer({
    podSandboxId,
    config: ctrConfig(name, env.busybox, ["sleep", "3600"], extra, p),
    sandboxConfig: p,
  });
  await env.d.cri.startContainer({ containerId });
  const exec = async (c: string) => {
    const r = await env.d.cri.execSync({ containerId, cmd: ["sh", "-c", c], timeout: 20n });
    return { out: dec.decode(r.stdout).trim(), err: dec.decode(r.stderr).trim(), code: r.exitCode };
  };
  return { podSandboxId, containerId, exec };
}

const cdi = (...names: string[]) => ({ CDIDevices: names.map((name) => ({ name })) }) as Partial<CtrConfig>;

describe("CDI", () => {
  test("a device from CDI_devices: its node (major/minor from the host), env, mount, hook and GID reach the running container", async () => {
    const c = await running(cdi("example.com/dev=null0"));
    expect((await c.exec("stat -c '%t:%T %F' /dev/cdi-null")).out).toBe("1:3 character special file");
    expect((await c.exec("echo x > /dev/cdi-null && echo wrote")).out).toBe("wrote");
    expect((await c.exec("echo $CDI_DEV $CDI_VENDOR")).out).toBe("null0 example");
    expect((await c.exec("cat /cdi-data/file")).out).toBe("from-cdi");
    expect((await c.exec("touch /cdi-data/x")).err).toContain("Read-only file system");
    expect((await c.exec("grep ^Groups: /proc/self/status")).out.split(/\s+/)).toContain("4242");
    expect(readFileSync(P.marker, "utf8")).toContain("cdi-hook-ran");
    // the spec's own edits are applied once, not once per device
    const spec = JSON.parse(readFileSync(join(env.d.runroot, "containers", c.containerId, "config.json"), "utf8"));
    expect(spec.process.env.filter((e: string) => e === "CDI_VENDOR=example")).toHaveLength(1);
    expect(spec.linux.resources.devices).toContainEqual({ allow: true, type: "c", major: 1, minor: 3, access: "rwm" });
  });

  test("a device from a cdi.k8s.io annotation; a later spec dir (YAML) overrides an earlier one", async () => {
    const c = await running({ annotations: { "cdi.k8s.io/test": "example.com/dev=shared" } } as Partial<CtrConfig>);
    expect((await c.exec("echo $SHARED")).out).toBe("b");
    // permissions "r": readable, not writable (the device cgroup; runc's defaults do not cover 10:237)
    expect((await c.exec("stat -c '%t:%T' /dev/cdi-loop")).out).toBe("a:ed");
    expect((await c.exec("exec 3</dev/cdi-loop && echo read-ok")).out).toBe("read-ok");
    expect((await c.exec("exec 3>/dev/cdi-loop")).err).toContain("Operation not permitted");
    // dir A's spec-wide edits are not applied: dir B's spec holds the device
    expect((await c.exec('echo "[$CDI_VENDOR]"')).out).toBe("[]");
    expect(env.d.logs()).toContain("broken.json");
  });

  test("an unknown device is INVALID_ARGUMENT naming it, and nothing is left behind", async () => {
    const { name, p, podSandboxId } = await pod();
    const before = readdirSync(join(env.d.root, "storage")).length;
    const err = await env.d.cri
      .createContainer({
        podSandboxId,
        config: ctrConfig(name, env.busybox, ["sleep", "3600"], cdi("example.com/dev=null0", "example.com/dev=nope"), p),
        sandboxConfig: p,
      })
      .catch((e) => e);
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toContain("example.com/dev=nope");
    expect(err.details).not.toContain("example.com/dev=null0,");
    const bad = await env.d.cri
      .createContainer({
        podSandboxId,
        config: ctrConfig(name, env.busybox, ["true"], { annotations: { "cdi.k8s.io/x": "not-qualified" } } as Partial<CtrConfig>, p),
        sandboxConfig: p,
      })
      .catch((e) => e);
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.details).toContain('invalid CDI device name "not-qualified"');
    // a known device whose host node is missing fails while the spec is built: undone as well
    const ghost = await env.d.cri
      .createContainer({ podSandboxId, config: ctrConfig(name, env.busybox, ["true"], cdi("example.com/dev=ghost"), p), sandboxConfig: p })
      .catch((e) => e);
    expect(ghost.code).toBe(status.INVALID_ARGUMENT);
    expect(ghost.details).toContain('failed to stat CDI host device "/dev/ghost-absent-on-host"');
    expect((await env.d.cri.listContainers({ filter: { podSandboxId } })).containers).toEqual([]);
    expect(readdirSync(join(env.d.root, "storage")).length).toBe(before);
    // the name was not kept reserved
    const { containerId } = await env.d.cri.createContainer({
      podSandboxId,
      config: ctrConfig(name, env.busybox, ["true"], cdi("example.com/dev=null0"), p),
      sandboxConfig: p,
    });
    expect(containerId).toMatch(/^[0-9a-f]{64}$/);
  });

  test("specs written after start are found: the registry follows its dirs", async () => {
    const late = join(P.dirA, "late.yaml");
    writeFileSync(late, 'cdiVersion: "0.5.0"\nkind: example.com/late\ndevices:\n  - name: one\n    containerEdits:\n      env: ["LATE=1"]\n');
    const c = await running(cdi("example.com/late=one"));
    expect((await c.exec("echo $LATE")).out).toBe("1");
    writeFileSync(late, 'cdiVersion: "0.5.0"\nkind: example.com/late\ndevices:\n  - name: one\n    containerEdits:\n      env: ["LATE=2"]\n');
    const d = await running(cdi("example.com/late=one"));
    expect((await d.exec("echo $LATE")).out).toBe("2");
  });
});

describe("io.kubernetes.cri-o.Devices and allowed_devices", () => {
  test("a handler that allows the annotation gets the devices; one that does not ignores it", async () => {
    const ann = { "io.kubernetes.cri-o.Devices": "/dev/loop-control:/dev/ann-loop:r,/dev/null" };
    const c = await running({}, { handler: "devs", annotations: ann });
    expect((await c.exec("stat -c '%t:%T' /dev/ann-loop")).out).toBe("a:ed");
    expect((await c.exec("exec 3</dev/ann-loop && echo read-ok")).out).toBe("read-ok");
    expect((await c.exec("exec 3>/dev/ann-loop")).err).toContain("Operation not permitted");
    // annotation devices keep the host's owner (ownership applies to the CRI's devices only)
    expect((await c.exec("stat -c '%u:%g' /dev/ann-loop")).out).toBe("0:0");
    const d = await running({}, { annotations: ann }); // default handler runc: not allowed
    expect((await d.exec("test -e /dev/ann-loop && echo present || echo absent")).out).toBe("absent");
  });

  test("a device outside allowed_devices, or a container path outside /dev, is INVALID_ARGUMENT", async () => {
    for (const [value, why] of [
      ["/dev/full", "device /dev/full is specified but is not in allowed_devices"],
      ["/dev/null:/tmp/null", "the container path must be under /dev/"],
    ]) {
      const { name, p, podSandboxId } = await pod({ handler: "devs", annotations: { "io.kubernetes.cri-o.Devices": value! } });
      const err = await env.d.cri.createContainer({ podSandboxId, config: ctrConfig(name, env.busybox, ["true"], {}, p), sandboxConfig: p }).catch((e) => e);
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toContain(why);
    }
  });
});

describe("device_ownership_from_security_context", () => {
  const owned = { devices: [{ hostPath: "/dev/null", containerPath: "/dev/owned-null", permissions: "rw" }] } as Partial<CtrConfig>;

  test("a non-privileged container's CRI devices are owned by its user and group", async () => {
    const c = await running({ ...owned, linux: { securityContext: { runAsUser: { value: 1234n }, runAsGroup: { value: 5678n } } } } as Partial<CtrConfig>);
    expect((await c.exec("stat -c '%u:%g %t:%T' /dev/owned-null")).out).toBe("1234:5678 1:3");
    expect((await c.exec("echo x > /dev/owned-null && echo wrote")).out).toBe("wrote");
  });

  test("a privileged container's devices keep the host's owner", async () => {
    const name = `dev${++seq}`;
    const p = podConfig(name, env.d.dir);
    p.linux!.securityContext!.privileged = true;
    const { podSandboxId } = await env.d.cri.runPodSandbox({ config: p });
    const cfg = ctrConfig(
      name,
      env.busybox,
      ["sleep", "3600"],
      { ...owned, linux: { securityContext: { privileged: true, runAsUser: { value: 1234n } } } } as Partial<CtrConfig>,
      p,
    );
    const { containerId } = await env.d.cri.createContainer({ podSandboxId, config: cfg, sandboxConfig: p });
    await env.d.cri.startContainer({ containerId });
    const r = await env.d.cri.execSync({ containerId, cmd: ["stat", "-c", "%u:%g", "/dev/owned-null"], timeout: 20n });
    expect(dec.decode(r.stdout).trim()).toBe("0:0");
  });
});

describe("wrong values stop the daemon naming the key", () => {
  test("cdi_spec_dirs, allowed_devices, additional_devices", async () => {
    for (const [toml, key] of [
      ['[crio.runtime]\ncdi_spec_dirs = ["relative/cdi"]\n', "crio.runtime.cdi_spec_dirs"],
      ['[crio.runtime]\nallowed_devices = ["dev/fuse"]\n', "crio.runtime.allowed_devices"],
      ['[crio.runtime]\nadditional_devices = ["/dev/null:relative"]\n', "crio.runtime.additional_devices"],
      ['[crio.runtime]\ndevice_ownership_from_security_context = "yes"\n', "device_ownership_from_security_context"],
    ] as const) {
      await using d = await startDaemon({ config: toml, noWait: true });
      expect(await d.proc.exited).toBe(1);
      const line = d
        .logs()
        .split("\n")
        .find((l) => l.includes("invalid configuration"));
      expect(line).toContain(key);
    }
  });

  test("additional_devices naming no host device: the daemon does not start", async () => {
    await using d = await startDaemon({ config: '[crio.runtime]\nadditional_devices = ["/dev/no-such-device:/dev/x:rw"]\n', noWait: true });
    expect(await d.proc.exited).toBe(1);
    const line = d
      .logs()
      .split("\n")
      .find((l) => l.includes("cannot start"));
    expect(line).toContain('invalid additional_devices entry \\"/dev/no-such-device:/dev/x:rw\\"');
    expect(line).toContain("no such file or directory");
  });
});
