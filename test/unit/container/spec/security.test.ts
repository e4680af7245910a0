import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { CapabilitySchema, SecurityProfileSchema, SELinuxOptionSchema } from "../../../../src/gen/runtime/v1/api_pb.ts";
import {
  ALL_CAPABILITIES,
  apparmorProfile,
  containerCapabilities,
  CRIO_DEFAULT_CAPABILITIES,
  DEFAULT_MASKED_PATHS,
  maskedPaths,
  readonlyPaths,
  selinuxLabels,
} from "../../../../src/container/spec/security.ts";
import type { RuntimeError } from "../../../../src/errors.ts";
import { fakeHost } from "./fixtures.ts";

const host = fakeHost().capabilities;
const caps = (add: string[] = [], drop: string[] = [], ambient: string[] = []) =>
  create(CapabilitySchema, { addCapabilities: add, dropCapabilities: drop, addAmbientCapabilities: ambient });
const run = (c = caps(), o: { privileged?: boolean; addInheritable?: boolean } = {}) =>
  containerCapabilities({ caps: c, defaults: CRIO_DEFAULT_CAPABILITIES, host, addInheritable: o.addInheritable ?? false, privileged: o.privileged ?? false });

describe("containerCapabilities", () => {
  test("CRI-O's nine by default, in kernel order, no inheritable or ambient", () => {
    const { capabilities, warnings } = run();
    const nine = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE"];
    expect(capabilities).toEqual({ bounding: nine, effective: nine, permitted: nine, inheritable: [], ambient: [] });
    expect(warnings).toEqual([]);
  });

  test("add and drop, with or without the CAP_ prefix and in any case", () => {
    const { capabilities } = run(caps(["net_admin", "CAP_SYS_TIME"], ["KILL", "cap_chown"]));
    expect(capabilities.bounding).toContain("CAP_NET_ADMIN");
    expect(capabilities.bounding).toContain("CAP_SYS_TIME");
    expect(capabilities.bounding).not.toContain("CAP_KILL");
    expect(capabilities.bounding).not.toContain("CAP_CHOWN");
    expect(capabilities.bounding).toHaveLength(9);
  });

  test("drop ALL then add: only what is added", () => {
    expect(run(caps(["NET_BIND_SERVICE"], ["ALL"])).capabilities.effective).toEqual(["CAP_NET_BIND_SERVICE"]);
    expect(run(caps([], ["all"])).capabilities.effective).toEqual([]);
  });

  test("add ALL: everything the daemon holds (CAP_SYS_RESOURCE is withheld here), minus drops", () => {
    const { capabilities, warnings } = run(caps(["ALL"], ["NET_RAW"]));
    expect(capabilities.bounding).toEqual(ALL_CAPABILITIES.filter((c) => c !== "CAP_SYS_RESOURCE" && c !== "CAP_NET_RAW"));
    expect(warnings).toEqual([]);
  });

  test("a capability the daemon lacks is left out with a warning", () => {
    const { capabilities, warnings } = run(caps(["SYS_RESOURCE"]));
    expect(capabilities.bounding).not.toContain("CAP_SYS_RESOURCE");
    expect(warnings).toEqual(["capability CAP_SYS_RESOURCE is not held by the runtime and was not granted"]);
  });

  test("unknown capabilities are invalid-argument", () => {
    expect(() => run(caps(["BOGUS"]))).toThrow(expect.objectContaining({ kind: "invalid-argument", message: 'unknown capability "CAP_BOGUS" to add' }));
    expect(() => run(caps([], ["NOPE"]))).toThrow(/to drop/);
  });

  test("privileged: every host capability in every set", () => {
    const { capabilities } = run(caps(["NET_ADMIN"]), { privileged: true });
    for (const set of Object.values(capabilities)) expect(set).toEqual(host);
  });

  test("add_inheritable_capabilities fills the inheritable set; ambient only when asked", () => {
    expect(run(caps(), { addInheritable: true }).capabilities.inheritable).toHaveLength(9);
    const r = run(caps(["NET_BIND_SERVICE"], [], ["NET_BIND_SERVICE", "SYS_ADMIN"]));
    expect(r.capabilities.ambient).toEqual(["CAP_NET_BIND_SERVICE"]);
    expect(r.capabilities.inheritable).toEqual(["CAP_NET_BIND_SERVICE"]);
    expect(r.warnings).toEqual(["ambient capability CAP_SYS_ADMIN is not in the container's permitted set and was ignored"]);
  });
});

describe("masked and read-only paths", () => {
  test("defaults include /proc/asound and /proc/interrupts; the CRI list is merged, sorted, deduplicated", () => {
    const m = maskedPaths(["/proc/kcore", "/proc/extra"], false, ["/sys/devices/system/cpu/cpu0/thermal_throttle"]);
    expect(m).toContain("/proc/asound");
    expect(m).toContain("/proc/interrupts");
    expect(m).toContain("/proc/extra");
    expect(m).toEqual([...m].sort());
    expect(new Set(m).size).toBe(m.length);
    expect(m).toHaveLength(DEFAULT_MASKED_PATHS.length + 2);
  });
  test("privileged: none", () => {
    expect(maskedPaths(["/x"], true)).toEqual([]);
    expect(readonlyPaths(["/x"], true)).toEqual([]);
  });
  test("empty CRI lists (ProcMount Unmasked): nothing masked or read-only", () => {
    expect(maskedPaths([], false, ["/sys/devices/system/cpu/cpu0/thermal_throttle"])).toEqual([]);
    expect(readonlyPaths([], false)).toEqual([]);
  });
  test("read-only paths are the CRI's, deduplicated", () => {
    expect(readonlyPaths(["/proc/sys", "/proc/extra", "/proc/sys"], false)).toEqual(["/proc/sys", "/proc/extra"]);
  });
});

describe("apparmorProfile", () => {
  const prof = (profileType: number, localhostRef = "") => create(SecurityProfileSchema, { profileType, localhostRef });
  const on = { enabled: true, privileged: false, defaultProfile: "crio-default" };
  test("nothing when AppArmor is off or the container is privileged", () => {
    expect(apparmorProfile(prof(0), "", { ...on, enabled: false })).toBeUndefined();
    expect(apparmorProfile(prof(0), "", { ...on, privileged: true })).toBeUndefined();
  });
  test("RuntimeDefault, Unconfined, Localhost and the deprecated field", () => {
    expect(apparmorProfile(prof(0), "", on)).toBe("crio-default");
    expect(apparmorProfile(undefined, "", on)).toBe("crio-default");
    expect(apparmorProfile(prof(1), "", on)).toBe("unconfined");
    expect(apparmorProfile(prof(2, "localhost/my-prof"), "", on)).toBe("my-prof");
    expect(apparmorProfile(undefined, "localhost/old", on)).toBe("old");
    expect(() => apparmorProfile(prof(2), "", on)).toThrow(/localhost_ref/);
  });
  test("the deprecated field: runtime/default, a bare name, an empty localhost/", () => {
    expect(apparmorProfile(undefined, "runtime/default", on)).toBe("crio-default");
    expect(apparmorProfile(undefined, "unconfined", on)).toBe("unconfined");
    expect(apparmorProfile(undefined, "my-prof", on)).toBe("my-prof");
    expect(() => apparmorProfile(undefined, "localhost/", on)).toThrow(/apparmor profile "localhost\/" names no profile/);
    expect(() => apparmorProfile(prof(2, "localhost/"), "", on)).toThrow(/localhost_ref/);
  });
  test("every profile but unconfined must be loaded when a check is given", () => {
    const loaded = (n: string) => n === "crio-default" || n === "my-prof";
    const chk = { ...on, loaded };
    expect(apparmorProfile(prof(0), "", chk)).toBe("crio-default");
    expect(apparmorProfile(prof(2, "localhost/my-prof"), "", chk)).toBe("my-prof");
    expect(apparmorProfile(prof(1), "", { ...on, loaded: () => false })).toBe("unconfined");
    const missing = (() => {
      try {
        apparmorProfile(prof(2, "localhost/absent"), "", chk);
      } catch (e) {
        return e as RuntimeError;
      }
    })();
    expect(missing?.kind).toBe("invalid-argument");
    expect(missing?.message).toBe("apparmor profile absent not loaded");
    expect(() => apparmorProfile(prof(0), "", { ...chk, defaultProfile: "unloaded-default" })).toThrow("apparmor profile unloaded-default not loaded");
    expect(() => apparmorProfile(undefined, "not-exists", chk)).toThrow("apparmor profile not-exists not loaded");
  });
  test("AppArmor off or privileged: profiles are not checked", () => {
    const never = () => {
      throw new Error("checked");
    };
    expect(apparmorProfile(prof(2, "localhost/absent"), "", { ...on, enabled: false, loaded: never })).toBeUndefined();
    expect(apparmorProfile(prof(2, "localhost/absent"), "", { ...on, privileged: true, loaded: never })).toBeUndefined();
  });
});

test("selinuxLabels only when SELinux is on", () => {
  const o = create(SELinuxOptionSchema, { type: "spc_t", level: "s0:c1,c2" });
  expect(selinuxLabels(o, false, false)).toEqual({});
  expect(selinuxLabels(o, true, false)).toEqual({ process: "system_u:system_r:spc_t:s0:c1,c2", mount: "system_u:object_r:container_file_t:s0:c1,c2" });
});
