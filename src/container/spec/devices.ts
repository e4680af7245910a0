import { posix } from "node:path";
import type { Device as CriDevice } from "../../gen/runtime/v1/api_pb.ts";
import { invalid, messageOf } from "../../errors.ts";
import type { Device, DeviceCgroup } from "../../oci/spec-types.ts";
import type { SpecIo } from "./types.ts";

/** The pod annotation asking for devices (CRI-O's; honoured only where the handler allows it). */
export const DEVICES_ANNOTATION = "io.kubernetes.cri-o.Devices";

/**
 * additional_devices must name host devices (CRI-O's LoadDevices at start): a typo stops the
 * daemon (invalid-argument naming the entry) instead of failing every container.
 */
export function checkAdditionalDevices(entries: readonly string[], io: Pick<SpecIo, "devicesAt">): void {
  for (const entry of entries) {
    try {
      if (io.devicesAt(parseDeviceSpec(entry).hostPath).length === 0) throw new Error("no device nodes found");
    } catch (e) {
      throw invalid(`invalid additional_devices entry "${entry}": ${messageOf(e)}`);
    }
  }
}

/** Options of containerDevices. */
export interface DeviceInput {
  cri: readonly CriDevice[];
  /** additional_devices of the configuration ("HOST[:CONTAINER[:PERMISSIONS]]"), added before the CRI's. */
  additional?: readonly string[];
  /**
   * The pod's io.kubernetes.cri-o.Devices annotation (comma-separated HOST[:CONTAINER[:PERMISSIONS]];
   * present only when the pod's runtime handler allows it), added after additional_devices.
   */
  annotation?: string;
  /** allowed_devices: the host paths the annotation may name. */
  allowed?: readonly string[];
  /**
   * device_ownership_from_security_context: the CRI's devices are owned by this uid/gid (the
   * container's user) instead of the host node's owner.
   */
  owner?: { uid: number; gid: number };
  privileged: boolean;
  /** The device nodes at a host path (one node, or all below a directory, with paths relative-joined). */
  devicesAt: (path: string) => Device[];
  hostDevices: () => Device[];
}

/** Parses an additional_devices entry "HOST[:CONTAINER[:PERMISSIONS]]" (CONTAINER defaults to HOST, PERMISSIONS to rwm). */
export function parseDeviceSpec(entry: string): { hostPath: string; containerPath: string; permissions: string } {
  const [hostPath = "", containerPath, permissions] = entry.split(":");
  if (!hostPath.startsWith("/") || (containerPath !== undefined && !containerPath.startsWith("/")) || entry.split(":").length > 3)
    throw invalid(`invalid device "${entry}": expected HOST[:CONTAINER[:PERMISSIONS]] with absolute paths`);
  return { hostPath, containerPath: containerPath || hostPath, permissions: permissions || "rwm" };
}

/**
 * The devices of an io.kubernetes.cri-o.Devices annotation, as CRI-O's DevicesFromAnnotation: each
 * host path must be in allowed_devices and each container path under /dev/ (invalid-argument otherwise).
 */
export function annotationDevices(annotation: string, allowed: readonly string[]): Array<{ hostPath: string; containerPath: string; permissions: string }> {
  const out = [];
  for (const entry of annotation.split(",")) {
    if (entry === "") continue;
    const d = parseDeviceSpec(entry);
    if (!allowed.includes(d.hostPath)) throw invalid(`device ${d.hostPath} is specified but is not in allowed_devices`);
    if (!d.containerPath.startsWith("/dev/")) throw invalid(`invalid device "${entry}": the container path must be under /dev/`);
    out.push(d);
  }
  return out;
}

/**
 * Device nodes and device-cgroup rules: everything is denied first (runc then adds its standard
 * set: null, zero, full, tty, random, urandom, pts, ptmx, net/tun); privileged containers get
 * every host device and access to all; additional_devices, the pod's Devices annotation, then the
 * CRI's devices, are looked up on the host (a directory adds each device below it) with the
 * permissions asked ("rwm" default). With `owner` (device_ownership_from_security_context, given
 * for non-privileged containers only), the CRI's devices are owned by the container's uid and gid.
 */
export function containerDevices(d: DeviceInput): { devices: Device[]; rules: DeviceCgroup[] } {
  const devices: Device[] = [];
  const rules: DeviceCgroup[] = [{ allow: false, access: "rwm" }];
  if (d.privileged) {
    devices.push(...d.hostDevices());
    rules.splice(0, rules.length, { allow: true, access: "rwm" });
  }
  const fromCri = new Set<unknown>(d.cri);
  const wanted = [...(d.additional ?? []).map(parseDeviceSpec), ...annotationDevices(d.annotation ?? "", d.allowed ?? []), ...d.cri];
  for (const c of wanted as ReadonlyArray<{ hostPath: string; containerPath: string; permissions: string }>) {
    const owner = fromCri.has(c) ? d.owner : undefined;
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
      const node: Device = { ...dev, path, ...(owner ? { uid: owner.uid, gid: owner.gid } : {}) };
      const i = devices.findIndex((x) => x.path === path);
      if (i >= 0) devices.splice(i, 1);
      devices.push(node);
      if (!d.privileged && (dev.type === "c" || dev.type === "b")) rules.push({ allow: true, type: dev.type, major: dev.major, minor: dev.minor, access });
    }
  }
  return { devices, rules };
}
