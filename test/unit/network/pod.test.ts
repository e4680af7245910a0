import { expect, test } from "bun:test";
import { buildRuntimeConfig, cniArgsOf, type PodNetwork } from "../../../src/network/pod.ts";

const pod: PodNetwork = { id: "abc", name: "web", namespace: "default", uid: "u-1", netns: "/run/ns/net/abc", portMappings: [] };

test("CNI_ARGS carries ocicni's K8S_* keys", () => {
  expect(cniArgsOf(pod)).toBe("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1");
  expect(() => cniArgsOf({ ...pod, name: "a;b=c" })).toThrow(/cannot be passed in CNI_ARGS/);
});

test("runtimeConfig: host ports only, protocols lower-case, optional capabilities when set", () => {
  const rc = buildRuntimeConfig({
    ...pod,
    portMappings: [
      { hostPort: 8080, containerPort: 80, protocol: "TCP" },
      { hostPort: 0, containerPort: 9090 },
      { hostPort: 5353, containerPort: 53, protocol: "UDP", hostIP: "127.0.0.1" },
    ],
    bandwidth: { ingressRate: 1000000, ingressBurst: 2000000 },
    dns: { servers: ["10.0.0.10"], searches: ["svc"] },
    ipRanges: [[{ subnet: "10.2.0.0/24" }]],
  });
  expect(rc).toEqual({
    portMappings: [
      { hostPort: 8080, containerPort: 80, protocol: "tcp" },
      { hostPort: 5353, containerPort: 53, protocol: "udp", hostIP: "127.0.0.1" },
    ],
    bandwidth: { ingressRate: 1000000, ingressBurst: 2000000 },
    dns: { servers: ["10.0.0.10"], searches: ["svc"] },
    ipRanges: [[{ subnet: "10.2.0.0/24" }]],
  });
  expect(buildRuntimeConfig(pod)).toEqual({ portMappings: [] });
});

test.each([
  [{ hostPort: 70000, containerPort: 80 }, /invalid port mapping 70000:80/],
  [{ hostPort: 80, containerPort: 0 }, /invalid port mapping 80:0/],
  [{ hostPort: 80, containerPort: 80, protocol: "icmp" }, /protocol "icmp"/],
  [{ hostPort: 80, containerPort: 80, hostIP: "localhost" }, /host IP "localhost"/],
])("rejects the port mapping %j", (pm, re) => {
  expect(() => buildRuntimeConfig({ ...pod, portMappings: [pm] })).toThrow(re);
});
