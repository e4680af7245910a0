// crio.conf keys that decide SELinux labels, on the spec builder with a host that has SELinux:
// hostnetwork_disable_selinux (a unit test: the e2e machines have no SELinux).
import { expect, test } from "bun:test";
import { buildContainerSpec } from "../../../../src/container/spec/index.ts";
import { fakeDefaults, fakeHost, specInput } from "./fixtures.ts";

const labelled = (hostNetwork: boolean, hostnetworkDisableSelinux: boolean | undefined) => {
  const input = specInput({ host: fakeHost({ selinux: true }), defaults: fakeDefaults({ hostnetworkDisableSelinux }) });
  input.config.linux = {
    ...input.config.linux,
    securityContext: { ...input.config.linux?.securityContext, selinuxOptions: { user: "", role: "", type: "", level: "s0:c1,c2" } },
  } as never;
  if (hostNetwork) {
    input.sandbox.namespaces.network = "host";
    input.sandbox.config = { ...input.sandbox.config, linux: { ...input.sandbox.config.linux, sysctls: {} } } as never;
    input.defaults = { ...input.defaults, sysctls: [] };
  }
  return buildContainerSpec(input).spec.process?.selinuxLabel;
};

test("hostnetwork_disable_selinux: host-network pods get no label (default true); false labels them; other pods always", () => {
  expect(labelled(false, undefined)).toBe("system_u:system_r:container_t:s0:c1,c2");
  expect(labelled(true, undefined)).toBeUndefined();
  expect(labelled(true, true)).toBeUndefined();
  expect(labelled(true, false)).toBe("system_u:system_r:container_t:s0:c1,c2");
});
