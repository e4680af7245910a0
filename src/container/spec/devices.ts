import { posix } from "node:path";
import type { Device as CriDevice } from "../../gen/runtime/v1/api_pb.ts";
import { invalid, messageOf } from "../../errors.ts";
import type { Device, DeviceCgroup } from "../../oci/spec-types.ts";

/** Options of containerDevices. */
export interface DeviceInput {
  cri: readonly CriDevice[];
  privileged: boolean;
  /** The device nodes at a host path (one node, or all below a directory, with paths relative-joined). */
  devicesAt: (path: string) => Device[];
  hostDevices: () => Device[];
}

/**
 * Device nodes and device-cgroup rules: everything is denied first (runc then adds its standard
 * set: null, zero, full, tty, random, urandom, pts, ptmx); privileged containers get every host
 * device and access to all; CRI devices are looked up on the host (a directory adds each device
 * below it) with the permissions asked ("rwm" by default).
 */
export function containerDevices(d: DeviceInput): { devices: Device[]; rules: DeviceCgroup[] } {
  const devices: Device[] = [];
  const rules: DeviceCgroup[] = [{ allow: false, access: "rwm" }];
  if (d.privileged) {
    devices.push(...d.hostDevices());
    rules.splice(0, rules.length, { allow: true, access: "rwm" });
  }
  for (const c of d.cri) {
    if (!c.hostPath || !c.containerPath) throw invalid("device host_path and container_path must both be set");
    const access = c.permissions || "rwm";
    if (!/^[rwm]{1,3}$/.test(access)) throw invalid(`invalid device permissions "${c.permissions}" for "${c.hostPath}"`);
    let found: Device[];
    try {
      found = d.devicesAt(c.hostPath);
    } catch (e) {
      throw invalid(`failed to add device "${c.hostPath}": ${messageOf(e)}`);
    }
    if (found.length === 0) throw invalid(`failed to add device "${c.hostPath}": no device nodes found`);
    for (const dev of found) {
      const rel = posix.relative(c.hostPath, dev.path);
      const path = rel === "" ? c.containerPath : posix.join(c.containerPath, rel);
      const node: Device = { ...dev, path };
      const i = devices.findIndex((x) => x.path === path);
      if (i >= 0) devices.splice(i, 1);
      devices.push(node);
      if (!d.privileged && (dev.type === "c" || dev.type === "b"))
        rules.push({ allow: true, type: dev.type, major: dev.major, minor: dev.minor, access });
    }
  }
  return { devices, rules };
}
