import { expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { ContainerConfigSchema } from "../../../../src/gen/runtime/v1/api_pb.ts";
import { applyCdiEdits, cdiRequests, parseCdiSpec, type CdiSpec } from "../../../../src/container/spec/cdi.ts";
import { buildContainerSpec } from "../../../../src/container/spec/index.ts";
import type { Device, Spec } from "../../../../src/oci/spec-types.ts";
import { fakeIo, specInput } from "./fixtures.ts";

const yaml = (t: string) => Bun.YAML.parse(t);
const host: Record<string, Device> = {
  "/dev/null": { type: "c", path: "/dev/null", major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
  "/dev/nvidia0": { type: "c", path: "/dev/nvidia0", major: 195, minor: 0, fileMode: 0o660, uid: 0, gid: 44 },
};
const hostDevice = (p: string) => {
  const d = host[p];
  if (!d) throw new Error(`ENOENT: no such file or directory, lstat '${p}'`);
  return d;
};
const spec = (o: object, path = "/etc/cdi/x.json", prio = 0) => parseCdiSpec(JSON.stringify(o), path, prio, yaml);
const base = (): Spec => ({
  ociVersion: "1.1.0",
  process: { user: { uid: 1000, gid: 1000, additionalGids: [1000] }, args: ["sh"], cwd: "/", env: ["PATH=/bin"] },
  mounts: [
    { destination: "/proc", source: "proc", type: "proc" },
    { destination: "/dev/shm", source: "shm", type: "tmpfs" },
  ],
  linux: { devices: [{ type: "c", path: "/dev/gpu", major: 9, minor: 9 }], resources: { devices: [{ allow: false, access: "rwm" }] } },
});

test("parses JSON and YAML specs of CDI 0.3.0–0.8.0", () => {
  const j = spec({ cdiVersion: "0.3.0", kind: "nvidia.com/gpu", devices: [{ name: "0", containerEdits: { deviceNodes: [{ path: "/dev/nvidia0" }] } }] });
  expect([...j.devices.keys()]).toEqual(["0"]);
  const y = parseCdiSpec(
    'cdiVersion: "0.8.0"\nkind: vendor.com/dev\ncontainerEdits:\n  env: [A=1]\ndevices:\n  - name: all\n    containerEdits:\n      additionalGIDs: [5, 0]\n',
    "/etc/cdi/v.yaml",
    1,
    yaml,
  );
  expect(y).toMatchObject({ kind: "vendor.com/dev", priority: 1, edits: { env: ["A=1"] } });
  expect(y.devices.get("all")).toEqual({ additionalGIDs: [5, 0] });
});

test("invalid specs are refused naming the file and the problem", () => {
  const dev = [{ name: "d", containerEdits: { env: ["A=1"] } }];
  for (const [o, why] of [
    [{ cdiVersion: "0.9.0", kind: "v.com/c", devices: dev }, 'unsupported cdiVersion "0.9.0"'],
    [{ cdiVersion: "0.6.0", kind: "nokind", devices: dev }, "invalid kind"],
    [{ cdiVersion: "0.6.0", kind: "v.com/c", devices: [] }, "no devices"],
    [{ cdiVersion: "0.6.0", kind: "v.com/c", devices: [...dev, ...dev] }, 'multiple device "d"'],
    [{ cdiVersion: "0.6.0", kind: "v.com/c", devices: [{ name: "e" }] }, "empty device edits"],
    [{ cdiVersion: "0.6.0", kind: "v.com/c", devices: [{ name: "e", containerEdits: { env: ["=x"] } }] }, "invalid environment variable"],
    [
      { cdiVersion: "0.6.0", kind: "v.com/c", devices: [{ name: "e", containerEdits: { deviceNodes: [{ path: "/dev/x", permissions: "rwx" }] } }] },
      "invalid permissions",
    ],
    [
      { cdiVersion: "0.6.0", kind: "v.com/c", devices: [{ name: "e", containerEdits: { hooks: [{ hookName: "later", path: "/bin/true" }] } }] },
      "invalid hook name",
    ],
    [{ cdiVersion: "0.6.0", kind: "v.com/c", devices: [{ name: "e", containerEdits: { mounts: [{ hostPath: "/a" }] } }] }, "empty container path"],
    [{ cdiVersion: "0.7.0", kind: "v.com/c", devices: [{ name: "e", containerEdits: { intelRdt: { closID: "a/b" } } }] }, "invalid closID"],
    [
      { cdiVersion: "0.8.0", kind: "v.com/c", devices: [{ name: "e", containerEdits: { netDevices: [{ hostInterfaceName: "eth1", name: "net1" }] } }] },
      "netDevices edits are not supported",
    ],
    [{ cdiVersion: "0.6.0", kind: "v.com/c", devices: dev, bogus: 1 }, 'unknown field "bogus"'],
  ] as const)
    expect(() => spec(o)).toThrow(why);
  expect(() => parseCdiSpec("{ nope", "/etc/cdi/bad.json", 0, yaml)).toThrow('CDI spec "/etc/cdi/bad.json": cannot parse');
});

test("requests: CDI_devices first, then cdi.k8s.io annotations, deduplicated; bad names are invalid-argument", () => {
  const cfg = create(ContainerConfigSchema, {
    CDIDevices: [{ name: "a.com/x=1" }],
    annotations: { "cdi.k8s.io/b": "a.com/x=2,a.com/x=1", other: "z.com/y=9" },
  });
  expect(cdiRequests(cfg)).toEqual(["a.com/x=1", "a.com/x=2"]);
  expect(() => cdiRequests(create(ContainerConfigSchema, { CDIDevices: [{ name: "gpu0" }] }))).toThrow(
    expect.objectContaining({ kind: "invalid-argument", message: expect.stringContaining('"gpu0"') }),
  );
});

test("edits: spec-wide once then per device; nodes from the host, mounts by depth, hooks, GIDs", () => {
  const s: CdiSpec = spec({
    cdiVersion: "0.7.0",
    kind: "nvidia.com/gpu",
    containerEdits: {
      env: ["NVIDIA=1"],
      mounts: [{ hostPath: "/usr/lib/libcuda.so", containerPath: "/usr/lib/libcuda.so", options: ["ro", "bind"] }],
      hooks: [{ hookName: "createContainer", path: "/usr/bin/ldconfig-hook", args: ["ldconfig"] }],
    },
    devices: [
      { name: "0", containerEdits: { env: ["GPU=0"], deviceNodes: [{ path: "/dev/nvidia0" }], additionalGIDs: [44, 0, 1000] } },
      { name: "alias", containerEdits: { deviceNodes: [{ path: "/dev/gpu", hostPath: "/dev/nvidia0", permissions: "r", uid: 7 }] } },
      { name: "fifo", containerEdits: { deviceNodes: [{ path: "/dev/fifo", type: "p" }], mounts: [{ hostPath: "/srv", containerPath: "/srv" }] } },
    ],
  });
  const out = base();
  applyCdiEdits(
    out,
    ["0", "alias", "fifo"].map((n) => ({ name: `nvidia.com/gpu=${n}`, spec: s, edits: s.devices.get(n)! })),
    hostDevice,
  );
  expect(out.process!.env).toEqual(["PATH=/bin", "NVIDIA=1", "GPU=0"]);
  expect(out.linux!.devices).toEqual([
    { type: "c", path: "/dev/nvidia0", major: 195, minor: 0, fileMode: 0o660, uid: 1000, gid: 1000 },
    { type: "c", path: "/dev/gpu", major: 195, minor: 0, fileMode: 0o660, uid: 7, gid: 1000 },
    { type: "p", path: "/dev/fifo", uid: 1000, gid: 1000 },
  ]);
  expect(out.linux!.resources!.devices).toEqual([
    { allow: false, access: "rwm" },
    { allow: true, type: "c", major: 195, minor: 0, access: "rwm" },
    { allow: true, type: "c", major: 195, minor: 0, access: "r" },
  ]);
  expect(out.mounts!.map((m) => m.destination)).toEqual(["/proc", "/srv", "/dev/shm", "/usr/lib/libcuda.so"]);
  expect(out.hooks).toEqual({ createContainer: [{ path: "/usr/bin/ldconfig-hook", args: ["ldconfig"] }] });
  expect(out.process!.user.additionalGids).toEqual([1000, 44]);
});

test("intelRdt: the last one applied is the container's", () => {
  const s = spec({
    cdiVersion: "0.7.0",
    kind: "v.com/rdt",
    containerEdits: { intelRdt: { closID: "base" } },
    devices: [{ name: "gold", containerEdits: { intelRdt: { closID: "gold", l3CacheSchema: "L3:0=ff", enableMBM: true } } }],
  });
  const out = base();
  applyCdiEdits(out, [{ name: "v.com/rdt=gold", spec: s, edits: s.devices.get("gold")! }], hostDevice);
  expect(out.linux!.intelRdt).toEqual({ closID: "gold", l3CacheSchema: "L3:0=ff", enableMBM: true });
});

test("a node with no host device and no type/major fails; with both it is taken as given", () => {
  const s = spec({
    cdiVersion: "0.6.0",
    kind: "v.com/c",
    devices: [
      { name: "a", containerEdits: { deviceNodes: [{ path: "/dev/absent" }] } },
      { name: "b", containerEdits: { deviceNodes: [{ path: "/dev/absent", type: "c", major: 240, minor: 1 }] } },
    ],
  });
  expect(() => applyCdiEdits(base(), [{ name: "v.com/c=a", spec: s, edits: s.devices.get("a")! }], hostDevice)).toThrow(
    'failed to stat CDI host device "/dev/absent"',
  );
  const out = base();
  applyCdiEdits(out, [{ name: "v.com/c=b", spec: s, edits: s.devices.get("b")! }], hostDevice);
  expect(out.linux!.devices!.at(-1)).toEqual({ type: "c", path: "/dev/absent", major: 240, minor: 1, uid: 1000, gid: 1000 });
});

test("buildContainerSpec applies resolved CDI devices last, and reports the added GIDs", () => {
  const s = spec({
    cdiVersion: "0.7.0",
    kind: "v.com/c",
    devices: [{ name: "n", containerEdits: { deviceNodes: [{ path: "/dev/cdi-null", hostPath: "/dev/null" }], additionalGIDs: [4242] } }],
  });
  const r = buildContainerSpec(
    specInput({ cdiDevices: [{ name: "v.com/c=n", spec: s, edits: s.devices.get("n")! }], io: fakeIo({ devices: { "/dev/null": [host["/dev/null"]!] } }) }),
  );
  expect(r.spec.linux!.devices!.at(-1)).toMatchObject({ path: "/dev/cdi-null", major: 1, minor: 3 });
  expect(r.user.additionalGids).toContain(4242);
});
