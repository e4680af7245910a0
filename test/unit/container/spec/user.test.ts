import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { LinuxContainerSecurityContextSchema } from "../../../../src/gen/runtime/v1/api_pb.ts";
import { parseGroup, parsePasswd, resolveContainerUser, resolveUserString } from "../../../../src/container/spec/user.ts";
import { GROUP, PASSWD } from "./fixtures.ts";

const passwd = parsePasswd(PASSWD);
const groups = parseGroup(GROUP);

describe("resolveUserString (image User forms)", () => {
  test.each([
    ["", { uid: 0, gid: 0, additionalGids: [10] }],
    ["alice", { uid: 1000, gid: 1000, additionalGids: [10, 29] }],
    ["1000", { uid: 1000, gid: 1000, additionalGids: [10, 29] }],
    ["bob", { uid: 1001, gid: 100, additionalGids: [100] }],
    ["4242", { uid: 4242, gid: 0, additionalGids: [] }],
    ["4242:4343", { uid: 4242, gid: 4343, additionalGids: [] }],
    ["alice:users", { uid: 1000, gid: 100, additionalGids: [] }],
    ["alice:29", { uid: 1000, gid: 29, additionalGids: [] }],
  ])("%p", (spec, want) => {
    expect(resolveUserString(spec, passwd, groups)).toMatchObject(want);
  });

  test("unknown names are invalid-argument", () => {
    expect(() => resolveUserString("nobody", passwd, groups)).toThrow(
      expect.objectContaining({ kind: "invalid-argument", message: expect.stringContaining("unable to find user nobody") }),
    );
    expect(() => resolveUserString("alice:nogroup", passwd, groups)).toThrow(/unable to find group nogroup/);
  });

  test("no passwd file: numeric users still work", () => {
    expect(resolveUserString("7", [], [])).toMatchObject({ uid: 7, gid: 0 });
  });
});

describe("resolveContainerUser (CRI security context)", () => {
  const base = { imageUser: "alice", etcPasswd: PASSWD, etcGroup: GROUP, home: "/", runDir: "/run/c", mountedPaths: new Set<string>() };
  const sc = (o: object) => create(LinuxContainerSecurityContextSchema, o);

  test("the image user when the CRI says nothing; supplemental groups merged", () => {
    const r = resolveContainerUser({ ...base, securityContext: sc({ supplementalGroups: [5000n] }) });
    expect(r.user).toMatchObject({ uid: 1000, gid: 1000, additionalGids: [1000, 10, 29, 5000] });
    expect(r.files).toEqual([]);
  });

  test("Strict policy: only the primary and CRI supplemental groups", () => {
    const r = resolveContainerUser({ ...base, securityContext: sc({ supplementalGroups: [5000n], supplementalGroupsPolicy: 1 }) });
    expect(r.user.additionalGids).toEqual([1000, 5000]);
  });

  test("run_as_user and run_as_group override the image", () => {
    const r = resolveContainerUser({ ...base, securityContext: sc({ runAsUser: { value: 1001n }, runAsGroup: { value: 3000n } }) });
    expect(r.user).toMatchObject({ uid: 1001, gid: 3000, additionalGids: [3000, 100] });
  });

  test("run_as_username wins over run_as_user", () => {
    const r = resolveContainerUser({ ...base, securityContext: sc({ runAsUser: { value: 5n }, runAsUsername: "bob" }) });
    expect(r.user.uid).toBe(1001);
  });

  test("run_as_group without a user is invalid", () => {
    expect(() => resolveContainerUser({ ...base, securityContext: sc({ runAsGroup: { value: 1n } }) })).toThrow(/user group is specified without user/);
  });

  test("a uid without a passwd entry gets generated passwd and group files", () => {
    const r = resolveContainerUser({ ...base, home: "/work", securityContext: sc({ runAsUser: { value: 4242n }, runAsGroup: { value: 4343n } }) });
    expect(r.files.map((f) => f.path)).toEqual(["/run/c/passwd", "/run/c/group"]);
    expect(r.files[0]?.content.endsWith("default:x:4242:4343:default user:/work:/sbin/nologin\n")).toBe(true);
    expect(r.files[1]?.content.endsWith("4343:x:4343:\n")).toBe(true);
    expect(r.mounts).toEqual([
      { source: "/run/c/passwd", destination: "/etc/passwd" },
      { source: "/run/c/group", destination: "/etc/group" },
    ]);
  });

  test("no generated files when the CRI mounts /etc or the image has no passwd", () => {
    const s = sc({ runAsUser: { value: 4242n } });
    expect(resolveContainerUser({ ...base, securityContext: s, mountedPaths: new Set(["/etc"]) }).files).toEqual([]);
    expect(resolveContainerUser({ ...base, securityContext: s, etcPasswd: undefined, etcGroup: undefined }).files).toEqual([]);
  });
});
