import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { ContainerConfigSchema, DeviceSchema, PodSandboxConfigSchema } from "../../../../src/gen/runtime/v1/api_pb.ts";
import { buildContainerSpec, type ContainerSpecResult } from "../../../../src/container/spec/index.ts";
import { specToJson } from "../../../../src/oci/bundle.ts";
import { containerConfig, expectGolden, fakeHost, fakeIo, sandboxConfig, specInput } from "./fixtures.ts";

/** The result with the (separately pinned) seccomp filter summarised. */
function summary(r: ContainerSpecResult): unknown {
  const spec = JSON.parse(specToJson(r.spec));
  if (spec.linux?.seccomp) spec.linux.seccomp = { defaultAction: spec.linux.seccomp.defaultAction, rules: spec.linux.seccomp.syscalls.length };
  return { ...r, spec };
}

describe("buildContainerSpec", () => {
  test("the fixture container in the fixture pod (golden)", () => {
    const r = buildContainerSpec(specInput());
    expectGolden("spec-container", summary(r));
    expect(r.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [1000, 10, 29] });
    expect(r.stopSignal).toBe("SIGQUIT");
    expect(r.seccompRef).toBe("RuntimeDefault");
    expect(r.spec.process?.noNewPrivileges).toBe(true);
  });

  test("a privileged container with host namespaces in a privileged pod (golden)", () => {
    const r = buildContainerSpec(
      specInput({
        config: containerConfig("spec-container-privileged.json"),
        sandbox: {
          ...specInput().sandbox,
          config: sandboxConfig("spec-sandbox-privileged.json"),
          hostname: "node-1",
          namespaces: { network: "host", ipc: "host", uts: "host", pid: "host" },
          shmPath: undefined,
          hostsPath: undefined,
          cgroupParent: "kubepods-besteffort.slice",
        },
        cgroupManager: "systemd",
        io: fakeIo({ devices: { "/dev/fuse": [{ type: "c", path: "/dev/fuse", major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 }] } }),
      }),
    );
    expectGolden("spec-container-privileged", summary(r));
    expect(r.spec.linux?.seccomp).toBeUndefined();
    expect(r.spec.hostname).toBeUndefined();
    expect(r.spec.linux?.maskedPaths).toEqual([]);
    expect(r.spec.process?.capabilities?.bounding).not.toContain("CAP_SYS_RESOURCE");
  });

  test("privileged_without_host_devices: a privileged container of that handler gets no host devices", () => {
    const priv = (runtimeHandler: string, without: string[]) =>
      buildContainerSpec(
        specInput({
          config: containerConfig("spec-container-privileged.json"),
          sandbox: { ...specInput().sandbox, config: sandboxConfig("spec-sandbox-privileged.json"), runtimeHandler },
          defaults: { ...specInput().defaults, privilegedWithoutHostDevices: without },
          io: fakeIo({ devices: { "/dev/fuse": [{ type: "c", path: "/dev/fuse", major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 }] } }),
        }),
      );
    const plain = priv("runc", ["kata"]);
    expect(plain.spec.linux?.devices?.map((d) => d.path)).toContain("/dev/kmsg");
    expect(plain.spec.linux?.resources?.devices).toEqual([{ allow: true, access: "rwm" }]);
    const without = priv("kata", ["kata"]);
    expect(without.spec.linux?.devices?.map((d) => d.path)).toEqual(["/dev/fuse"]); // only the CRI's device
    expect(without.spec.linux?.resources?.devices).toEqual([
      { allow: false, access: "rwm" },
      { allow: true, type: "c", major: 10, minor: 229, access: "rw" },
    ]);
    expect(without.spec.process?.capabilities?.bounding).toEqual(plain.spec.process?.capabilities?.bounding);
  });

  test("the pod's Devices annotation (allowed_devices) and device_ownership_from_security_context reach the spec", () => {
    const fuse = { type: "c" as const, path: "/dev/fuse", major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 };
    const io = fakeIo({ devices: { "/dev/fuse": [fuse] } });
    const cfg = containerConfig();
    cfg.devices = [create(DeviceSchema, { hostPath: "/dev/fuse", containerPath: "/dev/my-fuse", permissions: "rw" })];
    const sb = { ...specInput().sandbox, config: { ...sandboxConfig(), annotations: { "io.kubernetes.cri-o.Devices": "/dev/fuse:/dev/pod-fuse:r" } } };
    const build = (ownership: boolean) =>
      buildContainerSpec(
        specInput({
          config: cfg,
          sandbox: sb,
          io,
          defaults: { ...specInput().defaults, allowedDevices: ["/dev/fuse"], deviceOwnershipFromSecurityContext: ownership },
        }),
      );
    const on = build(true);
    expect(on.spec.linux?.devices?.map((d) => [d.path, d.uid, d.gid])).toEqual([
      ["/dev/pod-fuse", 0, 0],
      ["/dev/my-fuse", 1000, 1000],
    ]);
    expect(build(false).spec.linux?.devices?.map((d) => [d.path, d.uid, d.gid])).toEqual([
      ["/dev/pod-fuse", 0, 0],
      ["/dev/my-fuse", 0, 0],
    ]);
    expect(() => buildContainerSpec(specInput({ sandbox: sb, io }))).toThrow("device /dev/fuse is specified but is not in allowed_devices");
  });

  test("a minimal crictl-style config (no security context, no passwd) runs the image command unconfined", () => {
    const i = specInput({
      config: create(ContainerConfigSchema, { metadata: { name: "x" }, image: { image: "busybox" } }),
      etcPasswd: undefined,
      etcGroup: undefined,
    });
    i.sandbox.config = create(PodSandboxConfigSchema, { metadata: { name: "p" } });
    const r = buildContainerSpec(i);
    expect(r.spec.process).toMatchObject({ args: ["sh"], user: { uid: 0, gid: 0, additionalGids: [0] }, noNewPrivileges: false, cwd: "/" });
    expect(r.seccompRef).toBe("Unconfined");
    expect(r.spec.process?.oomScoreAdj).toBeUndefined();
  });

  test("cgroup v2 adds a cgroup namespace and keeps unified keys", () => {
    const cfg = containerConfig();
    cfg.linux!.resources!.unified = { "memory.high": "120M" };
    const r = buildContainerSpec(specInput({ config: cfg, host: fakeHost({ cgroup: { v2: true, swap: true, hugetlb: true, pids: true } }) }));
    expect(r.spec.linux?.namespaces?.at(-1)).toEqual({ type: "cgroup" });
    expect(r.spec.linux?.resources?.unified).toEqual({ "memory.high": "120M" });
  });

  test("AppArmor and SELinux only when enabled on the node", () => {
    const off = buildContainerSpec(specInput());
    expect(off.spec.process?.apparmorProfile).toBeUndefined();
    const on = buildContainerSpec(specInput({ host: fakeHost({ apparmor: true }) }));
    expect(on.spec.process?.apparmorProfile).toBe("crio-default");
  });

  test("AppArmor profiles are checked through io.apparmorLoaded only when AppArmor is on", () => {
    const cfg = containerConfig();
    cfg.linux!.securityContext!.apparmor = { profileType: 2, localhostRef: "localhost/absent" } as never;
    const io = { ...fakeIo(), apparmorLoaded: (n: string) => n === "crio-default" };
    expect(() => buildContainerSpec(specInput({ config: cfg, io, host: fakeHost({ apparmor: true }) }))).toThrow("apparmor profile absent not loaded");
    expect(buildContainerSpec(specInput({ config: cfg, io })).spec.process?.apparmorProfile).toBeUndefined();
    const def = buildContainerSpec(specInput({ io, host: fakeHost({ apparmor: true }) }));
    expect(def.spec.process?.apparmorProfile).toBe("crio-default");
  });

  test("a uid missing from the image's passwd produces generated files mounted over /etc/passwd", () => {
    const cfg = containerConfig();
    cfg.linux!.securityContext!.runAsUser = { value: 4242n } as never;
    const r = buildContainerSpec(specInput({ config: cfg }));
    expect(r.files.map((f) => f.path)).toEqual(["/run/crio/containers/c0ffee/passwd"]); // gid 0 exists in /etc/group
    expect(r.spec.mounts?.some((m) => m.destination === "/etc/passwd" && m.source === "/run/crio/containers/c0ffee/passwd")).toBe(true);
    expect(r.files[0]?.content).toContain(":4242:0:default user:/work:/sbin/nologin");
  });

  describe("bad input is a clear error of the right kind", () => {
    test.each([
      [
        "privileged container in an unprivileged pod",
        () => {
          const cfg = containerConfig();
          cfg.linux!.securityContext!.privileged = true;
          return specInput({ config: cfg });
        },
        "invalid-argument",
        /no privileged container allowed in sandbox/,
      ],
      [
        "no command at all",
        () => {
          const cfg = containerConfig();
          cfg.command = [];
          cfg.args = [];
          return specInput({ config: cfg, image: { ...specInput().image, config: {} } });
        },
        "invalid-argument",
        /no command specified/,
      ],
      [
        "memory below 12 MiB",
        () => {
          const cfg = containerConfig();
          cfg.linux!.resources!.memoryLimitInBytes = 1024n * 1024n;
          return specInput({ config: cfg });
        },
        "invalid-argument",
        /too low/,
      ],
      [
        "net sysctl in a host-network pod",
        () => {
          const i = specInput();
          return { ...i, sandbox: { ...i.sandbox, namespaces: { ...i.sandbox.namespaces, network: "host" as const } } };
        },
        "invalid-argument",
        /not allowed with host net enabled/,
      ],
      [
        "missing Localhost seccomp profile",
        () => {
          const cfg = containerConfig();
          cfg.linux!.securityContext!.seccomp = { profileType: 2, localhostRef: "/var/lib/kubelet/seccomp/none.json" } as never;
          return specInput({ config: cfg });
        },
        "invalid-argument",
        /unable to load local seccomp profile/,
      ],
      [
        "unknown image user",
        () => {
          const cfg = containerConfig();
          cfg.linux!.securityContext!.runAsUser = undefined;
          return specInput({ config: cfg, image: { ...specInput().image, config: { Cmd: ["sh"], User: "ghost" } } });
        },
        "invalid-argument",
        /unable to find user ghost/,
      ],
    ] as const)("%s", (_name, make, kind, msg) => {
      expect(() => buildContainerSpec(make())).toThrow(expect.objectContaining({ kind, message: expect.stringMatching(msg) }));
    });
  });
});
