import { expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { DeviceSchema } from "../../../../src/gen/runtime/v1/api_pb.ts";
import { annotationDevices, checkAdditionalDevices, containerDevices, parseDeviceSpec } from "../../../../src/container/spec/devices.ts";
import type { Device } from "../../../../src/oci/spec-types.ts";

const table: Record<string, Device[]> = {
  "/dev/fuse": [{ type: "c", path: "/dev/fuse", major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 }],
  "/dev/snd": [
    { type: "c", path: "/dev/snd/controlC0", major: 116, minor: 0, fileMode: 0o660, uid: 0, gid: 29 },
    { type: "c", path: "/dev/snd/timer", major: 116, minor: 33, fileMode: 0o660, uid: 0, gid: 29 },
  ],
};
const io = {
  devicesAt: (p: string) => {
    const d = table[p];
    if (!d) throw new Error(`ENOENT: no such file or directory, stat '${p}'`);
    return d;
  },
  hostDevices: () => [...(table["/dev/fuse"] ?? []), ...(table["/dev/snd"] ?? [])],
};
const dev = (containerPath: string, hostPath: string, permissions = "") => create(DeviceSchema, { containerPath, hostPath, permissions });

test("no devices: deny all (runc adds its standard set)", () => {
  expect(containerDevices({ cri: [], privileged: false, ...io })).toEqual({ devices: [], rules: [{ allow: false, access: "rwm" }] });
});

test("a device node and a directory of them, with permissions", () => {
  const r = containerDevices({ cri: [dev("/dev/fuse", "/dev/fuse", "rw"), dev("/dev/sound", "/dev/snd")], privileged: false, ...io });
  expect(r.devices.map((d) => d.path)).toEqual(["/dev/fuse", "/dev/sound/controlC0", "/dev/sound/timer"]);
  expect(r.rules).toEqual([
    { allow: false, access: "rwm" },
    { allow: true, type: "c", major: 10, minor: 229, access: "rw" },
    { allow: true, type: "c", major: 116, minor: 0, access: "rwm" },
    { allow: true, type: "c", major: 116, minor: 33, access: "rwm" },
  ]);
});

test("privileged: every host device and allow-all", () => {
  const r = containerDevices({ cri: [dev("/dev/fuse", "/dev/fuse")], privileged: true, ...io });
  expect(r.rules).toEqual([{ allow: true, access: "rwm" }]);
  expect(r.devices).toHaveLength(3);
});

test("missing device or bad permissions are invalid-argument", () => {
  expect(() => containerDevices({ cri: [dev("/dev/x", "/dev/nope")], privileged: false, ...io })).toThrow(
    expect.objectContaining({ kind: "invalid-argument", message: expect.stringContaining('failed to add device "/dev/nope"') }),
  );
  expect(() => containerDevices({ cri: [dev("/dev/fuse", "/dev/fuse", "rwx")], privileged: false, ...io })).toThrow(/invalid device permissions/);
});

test("additional_devices: HOST[:CONTAINER[:PERMISSIONS]], before the CRI's devices (which win on the same path)", () => {
  expect(parseDeviceSpec("/dev/fuse")).toEqual({ hostPath: "/dev/fuse", containerPath: "/dev/fuse", permissions: "rwm" });
  expect(parseDeviceSpec("/dev/fuse:/dev/f:r")).toEqual({ hostPath: "/dev/fuse", containerPath: "/dev/f", permissions: "r" });
  expect(() => parseDeviceSpec("dev/fuse")).toThrow(expect.objectContaining({ kind: "invalid-argument" }));
  expect(() => parseDeviceSpec("/a:/b:r:x")).toThrow('invalid device "/a:/b:r:x"');
  const r = containerDevices({
    cri: [dev("/dev/f", "/dev/fuse", "rwm")],
    additional: ["/dev/fuse:/dev/f:r", "/dev/snd:/dev/snd:rw"],
    privileged: false,
    ...io,
  });
  expect(r.devices.map((d) => d.path)).toEqual(["/dev/snd/controlC0", "/dev/snd/timer", "/dev/f"]);
  expect(r.rules.map((x) => x.access)).toEqual(["rwm", "r", "rw", "rw", "rwm"]);
});

test("io.kubernetes.cri-o.Devices: devices of allowed_devices after additional_devices; others are invalid-argument", () => {
  const r = containerDevices({
    cri: [],
    additional: ["/dev/fuse"],
    annotation: "/dev/snd:/dev/audio:r,,/dev/fuse:/dev/fuse2",
    allowed: ["/dev/snd", "/dev/fuse"],
    privileged: false,
    ...io,
  });
  expect(r.devices.map((d) => d.path)).toEqual(["/dev/fuse", "/dev/audio/controlC0", "/dev/audio/timer", "/dev/fuse2"]);
  expect(r.rules.map((x) => x.access)).toEqual(["rwm", "rwm", "r", "r", "rwm"]);
  expect(annotationDevices("", [])).toEqual([]);
  expect(() => annotationDevices("/dev/fuse", ["/dev/snd"])).toThrow(
    expect.objectContaining({ kind: "invalid-argument", message: "device /dev/fuse is specified but is not in allowed_devices" }),
  );
  expect(() => annotationDevices("/dev/fuse:/fuse", ["/dev/fuse"])).toThrow("the container path must be under /dev/");
  expect(() => annotationDevices("fuse", ["fuse"])).toThrow(expect.objectContaining({ kind: "invalid-argument" }));
});

test("device ownership: the CRI's devices take the owner; additional and annotation devices keep the host's", () => {
  const r = containerDevices({ cri: [dev("/dev/snd", "/dev/snd")], additional: ["/dev/fuse"], privileged: false, owner: { uid: 1234, gid: 5678 }, ...io });
  expect(r.devices.map((d) => [d.path, d.uid, d.gid])).toEqual([
    ["/dev/fuse", 0, 0],
    ["/dev/snd/controlC0", 1234, 5678],
    ["/dev/snd/timer", 1234, 5678],
  ]);
});

test("additional_devices at start: an entry naming no host device is refused, naming it", () => {
  const io = { devicesAt: (p: string) => (p === "/dev/null" ? [{ path: "/dev/null", type: "c", major: 1, minor: 3 }] : []) } as never;
  expect(() => checkAdditionalDevices(["/dev/null:/dev/x:rwm"], io)).not.toThrow();
  expect(() => checkAdditionalDevices(["/dev/null", "/dev/nope"], io)).toThrow(
    expect.objectContaining({ kind: "invalid-argument", message: expect.stringContaining('invalid additional_devices entry "/dev/nope"') }),
  );
});
