import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { NamespaceMode, NamespaceOptionSchema, UserNamespaceSchema } from "../../../src/gen/runtime/v1/api_pb.ts";
import { checkContainerUserns, IdRanges, podUserns, toHost } from "../../../src/sandbox/userns.ts";

const R = 65536;
const map = (hostId: number, length = R, containerId = 0) => [{ hostId, containerId, length }];
const nso = (u: Record<string, unknown> | undefined, o: Record<string, unknown> = {}) =>
  create(NamespaceOptionSchema, { network: NamespaceMode.POD, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD, ...o, ...(u ? { usernsOptions: u } : {}) });

describe("podUserns", () => {
  test("none, or NODE: the host's; POD: the kubelet's one range per kind", () => {
    expect(podUserns(nso(undefined))).toBeUndefined();
    expect(podUserns(nso({ mode: NamespaceMode.NODE }))).toBeUndefined();
    expect(podUserns(nso({ mode: NamespaceMode.POD, uids: map(2 * R), gids: map(3 * R) }))).toEqual({
      uids: [{ containerId: 0, hostId: 2 * R, length: R }],
      gids: [{ containerId: 0, hostId: 3 * R, length: R }],
    });
  });

  test.each([
    ["an unknown mode", { mode: NamespaceMode.CONTAINER, uids: map(R), gids: map(R) }, {}, /unsupported user namespace mode CONTAINER/],
    ["mode TARGET", { mode: NamespaceMode.TARGET, uids: map(R), gids: map(R) }, {}, /unsupported user namespace mode TARGET/],
    ["a numeric mode out of the enum", { mode: 9, uids: map(R), gids: map(R) }, {}, /unsupported user namespace mode 9/],
    ["NODE with mappings", { mode: NamespaceMode.NODE, uids: map(R), gids: map(R) }, {}, /NODE takes no/],
    ["POD without mappings", { mode: NamespaceMode.POD }, {}, /exactly one uid mapping, got 0/],
    ["two uid ranges", { mode: NamespaceMode.POD, uids: [...map(R), ...map(2 * R, R, R)], gids: map(R) }, {}, /exactly one uid mapping, got 2/],
    ["a short range", { mode: NamespaceMode.POD, uids: map(R, 1000), gids: map(R) }, {}, /65536 ids long, not 1000/],
    ["a misaligned base", { mode: NamespaceMode.POD, uids: map(R + 5), gids: map(R) }, {}, /multiple of 65536/],
    ["host id 0", { mode: NamespaceMode.POD, uids: map(0), gids: map(R) }, {}, /non-zero multiple/],
    ["a range past the last id", { mode: NamespaceMode.POD, uids: map(65535 * R), gids: map(R) }, {}, /past the last host id/],
    ["container id not 0", { mode: NamespaceMode.POD, uids: map(R, R, 1), gids: map(R) }, {}, /container id 0/],
    ["host network", { mode: NamespaceMode.POD, uids: map(R), gids: map(R) }, { network: NamespaceMode.NODE }, /host's network/],
    ["host PID", { mode: NamespaceMode.POD, uids: map(R), gids: map(R) }, { pid: NamespaceMode.NODE }, /host's PID/],
    ["host IPC", { mode: NamespaceMode.POD, uids: map(R), gids: map(R) }, { ipc: NamespaceMode.NODE }, /host's IPC/],
  ])("%s is invalid-argument", (_what, u, o, re) => {
    expect(() => podUserns(nso(u, o))).toThrow(expect.objectContaining({ kind: "invalid-argument", message: expect.stringMatching(re) }));
  });
});

describe("checkContainerUserns", () => {
  const pod = { uids: [{ containerId: 0, hostId: R, length: R }], gids: [{ containerId: 0, hostId: R, length: R }] };
  const u = (o: Record<string, unknown>) => create(NamespaceOptionSchema, { usernsOptions: create(UserNamespaceSchema, o) });
  test("absent or the pod's own: fine", () => {
    expect(() => checkContainerUserns(pod, undefined)).not.toThrow();
    expect(() => checkContainerUserns(pod, u({ mode: NamespaceMode.POD, uids: map(R), gids: map(R) }))).not.toThrow();
    expect(() => checkContainerUserns(undefined, u({ mode: NamespaceMode.NODE }))).not.toThrow();
  });
  test("leaving, remapping or joining what the pod lacks is invalid-argument", () => {
    expect(() => checkContainerUserns(pod, u({ mode: NamespaceMode.NODE }))).toThrow(/host's user namespace/);
    expect(() => checkContainerUserns(pod, u({ mode: NamespaceMode.POD, uids: map(2 * R), gids: map(R) }))).toThrow(/differ/);
    expect(() => checkContainerUserns(undefined, u({ mode: NamespaceMode.POD, uids: map(R), gids: map(R) }))).toThrow(/runs in the host's/);
    expect(() => checkContainerUserns(pod, u({ mode: NamespaceMode.CONTAINER }))).toThrow(/unsupported/);
    expect(() => checkContainerUserns(pod, create(NamespaceOptionSchema, { network: NamespaceMode.NODE }))).toThrow(/host's network/);
    expect(() => checkContainerUserns(undefined, create(NamespaceOptionSchema, { network: NamespaceMode.NODE }))).not.toThrow();
  });
});

describe("IdRanges", () => {
  const p = (uid: number, gid = uid) => ({ uids: [{ containerId: 0, hostId: uid, length: R }], gids: [{ containerId: 0, hostId: gid, length: R }] });
  test("disjoint ranges are held; an overlap names the other pod; release frees", () => {
    const r = new IdRanges();
    r.reserve("a", p(R));
    r.reserve("b", p(2 * R));
    expect(() => r.reserve("c", p(R, 5 * R))).toThrow(/uid range 65536-131071 overlaps the host ids of pod sandbox a/);
    expect(() => r.reserve("c", p(5 * R, 2 * R))).toThrow(/gid range .* pod sandbox b/);
    r.release("a");
    expect(() => r.reserve("c", p(R))).not.toThrow();
    expect(toHost(p(R).uids, 5)).toBe(R + 5);
    expect(toHost(p(R).uids, R)).toBeUndefined();
  });
});
