/**
 * CDI spec files parsed and validated as the CDI library reads them (strictly: an unknown field is
 * an error), for cdiVersion 0.3.0–0.8.0. The edits' types and their application are in cdi.ts.
 */
import type { IntelRdt } from "../../oci/spec-types.ts";
import type { CdiDeviceNode, CdiEdits, CdiSpec } from "./cdi.ts";

/** The CDI spec versions this runtime reads. */
export const CDI_VERSIONS = ["0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0"];

/**
 * Parses one spec file (JSON or YAML, by its text) and validates it as the CDI library does:
 * a supported cdiVersion, a vendor.com/class kind, at least one device, unique device names,
 * and valid edits. Throws an Error naming the file and what is wrong.
 */
export function parseCdiSpec(text: string, path: string, priority: number, parseYaml: (t: string) => unknown): CdiSpec {
  let raw: unknown;
  try {
    raw = path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new Error(`CDI spec "${path}": cannot parse: ${e instanceof Error ? e.message : String(e)}`);
  }
  const fail = (why: string): never => {
    throw new Error(`CDI spec "${path}": ${why}`);
  };
  if (!isObject(raw)) return fail("not an object");
  known(raw, ["cdiVersion", "kind", "annotations", "devices", "containerEdits"], "", fail);
  if (typeof raw.cdiVersion !== "string" || !CDI_VERSIONS.includes(raw.cdiVersion))
    fail(`unsupported cdiVersion ${JSON.stringify(raw.cdiVersion)} (supported: ${CDI_VERSIONS.join(", ")})`);
  const kind = raw.kind;
  if (typeof kind !== "string" || !KIND.test(kind)) return fail(`invalid kind ${JSON.stringify(kind)}: expected vendor.com/class`);
  const edits = parseEdits(raw.containerEdits, "containerEdits", fail);
  if (!Array.isArray(raw.devices) || raw.devices.length === 0) fail("invalid spec, no devices");
  const devices = new Map<string, CdiEdits>();
  for (const [i, d] of (raw.devices as unknown[]).entries()) {
    if (!isObject(d)) return fail(`devices[${i}] is not an object`);
    known(d, ["name", "annotations", "containerEdits"], `devices[${i}].`, fail);
    const name = d.name;
    if (typeof name !== "string" || !DEVICE_NAME.test(name)) return fail(`devices[${i}]: invalid device name ${JSON.stringify(name)}`);
    if (devices.has(name)) fail(`invalid spec, multiple device "${name}"`);
    const de = parseEdits(d.containerEdits, `device "${name}" containerEdits`, fail);
    if (isEmpty(de)) fail(`invalid device "${name}", empty device edits`);
    devices.set(name, de);
  }
  return { path, priority, kind, edits, devices };
}

// --- internal ---

const KIND = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?)*\/[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
const DEVICE_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9_.:-]*[A-Za-z0-9])?$/;
const HOOK_NAMES = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];
const EDIT_KEYS = ["env", "deviceNodes", "mounts", "hooks", "additionalGIDs", "intelRdt", "netDevices"];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The CDI library reads specs strictly: an unknown field is an error. */
function known(o: Record<string, unknown>, keys: string[], where: string, fail: (why: string) => never): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(`unknown field "${where}${k}"`);
}

function strings(v: unknown, what: string, fail: (why: string) => never): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) return fail(`${what} must be a list of strings`);
  return v as string[];
}

function uint(v: unknown, what: string, fail: (why: string) => never): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff) return fail(`${what} must be a non-negative integer`);
  return v;
}

function env(v: unknown, what: string, fail: (why: string) => never): string[] | undefined {
  const list = strings(v, what, fail);
  for (const e of list ?? []) if (e.indexOf("=") <= 0) fail(`invalid environment variable ${JSON.stringify(e)} in ${what}`);
  return list;
}

function parseEdits(v: unknown, where: string, fail: (why: string) => never): CdiEdits {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) return fail(`${where} is not an object`);
  known(v, EDIT_KEYS, `${where}.`, fail);
  if (Array.isArray(v.netDevices) && v.netDevices.length > 0) fail(`${where}: netDevices edits are not supported by this runtime`);
  const out: CdiEdits = {};
  const e = env(v.env, `${where}.env`, fail);
  if (e) out.env = e;
  if (v.deviceNodes !== undefined && v.deviceNodes !== null) {
    if (!Array.isArray(v.deviceNodes)) return fail(`${where}.deviceNodes must be a list`);
    out.deviceNodes = v.deviceNodes.map((n, i) => deviceNode(n, `${where}.deviceNodes[${i}]`, fail));
  }
  if (v.mounts !== undefined && v.mounts !== null) {
    if (!Array.isArray(v.mounts)) return fail(`${where}.mounts must be a list`);
    out.mounts = v.mounts.map((m, i) => {
      const w = `${where}.mounts[${i}]`;
      if (!isObject(m)) return fail(`${w} is not an object`);
      known(m, ["hostPath", "containerPath", "type", "options"], `${w}.`, fail);
      if (typeof m.hostPath !== "string" || m.hostPath === "") return fail(`${w}: invalid mount, empty host path`);
      if (typeof m.containerPath !== "string" || m.containerPath === "") return fail(`${w}: invalid mount, empty container path`);
      if (m.type !== undefined && typeof m.type !== "string") fail(`${w}.type must be a string`);
      const options = strings(m.options, `${w}.options`, fail);
      return { hostPath: m.hostPath, containerPath: m.containerPath, ...(m.type ? { type: m.type as string } : {}), ...(options ? { options } : {}) };
    });
  }
  if (v.hooks !== undefined && v.hooks !== null) {
    if (!Array.isArray(v.hooks)) return fail(`${where}.hooks must be a list`);
    out.hooks = v.hooks.map((h, i) => {
      const w = `${where}.hooks[${i}]`;
      if (!isObject(h)) return fail(`${w} is not an object`);
      known(h, ["hookName", "path", "args", "env", "timeout"], `${w}.`, fail);
      if (typeof h.hookName !== "string" || !HOOK_NAMES.includes(h.hookName)) return fail(`${w}: invalid hook name ${JSON.stringify(h.hookName)}`);
      if (typeof h.path !== "string" || h.path === "") return fail(`${w}: invalid hook "${h.hookName}" with empty path`);
      const timeout = h.timeout === undefined || h.timeout === null ? undefined : h.timeout;
      if (timeout !== undefined && (typeof timeout !== "number" || !Number.isInteger(timeout) || timeout <= 0)) fail(`${w}.timeout must be a positive integer`);
      const args = strings(h.args, `${w}.args`, fail);
      const henv = env(h.env, `${w}.env`, fail);
      return {
        hookName: h.hookName,
        path: h.path,
        ...(args ? { args } : {}),
        ...(henv ? { env: henv } : {}),
        ...(timeout !== undefined ? { timeout: timeout as number } : {}),
      };
    });
  }
  if (v.intelRdt !== undefined && v.intelRdt !== null) {
    const r = v.intelRdt;
    const w = `${where}.intelRdt`;
    if (!isObject(r)) return fail(`${w} is not an object`);
    known(r, ["closID", "l3CacheSchema", "memBwSchema", "enableCMT", "enableMBM"], `${w}.`, fail);
    const rdt: IntelRdt = {};
    for (const k of ["closID", "l3CacheSchema", "memBwSchema"] as const) {
      if (r[k] === undefined || r[k] === null) continue;
      if (typeof r[k] !== "string") fail(`${w}.${k} must be a string`);
      rdt[k] = r[k] as string;
    }
    for (const k of ["enableCMT", "enableMBM"] as const) {
      if (r[k] === undefined || r[k] === null) continue;
      if (typeof r[k] !== "boolean") fail(`${w}.${k} must be a boolean`);
      rdt[k] = r[k] as boolean;
    }
    const c = rdt.closID;
    if (c !== undefined && c !== "/" && (c.length >= 4096 || c === "." || c === ".." || /[/\n]/.test(c))) fail(`${w}: invalid closID ${JSON.stringify(c)}`);
    out.intelRdt = rdt;
  }
  if (v.additionalGIDs !== undefined && v.additionalGIDs !== null) {
    if (!Array.isArray(v.additionalGIDs)) return fail(`${where}.additionalGIDs must be a list`);
    out.additionalGIDs = v.additionalGIDs.map((g, i) => uint(g, `${where}.additionalGIDs[${i}]`, fail) as number);
  }
  return out;
}

function deviceNode(n: unknown, w: string, fail: (why: string) => never): CdiDeviceNode {
  if (!isObject(n)) return fail(`${w} is not an object`);
  known(n, ["path", "hostPath", "type", "major", "minor", "fileMode", "permissions", "uid", "gid"], `${w}.`, fail);
  if (typeof n.path !== "string" || n.path === "") return fail(`${w}: invalid (empty) device path`);
  if (n.hostPath !== undefined && typeof n.hostPath !== "string") fail(`${w}.hostPath must be a string`);
  const type = n.type ?? "";
  if (typeof type !== "string" || !["", "b", "c", "u", "p"].includes(type)) fail(`${w}: device "${n.path}": invalid type ${JSON.stringify(n.type)}`);
  const perms = n.permissions ?? "";
  if (typeof perms !== "string" || (perms !== "none" && !/^[rwm]*$/.test(perms)))
    fail(`${w}: device "${n.path}": invalid permissions ${JSON.stringify(n.permissions)}`);
  const num = (k: "major" | "minor" | "fileMode" | "uid" | "gid") => uint(n[k], `${w}.${k}`, fail);
  const out: CdiDeviceNode = { path: n.path };
  if (n.hostPath) out.hostPath = n.hostPath as string;
  if (type) out.type = type as string;
  for (const k of ["major", "minor", "fileMode", "uid", "gid"] as const) {
    const x = num(k);
    if (x !== undefined) out[k] = x;
  }
  if (perms) out.permissions = perms as string;
  return out;
}

function isEmpty(e: CdiEdits): boolean {
  return !e.env?.length && !e.deviceNodes?.length && !e.mounts?.length && !e.hooks?.length && !e.additionalGIDs?.length && !e.intelRdt;
}
