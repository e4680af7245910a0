import { expect, test } from "bun:test";
import { buildInfraSpec, INFRA_OOM_SCORE_ADJ, type InfraSpecInput } from "../../../../src/container/spec/infra.ts";
import { specToJson } from "../../../../src/oci/bundle.ts";
import { expectGolden, fakeDefaults, fakeHost, fakeIo, sandboxConfig } from "./fixtures.ts";

const input = (o: Partial<InfraSpecInput> = {}): InfraSpecInput => ({
  id: "5a4db00000000000000000000000000000000000000000000000000000000002",
  name: "k8s_POD_web_default_0b8d4bf3-7f3a-4a4c-9a55-3f1f0a1e2f4a_1",
  config: sandboxConfig(),
  image: {
    config: { Entrypoint: ["/pause"], User: "65535:65535", StopSignal: "SIGINT" },
    id: "sha256:873ed75102791e5b0b8a7fcd41606c92fcec98d56d05ead4ac5131650004c136",
    name: "registry.k8s.io/pause:3.10",
    userRequested: "registry.k8s.io/pause:3.10",
  },
  pauseCommand: "/pause",
  rootfs: "/var/lib/crio/storage/5a4db0/merged",
  hostname: "web",
  namespaces: { network: { path: "/run/crio/ns/net/5a4db0" }, ipc: { path: "/run/crio/ns/ipc/5a4db0" }, uts: { path: "/run/crio/ns/uts/5a4db0" }, pid: "new" },
  shmPath: "/run/crio/sandboxes/5a4db0/shm",
  hostnamePath: "/run/crio/sandboxes/5a4db0/hostname",
  resolvConfPath: "/run/crio/sandboxes/5a4db0/resolv.conf",
  cgroupParent: "/kubepods/burstable/pod0b8d4bf3",
  cgroupManager: "cgroupfs",
  created: "2026-11-29T06:47:05.162950123Z",
  defaults: fakeDefaults(),
  host: fakeHost(),
  io: fakeIo(),
  ...o,
});

/** The spec with the (separately pinned) seccomp filter summarised. */
function summary(spec: unknown): unknown {
  const s = JSON.parse(specToJson(spec as never));
  if (s.linux?.seccomp) s.linux.seccomp = { defaultAction: s.linux.seccomp.defaultAction, rules: s.linux.seccomp.syscalls.length };
  return s;
}

test("the infra container of the fixture pod (golden)", () => {
  const r = buildInfraSpec(input());
  expectGolden("spec-infra", { ...r, spec: summary(r.spec) });
  expect(r.spec.process).toMatchObject({ args: ["/pause"], noNewPrivileges: true, oomScoreAdj: 0 });
  expect(r.spec.root).toEqual({ path: "/var/lib/crio/storage/5a4db0/merged", readonly: true });
  expect(r.seccompRef).toBe("RuntimeDefault");
  expect(r.warnings).toEqual([`oom_score_adj ${INFRA_OOM_SCORE_ADJ} is not allowed for this runtime; using 0`]);
});

test("-998 when the daemon may lower oom_score_adj; the image command without pause_command", () => {
  const r = buildInfraSpec(input({ host: fakeHost({ minOomScoreAdj: -1000 }), pauseCommand: "" }));
  expect(r.spec.process?.oomScoreAdj).toBe(-998);
  expect(r.spec.process?.args).toEqual(["/pause"]);
  expect(r.warnings).toEqual([]);
});

test("host namespaces: no PID namespace, no hostname, the host's /dev/shm", () => {
  const r = buildInfraSpec(
    input({
      namespaces: { network: "host", ipc: "host", uts: "host", pid: "host" },
      shmPath: undefined,
      config: sandboxConfig("spec-sandbox-privileged.json"),
    }),
  );
  expect(r.spec.linux?.namespaces).toEqual([{ type: "mount" }]);
  expect(r.spec.hostname).toBeUndefined();
  expect(r.spec.mounts?.find((m) => m.destination === "/dev/shm")?.source).toBe("/dev/shm");
  expect(r.seccompRef).toBe("Unconfined"); // privileged pod
});

test("a pause image without a command is invalid-argument", () => {
  expect(() => buildInfraSpec(input({ pauseCommand: "", image: { ...input().image, config: {} } }))).toThrow(
    expect.objectContaining({ kind: "invalid-argument" }),
  );
});
