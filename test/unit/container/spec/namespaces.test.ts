import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { NamespaceOptionSchema } from "../../../../src/gen/runtime/v1/api_pb.ts";
import { containerNamespaces, infraNamespaces, podSysctls } from "../../../../src/container/spec/namespaces.ts";
import type { PodNamespaces } from "../../../../src/container/spec/types.ts";

const pod: PodNamespaces = { network: { path: "/ns/net" }, ipc: { path: "/ns/ipc" }, uts: { path: "/ns/uts" }, pid: "new" };
const opts = (o: object) => create(NamespaceOptionSchema, o);

describe("containerNamespaces", () => {
  test("pod namespaces joined by path, pid and mount new", () => {
    expect(containerNamespaces({ pod, cgroupNs: false })).toEqual([
      { type: "pid" },
      { type: "network", path: "/ns/net" },
      { type: "ipc", path: "/ns/ipc" },
      { type: "uts", path: "/ns/uts" },
      { type: "mount" },
    ]);
  });
  test("host namespaces are left out; cgroup namespace on request", () => {
    const ns = containerNamespaces({ pod: { ...pod, uts: "host" }, options: opts({ network: 2, pid: 2, ipc: 2 }), cgroupNs: true });
    expect(ns).toEqual([{ type: "mount" }, { type: "cgroup" }]);
  });
  test("pod PID namespace: joined when the pod shares one, failed-precondition when it does not", () => {
    const shared = { ...pod, pid: { path: "/proc/42/ns/pid" } };
    expect(containerNamespaces({ pod: shared, options: opts({ pid: 0 }), cgroupNs: false })[0]).toEqual({ type: "pid", path: "/proc/42/ns/pid" });
    expect(() => containerNamespaces({ pod, options: opts({ pid: 0 }), cgroupNs: false })).toThrow(expect.objectContaining({ kind: "failed-precondition" }));
  });
  test("target PID namespace", () => {
    expect(containerNamespaces({ pod, options: opts({ pid: 3, targetId: "x" }), targetPid: "/proc/7/ns/pid", cgroupNs: false })[0]).toEqual({
      type: "pid",
      path: "/proc/7/ns/pid",
    });
    expect(() => containerNamespaces({ pod, options: opts({ pid: 3 }), cgroupNs: false })).toThrow(/invalid target ID/);
  });
  test("infra: a fresh PID namespace unless the pod uses the host's", () => {
    expect(infraNamespaces({ ...pod, pid: { path: "/proc/1/ns/pid" } }, false)[0]).toEqual({ type: "pid" });
    expect(infraNamespaces({ ...pod, pid: "host" }, false).map((n) => n.type)).toEqual(["network", "ipc", "uts", "mount"]);
  });
});

describe("podSysctls", () => {
  const priv = { network: false, ipc: false };
  test("namespaced sysctls from defaults and the CRI (CRI wins)", () => {
    expect(
      podSysctls(["net.ipv4.ping_group_range=0 2147483647", "kernel.msgmax = 65536"], { "kernel.msgmax": "8192", "fs.mqueue.msg_max": "20" }, priv),
    ).toEqual({
      sysctl: { "net.ipv4.ping_group_range": "0 2147483647", "kernel.msgmax": "8192", "fs.mqueue.msg_max": "20" },
      warnings: [],
    });
  });
  test("net.* with a host network and IPC sysctls with host IPC are invalid-argument", () => {
    expect(() => podSysctls([], { "net.core.somaxconn": "1024" }, { network: true, ipc: false })).toThrow(
      expect.objectContaining({ kind: "invalid-argument", message: 'sysctl "net.core.somaxconn": not allowed with host net enabled' }),
    );
    expect(() => podSysctls([], { "kernel.shmmax": "1" }, { network: false, ipc: true })).toThrow(/host ipc/);
  });
  test("non-namespaced sysctls: CRI invalid, defaults skipped with a warning", () => {
    expect(() => podSysctls([], { "vm.swappiness": "1" }, priv)).toThrow(/not a namespaced sysctl/);
    expect(podSysctls(["vm.swappiness=1", "bogus"], {}, priv)).toEqual({
      sysctl: {},
      warnings: ['skipping default sysctl "vm.swappiness=1": not a namespaced sysctl', 'skipping default sysctl "bogus": expected key=value'],
    });
  });
});
