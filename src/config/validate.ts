import { isIP } from "node:net";
import { isAbsolute } from "node:path";
import { readFileSync } from "node:fs";
import { parseMountsFile, zoneFile } from "../container/node-files.ts";
import { parseStorageOptions } from "./storage-options.ts";
import { parseByteSize } from "../util/quantity.ts";
import { ConfigError } from "./error.ts";
import { TABLE_PATH, allFields, type Config } from "./schema.ts";

/** Linux capability names (without CAP_), for default_capabilities. */
// biome-ignore format: a packed table of names, one per line would be hundreds of lines
export const CAPABILITIES = [
  "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
  "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
  "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
  "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
  "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
  "CHECKPOINT_RESTORE",
];

/**
 * The valid allowed_annotations entries: CRI-O 1.26's experimental annotations (its
 * pkg/annotations AllAllowedAnnotations), each with the newer *.crio.io name CRI-O later gave it.
 * One entry is one annotation: naming either of its names allows both. An entry outside this
 * list is a config error, as in CRI-O ("invalid allowed_annotation"). Of these, this runtime acts
 * on the pod's shm size only; the others are accepted (a CRI-O config must load) and gated alike.
 */
export const EXPERIMENTAL_ANNOTATIONS: ReadonlyArray<readonly string[]> = [
  ["io.kubernetes.cri-o.userns-mode", "userns-mode.crio.io"],
  ["io.kubernetes.cri-o.cgroup2-mount-hierarchy-rw", "cgroup2-mount-hierarchy-rw.crio.io"],
  ["io.kubernetes.cri-o.UnifiedCgroup", "unified-cgroup.crio.io"],
  ["io.kubernetes.cri-o.ShmSize", "shm-size.crio.io"],
  ["io.kubernetes.cri-o.Devices", "devices.crio.io"],
  ["cpu-load-balancing.crio.io"],
  ["cpu-quota.crio.io"],
  ["irq-load-balancing.crio.io"],
  ["io.containers.trace-syscall"],
  ["io.kubernetes.cri.rdt-class"],
  ["io.kubernetes.cri-o.TrySkipVolumeSELinuxLabel", "try-skip-volume-selinux-label.crio.io"],
  ["cpu-c-states.crio.io"],
  ["cpu-freq-governor.crio.io"],
  ["io.kubernetes.cri-o.seccompNotifierAction", "seccomp-notifier-action.crio.io"],
  ["io.kubernetes.cri-o.LinkLogs", "link-logs.crio.io"],
];

/**
 * The annotation prefixes a handler with these allowed_annotations does not allow (CRI-O's
 * DisallowedAnnotations): a pod's or container's annotation starting with one is dropped.
 */
export function disallowedAnnotations(allowed: readonly string[]): string[] {
  return EXPERIMENTAL_ANNOTATIONS.filter((names) => !names.some((n) => allowed.includes(n))).flat();
}

/**
 * The OTLP/HTTP traces URL of a tracing_endpoint: "host:port" → http://host:port/v1/traces; an
 * http(s) URL as it is, with /v1/traces when it has no path. undefined when it is neither.
 */
export function tracingUrl(endpoint: string): string | undefined {
  if (/^https?:\/\//i.test(endpoint)) {
    let u: URL;
    try {
      u = new URL(endpoint);
    } catch {
      return undefined;
    }
    if (!u.hostname) return undefined;
    if (u.pathname === "/" || u.pathname === "") u.pathname = "/v1/traces";
    return u.toString();
  }
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/.exec(endpoint);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) return undefined;
  return `http://${m[1]}:${m[2]}/v1/traces`;
}

/** rlimit names accepted in default_ulimits. */
export const ULIMITS = [
  "core",
  "cpu",
  "data",
  "fsize",
  "locks",
  "memlock",
  "msgqueue",
  "nice",
  "nofile",
  "nproc",
  "rss",
  "rtprio",
  "rttime",
  "sigpending",
  "stack",
  "as",
];

/**
 * Semantic checks of a loaded configuration; no side effects. Throws ConfigError naming where the
 * value came from (file, flag or environment), the key, the value and what was expected.
 */
export function validate(c: Config, sources: Map<string, string> = new Map()): void {
  const fail = (table: string, key: string, value: unknown, expected: string): never => {
    const full = `${table}.${key}`;
    let src: string | undefined;
    for (let k = full; k && src === undefined; k = k.includes(".") ? k.slice(0, k.lastIndexOf(".")) : "") src = sources.get(k);
    const where = src ? (src.startsWith("flag") || src.startsWith("environment") ? src : `config file "${src}"`) : "default";
    throw new ConfigError(`${where}: key "${full}": value ${JSON.stringify(value)} is not valid: expected ${expected}`);
  };

  for (const { table, name, field } of allFields()) {
    const v = (c[table] as Record<string, unknown>)[name];
    const tp = TABLE_PATH[table];
    if (field.values && typeof v === "string" && !field.values.includes(v)) fail(tp, field.toml, v, `one of ${field.values.filter((x) => x).join(", ")}`);
    if (field.kind === "int" && field.min !== undefined && (v as number) < field.min) fail(tp, field.toml, v, `an integer of at least ${field.min}`);
    if (field.kind === "duration" && typeof v === "string" && v !== "" && parseDuration(v) === undefined)
      fail(tp, field.toml, v, `a duration such as "30s", "5m" or "1h30m"`);
    if (field.kind === "path" && typeof v === "string" && v !== "" && !isAbsolute(v)) fail(tp, field.toml, v, "an absolute path");
  }

  if (!c.crio.root) fail("crio", "root", c.crio.root, "an absolute path");
  if (!c.crio.runroot) fail("crio", "runroot", c.crio.runroot, "an absolute path");
  if (!c.api.listen) fail("crio.api", "listen", c.api.listen, "an absolute path");
  if (!/^\d+$/.test(c.api.streamPort) || Number(c.api.streamPort) > 65535) fail("crio.api", "stream_port", c.api.streamPort, "a port number from 0 to 65535");
  if (c.api.streamAddress !== "" && isIP(c.api.streamAddress) === 0 && c.api.streamAddress !== "localhost")
    fail("crio.api", "stream_address", c.api.streamAddress, "an IP address");
  if (c.api.streamEnableTls && (!c.api.streamTlsCert || !c.api.streamTlsKey))
    fail("crio.api", "stream_enable_tls", true, "stream_tls_cert and stream_tls_key to be set");
  if (c.metrics.metricsPort > 65535) fail("crio.metrics", "metrics_port", c.metrics.metricsPort, "a port number from 0 to 65535");
  if (c.runtime.logSizeMax >= 0 && c.runtime.logSizeMax < 8192)
    fail("crio.runtime", "log_size_max", c.runtime.logSizeMax, "-1 (unlimited) or at least 8192 bytes");
  try {
    new RegExp(c.runtime.logFilter);
  } catch (e) {
    fail("crio.runtime", "log_filter", c.runtime.logFilter, `a regular expression (${(e as Error).message})`);
  }
  for (const cap of c.runtime.defaultCapabilities) {
    const n = cap.toUpperCase().replace(/^CAP_/, "");
    if (!CAPABILITIES.includes(n)) fail("crio.runtime", "default_capabilities", cap, "capability names such as CHOWN or NET_BIND_SERVICE");
  }
  for (const kv of c.runtime.defaultSysctls) if (!/^[a-z0-9_./-]+=.*/i.test(kv)) fail("crio.runtime", "default_sysctls", kv, "KEY=VALUE");
  for (const kv of c.runtime.defaultEnv) if (!/^[^=\s]+=.*/.test(kv)) fail("crio.runtime", "default_env", kv, "KEY=VALUE");
  for (const u of c.runtime.defaultUlimits) {
    const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(u);
    if (!m || !ULIMITS.includes(m[1]!)) fail("crio.runtime", "default_ulimits", u, `name=soft[:hard] with name one of ${ULIMITS.join(", ")}`);
    else if (m[3] !== undefined && Number(m[3]) !== -1 && Number(m[2]) > Number(m[3]))
      fail("crio.runtime", "default_ulimits", u, "a soft limit not above the hard limit");
  }
  for (const d of c.runtime.allowedDevices)
    if (!/^\/[^:,]+$/.test(d)) fail("crio.runtime", "allowed_devices", d, "absolute host device paths (without ':' or ',')");
  for (const d of c.runtime.cdiSpecDirs) if (!isAbsolute(d)) fail("crio.runtime", "cdi_spec_dirs", d, "absolute directory paths");
  for (const d of c.runtime.additionalDevices)
    if (!/^\/[^:]+(:\/[^:]+)?(:[rwm]+)?$/.test(d))
      fail("crio.runtime", "additional_devices", d, "HOST[:CONTAINER[:PERMISSIONS]] with absolute paths and permissions from rwm");

  if (c.tracing.tracingSamplingRatePerMillion > 1_000_000)
    fail("crio.tracing", "tracing_sampling_rate_per_million", c.tracing.tracingSamplingRatePerMillion, "an integer from 0 to 1000000");
  if (tracingUrl(c.tracing.tracingEndpoint) === undefined)
    fail("crio.tracing", "tracing_endpoint", c.tracing.tracingEndpoint, "host:port (such as 127.0.0.1:4318) or an http:// or https:// URL");

  const runtimes = c.runtime.runtimes;
  if (!runtimes[c.runtime.defaultRuntime])
    fail(
      "crio.runtime",
      "default_runtime",
      c.runtime.defaultRuntime,
      `the name of a runtime handler (${Object.keys(runtimes).join(", ") || "none configured"})`,
    );
  for (const [name, h] of Object.entries(runtimes)) {
    const key = `runtimes.${name}`;
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) fail("crio.runtime", key, name, "a handler name of letters, digits, '.', '_' and '-'");
    if (h.runtimeType !== "oci") fail("crio.runtime", `${key}.runtime_type`, h.runtimeType, `"oci" (vm and pod runtimes are not supported)`);
    if (h.runtimePath && !isAbsolute(h.runtimePath)) fail("crio.runtime", `${key}.runtime_path`, h.runtimePath, "an absolute path");
    if (!h.runtimeRoot || !isAbsolute(h.runtimeRoot)) fail("crio.runtime", `${key}.runtime_root`, h.runtimeRoot, "an absolute path");
    if (h.containerMinMemory < 0) fail("crio.runtime", `${key}.container_min_memory`, h.containerMinMemory, "a non-negative number of bytes");
    if (h.containerCreateTimeout < 1) fail("crio.runtime", `${key}.container_create_timeout`, h.containerCreateTimeout, "at least 1 second");
    // CRI-O: "runtime_config_path can only be used with the 'vm' runtime type" (and only "oci" is supported here).
    if (h.runtimeConfigPath !== "")
      fail(
        "crio.runtime",
        `${key}.runtime_config_path`,
        h.runtimeConfigPath,
        `no runtime_config_path: it is used only with runtime_type "vm", which is not supported (this handler's runtime_type is "${h.runtimeType}")`,
      );
    for (const a of h.allowedAnnotations)
      if (!EXPERIMENTAL_ANNOTATIONS.some((names) => names.includes(a)))
        fail("crio.runtime", `${key}.allowed_annotations`, a, `one of the experimental annotations ${EXPERIMENTAL_ANNOTATIONS.flat().join(", ")}`);
    // OCI runtime spec: annotation keys must not be empty.
    if (Object.hasOwn(h.defaultAnnotations, "")) fail("crio.runtime", `${key}.default_annotations`, h.defaultAnnotations, "annotations with non-empty keys");
    // a default the pods act on must be valid, or every pod of the handler would be refused
    for (const k of ["io.kubernetes.cri-o.ShmSize", "shm-size.crio.io"]) {
      const v = h.defaultAnnotations[k];
      if (v !== undefined && parseByteSize(v) === undefined)
        fail("crio.runtime", `${key}.default_annotations`, { [k]: v }, `a shm size such as "64Mi" or "1G" for "${k}"`);
    }
    // CRI-O's rule: cgroupfs places monitors under the pod only; systemd in the pod's slice or a named one.
    // conmon_cgroup, CRI-O's older spelling, replaces every handler's monitor_cgroup when set.
    const mc = monitorCgroupOf(c, h);
    if (
      c.runtime.cgroupManager === "cgroupfs"
        ? !["", "pod", "system.slice"].includes(mc)
        : !(mc === "" || mc === "pod" || /^[A-Za-z0-9:_.\\-]+\.slice$/.test(mc))
    )
      fail(
        "crio.runtime",
        c.runtime.conmonCgroup ? "conmon_cgroup" : `${key}.monitor_cgroup`,
        mc,
        c.runtime.cgroupManager === "cgroupfs" ? `"pod" or "" with cgroup_manager "cgroupfs"` : `"pod", "" (system.slice) or a systemd slice (*.slice)`,
      );
  }
  // --- keys of issue #16 (each does what CRI-O does with it) ---
  if (c.runtime.timezone) {
    try {
      zoneFile(c.runtime.timezone);
    } catch (e) {
      fail("crio.runtime", "timezone", c.runtime.timezone, `"Local" or an IANA time zone name found under /usr/share/zoneinfo (${(e as Error).message})`);
    }
  }
  if (c.runtime.defaultMountsFile) {
    try {
      parseMountsFile(readFileSync(c.runtime.defaultMountsFile, "utf8"), c.runtime.defaultMountsFile);
    } catch (e) {
      fail("crio.runtime", "default_mounts_file", c.runtime.defaultMountsFile, `a readable file of SRC[:DST] lines (${(e as Error).message})`);
    }
  }
  for (const p of c.runtime.absentMountSourcesToReject) if (!isAbsolute(p)) fail("crio.runtime", "absent_mount_sources_to_reject", p, "absolute paths");
  if (c.nri.enableNri) fail("crio.nri", "enable_nri", true, "false: NRI plugins are not supported by this runtime");
  try {
    parseStorageOptions(c.crio.storageOption);
  } catch (e) {
    fail("crio", "storage_option", c.crio.storageOption, `overlay options such as "overlay.mountopt=nodev,metacopy=on" (${(e as Error).message})`);
  }
  for (const r of c.image.insecureRegistries)
    if (!validInsecureEntry(r)) fail("crio.image", "insecure_registries", r, "HOST[:PORT] or a CIDR such as 10.0.0.0/8");
  for (const p of c.image.pinnedImages) if (p.trim() === "") fail("crio.image", "pinned_images", p, "image names or globs");
  if (c.image.pauseImage.trim() === "") fail("crio.image", "pause_image", c.image.pauseImage, "an image reference");
}

/**
 * Where a handler's monitors run: conmon_cgroup (CRI-O's older, node-wide spelling) when set, as
 * CRI-O's TranslateMonitorFieldsForHandler does, else the handler's monitor_cgroup.
 */
export function monitorCgroupOf(c: Config, h: { monitorCgroup: string }): string {
  return c.runtime.conmonCgroup || h.monitorCgroup;
}

/** Parses a Go duration ("1h30m", "500ms", "0s", "10") into milliseconds; a bare number is seconds. */
export function parseDuration(s: string): number | undefined {
  if (s === "") return 0;
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * unit[m[2]!]!;
    pos = re.lastIndex;
  }
  return pos === s.length && pos > 0 ? total : undefined;
}

/** Whether an insecure_registries entry is well-formed: HOST[:PORT] or a CIDR. */
export function validInsecureEntry(e: string): boolean {
  const cidr = /^(.+)\/(\d{1,3})$/.exec(e);
  if (cidr) {
    const v = isIP(cidr[1]!);
    return v !== 0 && Number(cidr[2]) <= (v === 4 ? 32 : 128);
  }
  return /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?$/.test(e);
}
