import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { MountSchema } from "../../../../src/gen/runtime/v1/api_pb.ts";
import { containerMounts, type MountInput } from "../../../../src/container/spec/mounts.ts";
import { containerConfig, expectGolden } from "./fixtures.ts";

const pod = { shmPath: "/run/pod/shm", hostIpc: false, hostnamePath: "/run/pod/hostname", resolvConfPath: "/run/pod/resolv.conf", hostsPath: "/run/pod/hosts" };
const existing = new Set(["/srv/data", "/srv/cache", "/run", "/etc/custom-resolv"]);
const input = (o: Partial<MountInput>): MountInput => ({
  cri: [],
  pod,
  privileged: false,
  readonlyRootfs: false,
  tmpfsDirs: false,
  generated: [],
  rro: true,
  realpath: (p) => (existing.has(p) ? p : undefined),
  ...o,
});
const mnt = (o: object) => create(MountSchema, o);
const dests = (r: { mounts: Array<{ destination: string }> }) => r.mounts.map((m) => m.destination);

describe("containerMounts", () => {
  test("the fixture container (golden): defaults, pod files, CRI mounts parents first", () => {
    const r = containerMounts(input({ cri: containerConfig().mounts }));
    expectGolden("spec-mounts", r);
    expect(r.mkdirs).toEqual(["/srv/missing-config"]);
    expect(r.rootfsPropagation).toBe("rslave");
  });

  test("a CRI mount replaces the default at the same destination; /dev and /sys drop everything below", () => {
    const r = containerMounts(
      input({ cri: [mnt({ containerPath: "/etc/resolv.conf", hostPath: "/etc/custom-resolv" }), mnt({ containerPath: "/dev", hostPath: "/run" })] }),
    );
    expect(dests(r).filter((d) => d.startsWith("/dev"))).toEqual(["/dev"]);
    expect(r.mounts.filter((m) => m.destination === "/etc/resolv.conf")).toEqual([
      { destination: "/etc/resolv.conf", type: "bind", source: "/etc/custom-resolv", options: ["rbind", "rprivate", "rw"] },
    ]);
    const sys = containerMounts(input({ cri: [mnt({ containerPath: "/sys/", hostPath: "/run" })] }));
    expect(dests(sys).filter((d) => d.startsWith("/sys"))).toEqual(["/sys"]);
  });

  test("bidirectional propagation makes the rootfs rshared", () => {
    const r = containerMounts(
      input({ cri: [mnt({ containerPath: "/a", hostPath: "/run", propagation: 1 }), mnt({ containerPath: "/b", hostPath: "/run", propagation: 2 })] }),
    );
    expect(r.rootfsPropagation).toBe("rshared");
    expect(r.mounts.find((m) => m.destination === "/b")?.options).toEqual(["rbind", "rshared", "rw"]);
  });

  test("recursive read-only: rro when supported, errors otherwise", () => {
    const ok = containerMounts(input({ cri: [mnt({ containerPath: "/a", hostPath: "/run", readonly: true, recursiveReadOnly: true })] }));
    expect(ok.mounts.at(-1)?.options).toEqual(["rbind", "rprivate", "rro"]);
    const bad =
      (o: object, extra: Partial<MountInput> = {}) =>
      () =>
        containerMounts(input({ cri: [mnt({ containerPath: "/a", hostPath: "/run", ...o })], ...extra }));
    expect(bad({ recursiveReadOnly: true })).toThrow(/conflicts with read-write/);
    expect(bad({ recursiveReadOnly: true, readonly: true }, { rro: false })).toThrow(/not available/);
    expect(bad({ recursiveReadOnly: true, readonly: true, propagation: 1 })).toThrow(/requires private propagation/);
  });

  test("bad CRI mounts are invalid-argument", () => {
    expect(() => containerMounts(input({ cri: [mnt({ containerPath: "", hostPath: "/x" })] }))).toThrow(expect.objectContaining({ kind: "invalid-argument" }));
    expect(() => containerMounts(input({ cri: [mnt({ containerPath: "/x", hostPath: "" })] }))).toThrow(/host_path is empty/);
    // id mappings on a mount need the pod's own user namespace, both kinds, and sane ranges
    const mapped = (o: Record<string, unknown>) => mnt({ containerPath: "/x", hostPath: "/run", ...o });
    const one = [{ hostId: 65536, containerId: 0, length: 65536 }];
    expect(() => containerMounts(input({ cri: [mapped({ uidMappings: one, gidMappings: one })] }))).toThrow(/host's user namespace/);
    expect(() => containerMounts(input({ userns: true, cri: [mapped({ uidMappings: one })] }))).toThrow(/both uid and gid/);
    expect(() =>
      containerMounts(input({ userns: true, cri: [mapped({ uidMappings: [{ hostId: 1, containerId: 0, length: 0 }], gidMappings: one })] })),
    ).toThrow(/invalid id mapping/);
    expect(() => containerMounts(input({ userns: true, cri: [mapped({ uidMappings: one, gidMappings: one, propagation: 2 })] }))).toThrow(/bidirectional/);
    expect(containerMounts(input({ userns: true, cri: [mapped({ uidMappings: one, gidMappings: one })] })).mounts.at(-1)).toMatchObject({
      destination: "/x",
      type: "bind",
    });
    expect(() => containerMounts(input({ cri: [mnt({ containerPath: "/x", hostPath: "/run", imageSubPath: "bin" })] }))).toThrow(/not an image volume/);
  });

  test("image volumes: a read-only, nosuid, nodev, noexec bind of what the caller mounted; never unmounted ones", () => {
    const vol = mnt({ containerPath: "/models", image: { image: "registry.example/models:1" }, readonly: true });
    const r = containerMounts(input({ cri: [vol], imageVolume: (c) => (c === vol ? "/var/lib/crio/storage/c1/image-volumes/0" : undefined) }));
    expect(r.mounts.at(-1)).toEqual({
      destination: "/models",
      type: "bind",
      source: "/var/lib/crio/storage/c1/image-volumes/0",
      options: ["rbind", "rprivate", "ro", "nosuid", "nodev", "noexec"],
    });
    expect(r.mkdirs).toEqual([]);
    expect(() => containerMounts(input({ cri: [vol] }))).toThrow(
      expect.objectContaining({ kind: "invalid-argument", message: expect.stringContaining("is not mounted") }),
    );
    const both = mnt({ containerPath: "/m", hostPath: "/run", image: { image: "x" } });
    expect(() => containerMounts(input({ cri: [both], imageVolume: () => "/somewhere" }))).toThrow(/both host_path and image/);
  });

  test("privileged: writable sysfs and cgroupfs, every base mount read-write", () => {
    const r = containerMounts(input({ privileged: true, readonlyRootfs: true }));
    expect(r.mounts.find((m) => m.destination === "/sys")?.options).toEqual(["nosuid", "noexec", "nodev", "rw", "rslave"]);
    expect(r.mounts.find((m) => m.destination === "/sys/fs/cgroup")?.options).toContain("rw");
    expect(r.mounts.every((m) => !m.options?.includes("ro"))).toBe(true);
  });

  test("read-only rootfs binds the pod files read-only; read_only adds tmpfs dirs", () => {
    const r = containerMounts(input({ readonlyRootfs: true, tmpfsDirs: true }));
    expect(r.mounts.find((m) => m.destination === "/etc/hostname")?.options).toEqual(["ro", "bind"]);
    expect(dests(r)).toEqual(expect.arrayContaining(["/run", "/tmp", "/var/tmp"]));
  });

  test("host IPC without a pod shm binds the host's /dev/shm; no pod files, no pod mounts", () => {
    const r = containerMounts(input({ pod: { hostIpc: true } }));
    expect(r.mounts.find((m) => m.destination === "/dev/shm")).toEqual({ destination: "/dev/shm", type: "bind", source: "/dev/shm", options: ["rw", "bind"] });
    expect(dests(r).some((d) => d.startsWith("/etc"))).toBe(false);
  });

  test("generated passwd/group files are bound", () => {
    const r = containerMounts(input({ generated: [{ source: "/run/c/passwd", destination: "/etc/passwd" }] }));
    expect(r.mounts.at(-1)).toEqual({
      destination: "/etc/passwd",
      type: "bind",
      source: "/run/c/passwd",
      options: ["rw", "bind", "nodev", "nosuid", "noexec"],
    });
  });
});
