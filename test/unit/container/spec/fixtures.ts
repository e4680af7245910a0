// Shared fixtures of the spec-builder tests: CRI configs from test/fixtures/*.json (proto JSON, as
// crictl reads them), a fake node and file system, and the golden-file check.
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { expect } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ContainerConfigSchema, PodSandboxConfigSchema, type ContainerConfig, type PodSandboxConfig } from "../../../../src/gen/runtime/v1/api_pb.ts";
import { ALL_CAPABILITIES, CRIO_DEFAULT_CAPABILITIES } from "../../../../src/container/spec/security.ts";
import type { ContainerSpecInput, ImageConfig, SpecDefaults, SpecHost, SpecIo } from "../../../../src/container/spec/types.ts";
import type { Device } from "../../../../src/oci/spec-types.ts";

export const FIXTURES = join(import.meta.dir, "..", "..", "..", "fixtures");

/** A fixture file parsed as JSON. */
export function fixture<T = unknown>(name: string): T {
  return JSON.parse(readFileSync(join(FIXTURES, name), "utf8")) as T;
}

/** A CRI ContainerConfig from a proto-JSON fixture. */
export function containerConfig(name = "spec-container.json"): ContainerConfig {
  return fromJson(ContainerConfigSchema, fixture<JsonValue>(name));
}

/** A CRI PodSandboxConfig from a proto-JSON fixture. */
export function sandboxConfig(name = "spec-sandbox.json"): PodSandboxConfig {
  return fromJson(PodSandboxConfigSchema, fixture<JsonValue>(name));
}

/** This test machine's shape: every capability but CAP_SYS_RESOURCE, cgroup v1 hybrid, no LSMs. */
export function fakeHost(over: Partial<SpecHost> = {}): SpecHost {
  return {
    capabilities: ALL_CAPABILITIES.filter((c) => c !== "CAP_SYS_RESOURCE"),
    minOomScoreAdj: 0,
    apparmor: false,
    selinux: false,
    seccomp: true,
    cgroup: { v2: false, swap: true, hugetlb: false, pids: true },
    arch: "amd64",
    rro: true,
    kernel: "6.1.0",
    ...over,
  };
}

/** CRI-O's defaults. */
export function fakeDefaults(over: Partial<SpecDefaults> = {}): SpecDefaults {
  return {
    capabilities: [...CRIO_DEFAULT_CAPABILITIES],
    env: ["GOMAXPROCS_HINT=2"],
    ulimits: ["nofile=1024:2048"],
    sysctls: [],
    containerMinMemory: 12 * 1024 * 1024,
    apparmorProfile: "crio-default",
    ...over,
  };
}

/** A file system of fixed files, devices and existing paths. */
export function fakeIo(o: { files?: Record<string, string>; devices?: Record<string, Device[]>; exists?: string[] } = {}): SpecIo {
  const exists = new Set(o.exists ?? ["/srv/data", "/srv/cache", "/run"]);
  return {
    readFile: (p) => {
      const t = o.files?.[p];
      if (t === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${p}'`), { code: "ENOENT" });
      return t;
    },
    devicesAt: (p) => {
      const d = o.devices?.[p];
      if (!d) throw new Error(`ENOENT: no such file or directory, stat '${p}'`);
      return d;
    },
    hostDevices: () => [
      { type: "c", path: "/dev/fuse", major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
      { type: "c", path: "/dev/kmsg", major: 1, minor: 11, fileMode: 0o644, uid: 0, gid: 0 },
    ],
    realpath: (p) => (exists.has(p) ? p : undefined),
  };
}

export const PASSWD =
  "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\nbob:x:1001:100::/home/bob:/bin/sh\n";
export const GROUP = "root:x:0:\nusers:x:100:bob\nalice:x:1000:\nwheel:x:10:alice,root\naudio:x:29:alice\n";

/** A complete builder input around the fixtures; override what a test is about. */
export function specInput(over: Partial<ContainerSpecInput> = {}): ContainerSpecInput {
  const sandbox = sandboxConfig();
  return {
    id: "c0ffee0000000000000000000000000000000000000000000000000000000001",
    name: "k8s_app_web_default_0b8d4bf3-7f3a-4a4c-9a55-3f1f0a1e2f4a_0",
    config: containerConfig(),
    sandbox: {
      id: "5a4db00000000000000000000000000000000000000000000000000000000002",
      name: "k8s_POD_web_default_0b8d4bf3-7f3a-4a4c-9a55-3f1f0a1e2f4a_1",
      config: sandbox,
      hostname: "web",
      namespaces: {
        network: { path: "/run/crio/ns/net/5a4db0" },
        ipc: { path: "/run/crio/ns/ipc/5a4db0" },
        uts: { path: "/run/crio/ns/uts/5a4db0" },
        pid: "new",
      },
      shmPath: "/run/crio/sandboxes/5a4db0/shm",
      hostnamePath: "/run/crio/sandboxes/5a4db0/hostname",
      resolvConfPath: "/run/crio/sandboxes/5a4db0/resolv.conf",
      hostsPath: "/run/crio/sandboxes/5a4db0/hosts",
      cgroupParent: "/kubepods/burstable/pod0b8d4bf3",
      ips: ["10.85.0.7"],
    },
    image: {
      config: fixture<ImageConfig>("spec-image-busybox.json"),
      id: "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741",
      name: "docker.io/library/busybox:latest",
      userRequested: "busybox",
    },
    rootfs: "/var/lib/crio/storage/c0ffee/merged",
    runDir: "/run/crio/containers/c0ffee",
    logPath: "/var/log/pods/default_web_0b8d4bf3-7f3a-4a4c-9a55-3f1f0a1e2f4a/app/0.log",
    cgroupManager: "cgroupfs",
    etcPasswd: PASSWD,
    etcGroup: GROUP,
    created: "2026-11-29T06:47:05.162950123Z",
    defaults: fakeDefaults(),
    host: fakeHost(),
    io: fakeIo(),
    ...over,
  };
}

/**
 * Compares `value` with test/fixtures/<name>.golden.json. UPDATE_GOLDEN=1 rewrites the file
 * (review the diff before committing it).
 */
export function expectGolden(name: string, value: unknown): void {
  const path = join(FIXTURES, `${name}.golden.json`);
  const text = JSON.stringify(value, null, 2) + "\n";
  if (process.env.UPDATE_GOLDEN === "1") writeFileSync(path, text);
  else if (!existsSync(path)) throw new Error(`golden file ${path} is missing; run with UPDATE_GOLDEN=1 and review it`);
  expect(JSON.parse(text)).toEqual(JSON.parse(readFileSync(path, "utf8")));
}
