/**
 * CDI (Container Device Interface, https://github.com/cncf-tags/container-device-interface
 * SPEC.md) for the spec builder: the devices a container asks for (the CRI's CDI_devices and
 * cdi.k8s.io/<name> annotations) and their container edits applied to an OCI spec the way the CDI
 * library does. Pure: the host's device nodes come in through a function. Spec files are parsed
 * and validated in cdi-spec.ts; the registry that reads the spec dirs is ../cdi-registry.ts.
 */
import type { ContainerConfig } from "../../gen/runtime/v1/api_pb.ts";
import { invalid } from "../../errors.ts";
import type { Device, Hook, Hooks, IntelRdt, Mount, Spec } from "../../oci/spec-types.ts";

export { CDI_VERSIONS, parseCdiSpec } from "./cdi-spec.ts";

/** The annotation prefix of CDI device requests (value: comma-separated qualified names). */
export const CDI_ANNOTATION_PREFIX = "cdi.k8s.io/";

/** A device node edit (CDI DeviceNode). */
export interface CdiDeviceNode {
  path: string;
  hostPath?: string;
  type?: string;
  major?: number;
  minor?: number;
  fileMode?: number;
  permissions?: string;
  uid?: number;
  gid?: number;
}

/** A mount edit (CDI Mount). */
export interface CdiMount {
  hostPath: string;
  containerPath: string;
  type?: string;
  options?: string[];
}

/** A hook edit (CDI Hook). */
export interface CdiHook {
  hookName: string;
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

/** CDI ContainerEdits (netDevices, of CDI 1.0, are refused: this runtime cannot move interfaces). */
export interface CdiEdits {
  env?: string[];
  deviceNodes?: CdiDeviceNode[];
  mounts?: CdiMount[];
  hooks?: CdiHook[];
  additionalGIDs?: number[];
  /** linux.intelRdt as it is; the last one applied wins (CDI 0.7.0). */
  intelRdt?: IntelRdt;
}

/** A parsed, validated spec file. */
export interface CdiSpec {
  path: string;
  /** Index of its directory in cdi_spec_dirs: a higher one overrides a lower one. */
  priority: number;
  kind: string;
  edits: CdiEdits;
  /** Device name (without the kind) → its edits. */
  devices: Map<string, CdiEdits>;
}

/** A requested device resolved: the spec it comes from (for the spec-wide edits) and its own edits. */
export interface CdiResolved {
  name: string;
  spec: CdiSpec;
  edits: CdiEdits;
}

/**
 * The CDI devices a container asks for: the CRI's CDI_devices first, then those of its
 * cdi.k8s.io/* annotations not already asked (CRI-O's order). invalid-argument for a name that
 * is not a fully qualified vendor.com/class=name.
 */
export function cdiRequests(config: Pick<ContainerConfig, "CDIDevices" | "annotations">): string[] {
  const out: string[] = [];
  for (const d of config.CDIDevices) {
    if (!QUALIFIED.test(d.name)) throw invalid(`invalid CDI device name "${d.name}": expected vendor.com/class=name`);
    if (!out.includes(d.name)) out.push(d.name);
  }
  for (const [k, v] of Object.entries(config.annotations).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!k.startsWith(CDI_ANNOTATION_PREFIX)) continue;
    for (const name of v.split(",")) {
      if (!QUALIFIED.test(name)) throw invalid(`invalid CDI device name "${name}" in annotation "${k}": expected vendor.com/class=name`);
      if (!out.includes(name)) out.push(name);
    }
  }
  return out;
}

/**
 * Applies the edits of resolved devices to `spec` in place, as the CDI library's InjectDevices:
 * each spec's own edits once (before its first device's), then each device's. Env is appended; a
 * device node replaces one at the same path, gets its type, major/minor and mode from the host
 * node when absent, the process's uid/gid when it names none and they are not 0, and a cgroup
 * rule for "b"/"c" nodes; a mount replaces one at the same container path and mounts are sorted
 * by depth; hooks go to their stage; intelRdt replaces the spec's; additional GIDs (0 ignored)
 * are added once.
 */
export function applyCdiEdits(spec: Spec, resolved: readonly CdiResolved[], hostDevice: (path: string) => Device): void {
  const all: CdiEdits[] = [];
  const seen = new Set<CdiSpec>();
  for (const r of resolved) {
    if (!seen.has(r.spec)) {
      seen.add(r.spec);
      all.push(r.spec.edits);
    }
    all.push(r.edits);
  }
  const process = spec.process;
  const linux = (spec.linux ??= {});
  for (const e of all) {
    if (e.env?.length && process) process.env = [...(process.env ?? []), ...e.env];
    for (const n of e.deviceNodes ?? []) {
      const dev = deviceOf(n, hostDevice);
      if (dev.uid === undefined && process && process.user.uid > 0) dev.uid = process.user.uid;
      if (dev.gid === undefined && process && process.user.gid > 0) dev.gid = process.user.gid;
      linux.devices = [...(linux.devices ?? []).filter((d) => d.path !== dev.path), dev];
      if (dev.type === "b" || dev.type === "c") {
        const access = n.permissions === "none" ? "" : n.permissions || "rwm";
        const resources = (linux.resources ??= {});
        resources.devices = [...(resources.devices ?? []), { allow: true, type: dev.type, major: dev.major, minor: dev.minor, access }];
      }
    }
    if (e.mounts?.length) {
      const mounts = spec.mounts ?? [];
      for (const m of e.mounts) {
        const i = mounts.findIndex((x) => x.destination === m.containerPath);
        if (i >= 0) mounts.splice(i, 1);
        const mount: Mount = {
          destination: m.containerPath,
          source: m.hostPath,
          ...(m.type ? { type: m.type } : {}),
          ...(m.options ? { options: m.options } : {}),
        };
        mounts.push(mount);
      }
      spec.mounts = sortByDepth(mounts);
    }
    for (const h of e.hooks ?? []) {
      const hook: Hook = {
        path: h.path,
        ...(h.args ? { args: h.args } : {}),
        ...(h.env ? { env: h.env } : {}),
        ...(h.timeout !== undefined ? { timeout: h.timeout } : {}),
      };
      const hooks: Hooks = (spec.hooks ??= {});
      const stage = h.hookName as keyof Hooks;
      hooks[stage] = [...(hooks[stage] ?? []), hook];
    }
    if (e.intelRdt) linux.intelRdt = { ...e.intelRdt };
    if (process) {
      for (const g of e.additionalGIDs ?? []) {
        if (g === 0) continue;
        const gids = (process.user.additionalGids ??= []);
        if (!gids.includes(g)) gids.push(g);
      }
    }
  }
}

// --- internal ---

const QUALIFIED = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?\/[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?=[A-Za-z0-9](?:[A-Za-z0-9_.:-]*[A-Za-z0-9])?$/;

/**
 * An OCI device from a CDI node, the CDI library's fillMissingInfo: the host node (hostPath, or
 * path) gives the mode when absent and, unless type and major are given (or it is a fifo), the
 * type and major/minor; a host node of another type than the one given is an error.
 */
function deviceOf(n: CdiDeviceNode, hostDevice: (path: string) => Device): Device {
  const hostPath = n.hostPath || n.path;
  const minimal = !!n.type && ((n.major ?? 0) !== 0 || n.type === "p");
  let host: Device | undefined;
  try {
    host = hostDevice(hostPath);
  } catch (e) {
    if (!minimal) throw invalid(`failed to stat CDI host device "${hostPath}": ${e instanceof Error ? e.message : String(e)}`);
  }
  let type = n.type as Device["type"] | undefined;
  let major = n.major ?? 0;
  let minor = n.minor ?? 0;
  if (host && !minimal) {
    type ??= host.type;
    const hostType = host.type === "u" ? "c" : host.type;
    if ((type === "u" ? "c" : type) !== hostType) throw invalid(`CDI device ("${n.path}", "${hostPath}"): host type mismatch (${type}, ${host.type})`);
    if (type !== "p" && major === 0) {
      major = host.major ?? 0;
      minor = host.minor ?? 0;
    }
  }
  const fileMode = n.fileMode ?? host?.fileMode;
  const dev: Device = { type: type ?? "c", path: n.path };
  if (dev.type !== "p") {
    dev.major = major;
    dev.minor = minor;
  }
  if (fileMode !== undefined) dev.fileMode = fileMode;
  if (n.uid !== undefined) dev.uid = n.uid;
  if (n.gid !== undefined) dev.gid = n.gid;
  return dev;
}

/** Mounts sorted (stably) by the depth of their destination, as the CDI library does. */
function sortByDepth(mounts: Mount[]): Mount[] {
  const depth = (m: Mount) => (m.destination.replace(/\/+$/, "").match(/\//g) ?? []).length;
  return mounts
    .map((m, i) => ({ m, i }))
    .sort((a, b) => depth(a.m) - depth(b.m) || a.i - b.i)
    .map((x) => x.m);
}
