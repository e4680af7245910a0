import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { SecurityProfileSchema } from "../../../../src/gen/runtime/v1/api_pb.ts";
import { containerSeccomp, type SeccompInput } from "../../../../src/container/spec/seccomp.ts";
import { compileSeccomp, parseSeccompProfile } from "../../../../src/container/spec/seccomp-profile.ts";
import { DEFAULT_SECCOMP_PROFILE } from "../../../../src/container/spec/seccomp-default.ts";
import { ALL_CAPABILITIES } from "../../../../src/container/spec/security.ts";
import type { Seccomp } from "../../../../src/oci/spec-types.ts";
import { expectGolden } from "./fixtures.ts";

const NINE = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE"];
const prof = (profileType: number, localhostRef = "") => create(SecurityProfileSchema, { profileType, localhostRef });
const files: Record<string, string> = {
  "/profiles/block-chmod.json": JSON.stringify({
    defaultAction: "SCMP_ACT_ALLOW",
    syscalls: [{ names: ["chmod", "fchmodat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
  }),
  "/profiles/broken.json": "{ not json",
  "/profiles/no-action.json": JSON.stringify({ syscalls: [] }),
};
const input = (o: Partial<SeccompInput>): SeccompInput => ({
  deprecatedPath: "",
  privileged: false,
  enabled: true,
  capabilities: NINE,
  arch: "amd64",
  kernel: "6.1.0",
  readFile: (p) => {
    const t = files[p];
    if (t === undefined) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
    return t;
  },
  ...o,
});

/** The action the compiled filter gives a syscall with no argument rules (undefined = only conditional rules). */
function actionOf(s: Seccomp, name: string): string | undefined {
  const r = s.syscalls?.find((x) => x.names.includes(name) && !x.args?.length);
  if (!r) return undefined;
  return r.action === "SCMP_ACT_ERRNO" ? `ERRNO(${r.errnoRet})` : r.action;
}

describe("containerSeccomp", () => {
  test("an absent profile is unconfined (critest: seccomp default is unconfined)", () => {
    expect(containerSeccomp(input({}))).toEqual({ ref: "Unconfined" });
  });
  test("the deprecated seccomp_profile_path: known values, localhost/ files; anything else is invalid-argument", () => {
    expect(containerSeccomp(input({ deprecatedPath: "unconfined" }))).toEqual({ ref: "Unconfined" });
    expect(containerSeccomp(input({ deprecatedPath: "docker/default" })).ref).toBe("RuntimeDefault");
    expect(() => containerSeccomp(input({ deprecatedPath: "/profiles/block-chmod.json" }))).toThrow(
      expect.objectContaining({ kind: "invalid-argument", message: expect.stringContaining('unknown seccomp profile path "/profiles/block-chmod.json"') }),
    );
  });
  test("seccomp_use_default_when_empty: an absent profile is RuntimeDefault; Unconfined and privileged stay unfiltered", () => {
    expect(containerSeccomp(input({ useDefaultWhenEmpty: true })).ref).toBe("RuntimeDefault");
    expect(containerSeccomp(input({ useDefaultWhenEmpty: true, profile: prof(1) }))).toEqual({ ref: "Unconfined" });
    expect(containerSeccomp(input({ useDefaultWhenEmpty: true, privileged: true }))).toEqual({ ref: "Unconfined" });
  });
  test("Unconfined, privileged, and a kernel without seccomp", () => {
    expect(containerSeccomp(input({ profile: prof(1) }))).toEqual({ ref: "Unconfined" });
    expect(containerSeccomp(input({ profile: prof(0), privileged: true }))).toEqual({ ref: "Unconfined" });
    expect(containerSeccomp(input({ profile: prof(0), enabled: false }))).toEqual({ ref: "Unconfined" });
    expect(() => containerSeccomp(input({ profile: prof(2, "/profiles/block-chmod.json"), enabled: false }))).toThrow(
      expect.objectContaining({ kind: "failed-precondition" }),
    );
  });
  test("RuntimeDefault with CRI-O's nine capabilities (golden)", () => {
    const r = containerSeccomp(input({ profile: prof(0) }));
    expect(r.ref).toBe("RuntimeDefault");
    expectGolden("seccomp-default-amd64", r.seccomp);
  });
  test("deprecated seccomp_profile_path values", () => {
    expect(containerSeccomp(input({ deprecatedPath: "runtime/default" })).ref).toBe("RuntimeDefault");
    expect(containerSeccomp(input({ deprecatedPath: "docker/default" })).ref).toBe("RuntimeDefault");
    expect(containerSeccomp(input({ deprecatedPath: "unconfined" })).ref).toBe("Unconfined");
    expect(containerSeccomp(input({ deprecatedPath: "localhost//profiles/block-chmod.json" })).ref).toBe("/profiles/block-chmod.json");
  });
  test("Localhost: the file is read and compiled", () => {
    const r = containerSeccomp(input({ profile: prof(2, "/profiles/block-chmod.json") }));
    expect(r).toEqual({
      ref: "/profiles/block-chmod.json",
      seccomp: { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["chmod", "fchmodat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }] },
    });
  });
  test("Localhost: missing, invalid JSON, not a profile, relative path — all invalid-argument with the path", () => {
    for (const [ref, msg] of [
      ["/profiles/missing.json", /unable to load local seccomp profile "\/profiles\/missing.json"/],
      ["/profiles/broken.json", /"\/profiles\/broken.json" is not valid JSON/],
      ["/profiles/no-action.json", /invalid defaultAction/],
      ["relative.json", /not an absolute path/],
    ] as const) {
      expect(() => containerSeccomp(input({ profile: prof(2, ref) }))).toThrow(
        expect.objectContaining({ kind: "invalid-argument", message: expect.stringMatching(msg) }),
      );
    }
  });
});

describe("the default profile", () => {
  const compile = (caps: readonly string[], arch = "amd64") => compileSeccomp(DEFAULT_SECCOMP_PROFILE, { capabilities: caps, arch });

  test("unknown syscalls get ENOSYS, the native arch and its sub-arches are listed", () => {
    const s = compile(NINE);
    expect(s.defaultAction).toBe("SCMP_ACT_ERRNO");
    expect(s.defaultErrnoRet).toBe(38);
    expect(s.architectures).toEqual(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    expect(compile(NINE, "arm64").architectures).toEqual(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
  });

  test("without CAP_SYS_ADMIN: mount and unshare EPERM, clone3 ENOSYS, clone only without namespace flags", () => {
    const s = compile(NINE);
    expect(actionOf(s, "mount")).toBe("ERRNO(1)");
    expect(actionOf(s, "unshare")).toBe("ERRNO(1)");
    expect(actionOf(s, "setns")).toBe("ERRNO(1)");
    expect(actionOf(s, "clone3")).toBe("ERRNO(38)");
    expect(actionOf(s, "clone")).toBeUndefined();
    const clone = s.syscalls?.filter((x) => x.names.includes("clone")) ?? [];
    expect(clone.find((x) => x.action === "SCMP_ACT_ALLOW")?.args).toEqual([{ index: 0, value: 0x7e020000, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }]);
    expect(clone.filter((x) => x.action === "SCMP_ACT_ERRNO")).toHaveLength(7);
    expect(actionOf(s, "reboot")).toBe("ERRNO(1)");
    expect(actionOf(s, "kexec_load")).toBe("ERRNO(1)");
    expect(actionOf(s, "read")).toBe("SCMP_ACT_ALLOW");
    expect(actionOf(s, "arch_prctl")).toBe("SCMP_ACT_ALLOW");
  });

  test("with CAP_SYS_ADMIN: mount, clone, clone3 and unshare are allowed", () => {
    const s = compile([...NINE, "CAP_SYS_ADMIN"]);
    for (const n of ["mount", "clone", "clone3", "unshare", "setns"]) expect(actionOf(s, n)).toBe("SCMP_ACT_ALLOW");
    expect(s.syscalls?.some((x) => x.names.includes("clone") && x.action === "SCMP_ACT_ERRNO")).toBe(false);
  });

  test("each syscall name appears once per action and arguments (all capabilities)", () => {
    const s = compile(ALL_CAPABILITIES);
    const seen = new Set<string>();
    for (const r of s.syscalls ?? [])
      for (const n of r.names) {
        const k = `${n}/${r.action}/${JSON.stringify(r.args ?? [])}`;
        expect(seen.has(k)).toBe(false);
        seen.add(k);
      }
    expect(actionOf(s, "syslog")).toBe("SCMP_ACT_ALLOW");
  });

  test("profile filters: arches, minKernel, errno names, name vs names", () => {
    const p = parseSeccompProfile(
      JSON.stringify({
        defaultAction: "SCMP_ACT_ERRNO",
        defaultErrno: "EPERM",
        syscalls: [
          { name: "a", action: "SCMP_ACT_ALLOW", includes: { arches: ["arm64"] } },
          { names: ["b"], action: "SCMP_ACT_ALLOW", includes: { minKernel: "7.0" } },
          { names: ["c"], action: "SCMP_ACT_ERRNO", errno: "EACCES", excludes: { arches: ["s390x"] } },
        ],
      }),
      "test",
    );
    expect(compileSeccomp(p, { capabilities: [], arch: "amd64", kernel: "6.1.0" })).toEqual({
      defaultAction: "SCMP_ACT_ERRNO",
      defaultErrnoRet: 1,
      syscalls: [{ names: ["c"], action: "SCMP_ACT_ERRNO", errnoRet: 13 }],
    });
  });
});
