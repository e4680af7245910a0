/**
 * The configuration schema: one table of fields drives parsing (load.ts), validation
 * (validate.ts), defaults, command-line flags and the `crio config` output (render.ts).
 * Tables and keys are CRI-O's, so a crio.conf written for CRI-O loads here.
 */

export type FieldKind = "string" | "path" | "bool" | "int" | "strings" | "duration" | "runtimes";

/** One runtime handler: [crio.runtime.runtimes.NAME]. */
export interface RuntimeHandler {
  runtimePath: string;
  runtimeType: string;
  runtimeRoot: string;
  runtimeConfigPath: string;
  privilegedWithoutHostDevices: boolean;
  allowedAnnotations: string[];
  defaultAnnotations: Record<string, string>;
  containerMinMemory: number;
  monitorPath: string;
  monitorEnv: string[];
  monitorCgroup: string;
  noSyncLog: boolean;
  containerCreateTimeout: number;
}

export interface Field<V> {
  kind: FieldKind;
  /** Key inside its TOML table. */
  toml: string;
  default: V;
  doc: string;
  /** Applied by SIGHUP without a restart. */
  reloadable?: boolean;
  /** Command-line flag (without --); defaults to the key with "-" for "_". false: no flag. */
  flag?: string | false;
  /** Allowed values (string kinds). */
  values?: readonly string[];
  /** Smallest allowed value (int kind). */
  min?: number;
  /** Deprecated in CRI-O, accepted for compatibility. */
  deprecated?: boolean;
  /**
   * The key cannot apply to this runtime, and why: a non-default value logs one start-up warning
   * naming the key and this reason, and `crio config` says so in the key's comment. Only for keys
   * that cannot work here; every other key does what CRI-O does (test/unit/config/key-proofs.ts).
   */
  noEffect?: string;
}

const str = (toml: string, def: string, doc: string, o: Partial<Field<string>> = {}): Field<string> => ({ kind: "string", toml, default: def, doc, ...o });
const path = (toml: string, def: string, doc: string, o: Partial<Field<string>> = {}): Field<string> => ({ kind: "path", toml, default: def, doc, ...o });
const bool = (toml: string, def: boolean, doc: string, o: Partial<Field<boolean>> = {}): Field<boolean> => ({ kind: "bool", toml, default: def, doc, ...o });
const int = (toml: string, def: number, doc: string, o: Partial<Field<number>> = {}): Field<number> => ({ kind: "int", toml, default: def, doc, ...o });
const strs = (toml: string, def: string[], doc: string, o: Partial<Field<string[]>> = {}): Field<string[]> => ({
  kind: "strings",
  toml,
  default: def,
  doc,
  ...o,
});
const dur = (toml: string, def: string, doc: string, o: Partial<Field<string>> = {}): Field<string> => ({ kind: "duration", toml, default: def, doc, ...o });

/** CRI-O's default capability set. */
export const DEFAULT_CAPABILITIES = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "KILL"];

/** Defaults of a runtime handler entry; runtime_path "" means "look the handler's name up in $PATH". */
export function defaultHandler(name: string): RuntimeHandler {
  return {
    runtimePath: "",
    runtimeType: "oci",
    runtimeRoot: `/run/${name}`,
    runtimeConfigPath: "",
    privilegedWithoutHostDevices: false,
    allowedAnnotations: [],
    defaultAnnotations: {},
    containerMinMemory: 12 * 1024 * 1024,
    monitorPath: "",
    monitorEnv: [],
    monitorCgroup: "",
    noSyncLog: false,
    containerCreateTimeout: 240,
  };
}

/** The keys of a runtime handler table, TOML name → field. */
export const HANDLER_KEYS: Record<string, { field: keyof RuntimeHandler; kind: "string" | "path" | "bool" | "int" | "strings" | "map"; doc: string }> = {
  runtime_path: { field: "runtimePath", kind: "path", doc: "Path to the OCI runtime binary; empty: the handler's name looked up in $PATH." },
  runtime_type: { field: "runtimeType", kind: "string", doc: 'Type of the runtime: only "oci" (runc, crun) is supported.' },
  runtime_root: { field: "runtimeRoot", kind: "path", doc: "Root directory the runtime keeps its container state in." },
  runtime_config_path: {
    field: "runtimeConfigPath",
    kind: "path",
    doc: 'Configuration file of a runtime_type "vm" runtime (CRI-O); must stay empty here, where only "oci" is supported: a value is a config error.',
  },
  privileged_without_host_devices: {
    field: "privilegedWithoutHostDevices",
    kind: "bool",
    doc: "Privileged containers of this handler do not get the host's devices.",
  },
  allowed_annotations: {
    field: "allowedAnnotations",
    kind: "strings",
    doc: 'Experimental annotations a pod or container of this handler may use; others are dropped from its annotations. Acted on here: the pod\'s /dev/shm size, "io.kubernetes.cri-o.ShmSize" or "shm-size.crio.io" (either allows both). Entries must be CRI-O 1.26 experimental annotations.',
  },
  default_annotations: {
    field: "defaultAnnotations",
    kind: "map",
    doc: "Annotations added to every pod of this handler (its status and infra spec) and, through the pod, to its containers' specs; the pod's and container's own annotations win. Not filtered by allowed_annotations.",
  },
  container_min_memory: { field: "containerMinMemory", kind: "int", doc: "Smallest memory limit a container may ask for, in bytes." },
  monitor_path: { field: "monitorPath", kind: "path", doc: "Monitor binary; empty: this crio binary (`crio conmon`)." },
  monitor_env: { field: "monitorEnv", kind: "strings", doc: "Environment of the monitor process, KEY=VALUE." },
  monitor_cgroup: {
    field: "monitorCgroup",
    kind: "string",
    doc: 'Where each container\'s monitor runs. cgroupfs: "" or "pod", a cgroup of its own under the pod\'s cgroup parent (crio-conmon-<id>). systemd: a scope crio-conmon-<id>.scope in the pod\'s slice ("pod"), in the slice named ("*.slice"), or in system.slice ("").',
  },
  no_sync_log: { field: "noSyncLog", kind: "bool", doc: "Do not fsync a container's log file when it is reopened (rotation) and when the container exits." },
  container_create_timeout: { field: "containerCreateTimeout", kind: "int", doc: "Seconds CreateContainer may take before it fails." },
};

/** The schema: table name → field name → field. Table "crio" holds the keys of [crio]. */
export const schema = {
  crio: {
    root: path("root", "/var/lib/crio", "Persistent state: images, layers, writable layers, sandbox and container records."),
    runroot: path("runroot", "/run/crio", "Volatile state (tmpfs): exit files, monitor sockets, pinned namespaces."),
    storageDriver: str("storage_driver", "overlay", 'Storage driver; only "overlay" is supported.', { values: ["overlay", "overlay2", ""] }),
    storageOption: strs(
      "storage_option",
      [],
      'Overlay driver options: "overlay.mountopt=OPT,OPT" adds mount options (e.g. nodev, metacopy=on) to every container\'s root filesystem; the other containers/storage overlay options (size, mount_program, …) and unknown ones are refused at start.',
      { flag: "storage-opt" },
    ),
    logDir: path("log_dir", "/var/log/crio/pods", "Default directory for container logs when the kubelet gives none."),
    versionFile: path("version_file", "/var/run/crio/version", "File recording the running version; a change after a reboot triggers a wipe."),
    versionFilePersist: path("version_file_persist", "", "Like version_file, but kept across reboots."),
    cleanShutdownFile: path(
      "clean_shutdown_file",
      "/var/lib/crio/clean.shutdown",
      "Removed at start (and <file>.supported written), written on a clean stop after the root is synced; missing at the next start means the last stop was unclean (see internal_repair). Empty: no marker.",
    ),
    internalWipe: bool(
      "internal_wipe",
      true,
      "At start, after a reboot (version_file missing or of another major.minor) remove every pod and container; after an upgrade (version_file_persist) also the images. false: they stay (NOTREADY, EXITED) for crio wipe or the kubelet.",
      { deprecated: true },
    ),
    internalRepair: bool(
      "internal_repair",
      true,
      "After an unclean stop (see clean_shutdown_file) check every image's blobs and layers at start, removing and logging damaged or incomplete images.",
    ),
  },
  api: {
    listen: path("listen", "/var/run/crio/crio.sock", "Path of the gRPC unix socket the kubelet connects to."),
    streamAddress: str("stream_address", "127.0.0.1", "IP address the streaming server (exec, attach, port-forward) listens on."),
    streamPort: str("stream_port", "0", "Port of the streaming server; 0 picks a free one."),
    streamEnableTls: bool("stream_enable_tls", false, "Serve the streaming server over TLS."),
    streamIdleTimeout: dur("stream_idle_timeout", "", "Idle time after which a stream is closed (Go duration; empty: 4h)."),
    streamTlsCert: path("stream_tls_cert", "", "Certificate of the streaming server; reloaded when it changes."),
    streamTlsKey: path("stream_tls_key", "", "Key of the streaming server; reloaded when it changes."),
    streamTlsCa: path("stream_tls_ca", "", "CA used to verify client certificates of the streaming server."),
    tlsMinVersion: str("tls_min_version", "VersionTLS12", "Oldest TLS version the streaming server accepts (with stream_enable_tls).", {
      values: ["VersionTLS10", "VersionTLS11", "VersionTLS12", "VersionTLS13"],
    }),
    grpcMaxSendMsgSize: int("grpc_max_send_msg_size", 83886080, "Largest gRPC message sent, in bytes.", { min: 1 }),
    grpcMaxRecvMsgSize: int("grpc_max_recv_msg_size", 83886080, "Largest gRPC message received, in bytes.", { min: 1 }),
  },
  runtime: {
    defaultRuntime: str("default_runtime", "runc", "Runtime handler used when a pod names none.", { reloadable: true }),
    runtimes: {
      kind: "runtimes",
      toml: "runtimes",
      default: { runc: defaultHandler("runc"), crun: defaultHandler("crun") },
      doc: "Runtime handlers, one table each: [crio.runtime.runtimes.NAME].",
      flag: false,
    } as Field<Record<string, RuntimeHandler>>,
    noPivot: bool("no_pivot", false, "Ask the runtime not to pivot_root (for ramdisk roots)."),
    defaultEnv: strs("default_env", [], "Environment added to every container, KEY=VALUE."),
    selinux: bool("selinux", false, "Apply the pods' SELinux labels to their containers (only when the host has SELinux enabled; false: never)."),
    seccompProfile: path("seccomp_profile", "", "Seccomp profile for RuntimeDefault; empty: the built-in default.", { reloadable: true }),
    seccompUseDefaultWhenEmpty: bool(
      "seccomp_use_default_when_empty",
      false,
      "Use the default profile when a container asks for none (critest expects unconfined).",
    ),
    apparmorProfile: str("apparmor_profile", "crio-default", "AppArmor profile for RuntimeDefault (only when AppArmor is enabled).", { reloadable: true }),
    cgroupManager: str("cgroup_manager", "systemd", 'Cgroup driver: "systemd" (falls back to cgroupfs when systemd is not PID 1) or "cgroupfs".', {
      values: ["systemd", "cgroupfs"],
    }),
    defaultCapabilities: strs("default_capabilities", DEFAULT_CAPABILITIES, "Capabilities of a container that asks for no change."),
    addInheritableCapabilities: bool("add_inheritable_capabilities", false, "Also put the capabilities in the inheritable set."),
    defaultSysctls: strs("default_sysctls", [], "Sysctls set in every pod, KEY=VALUE."),
    allowedDevices: strs(
      "allowed_devices",
      ["/dev/fuse", "/dev/net/tun"],
      "Host devices a pod may ask for with the io.kubernetes.cri-o.Devices annotation (HOST[:CONTAINER[:PERMISSIONS]], comma-separated), which its runtime handler must allow in allowed_annotations.",
    ),
    additionalDevices: strs("additional_devices", [], "Devices added to every container, HOST[:CONTAINER[:PERMISSIONS]]."),
    cdiSpecDirs: strs(
      "cdi_spec_dirs",
      ["/etc/cdi", "/var/run/cdi"],
      "Directories of CDI device specifications (*.json, *.yaml; CDI 0.3.0 to 0.8.0), re-read when they change; a device in a later directory overrides the same device in an earlier one. Containers ask for CDI devices with the CRI's CDI_devices or cdi.k8s.io/<name> annotations.",
    ),
    deviceOwnershipFromSecurityContext: bool(
      "device_ownership_from_security_context",
      false,
      "The devices a non-privileged container asks for through the CRI are owned by its user and group (run_as_user/run_as_group, else the image's user) instead of the host node's owner.",
    ),
    hooksDir: strs("hooks_dir", ["/usr/share/containers/oci/hooks.d"], "Directories of OCI hook definitions."),
    defaultMountsFile: path("default_mounts_file", "", "File of default mounts, SRC:DST per line."),
    pidsLimit: int("pids_limit", -1, "Pids limit of a container (deprecated: the kubelet sets it).", { deprecated: true, min: -1 }),
    logSizeMax: int("log_size_max", -1, "Largest container log file in bytes (-1: unlimited; at least 8192).", { min: -1 }),
    logToJournald: bool(
      "log_to_journald",
      false,
      "Also send every container log record to journald (native protocol on /run/systemd/journal/socket) with conmon's fields: MESSAGE, CONTAINER_ID_FULL, CONTAINER_ID, CONTAINER_NAME, SYSLOG_IDENTIFIER, PRIORITY (6 stdout, 3 stderr), CONTAINER_PARTIAL_MESSAGE.",
    ),
    containerExitsDir: path("container_exits_dir", "", "Directory of container exit files; empty: <runroot>/exits."),
    containerAttachSocketDir: path("container_attach_socket_dir", "", "Directory of attach sockets; empty: <runroot>/monitor."),
    bindMountPrefix: path("bind_mount_prefix", "", "Prefix added to host paths of bind mounts (crio running in a container)."),
    readOnly: bool("read_only", false, "Run every non-privileged container with a read-only root filesystem."),
    logLevel: str("log_level", "info", "Log level: fatal, panic, error, warn, info, debug or trace.", {
      reloadable: true,
      values: ["fatal", "panic", "error", "warn", "warning", "info", "debug", "trace"],
    }),
    logFilter: str("log_filter", "", "Only log messages that match this regular expression.", { reloadable: true }),
    ctrStopTimeout: int(
      "ctr_stop_timeout",
      30,
      "Floor, in seconds, for internal waits on stopping containers (a smaller value is raised to 30, with a warning).",
      { min: 0 },
    ),
    dropInfraCtr: bool("drop_infra_ctr", true, "Run no infra (pause) container unless the pod shares its PID namespace."),
    infraCtrCpuset: str("infra_ctr_cpuset", "", "CPUs the infra container runs on."),
    namespacesDir: path("namespaces_dir", "", "Directory of pinned pod namespaces; empty: <runroot>/ns."),
    pinnsPath: path("pinns_path", "", "Path of CRI-O's pinns helper.", {
      deprecated: true,
      noEffect: "pod namespaces are pinned by this binary (util-linux unshare), not by pinns",
    }),
    absentMountSourcesToReject: strs("absent_mount_sources_to_reject", [], "Host paths that must exist when bind-mounted (never created)."),
    enablePodEvents: bool("enable_pod_events", false, "Serve GetContainerEvents (Evented PLEG)."),
    hostnetworkDisableSelinux: bool("hostnetwork_disable_selinux", true, "Host-network pods run without SELinux separation."),
    disableHostportMapping: bool(
      "disable_hostport_mapping",
      false,
      "Set up no hostPort mappings: the CNI portmap plugin is handed none (for a network that maps host ports itself, e.g. an eBPF dataplane).",
    ),
    timezone: str("timezone", "", 'Timezone of containers ("Local": the host\'s).'),
    defaultUlimits: strs("default_ulimits", [], "Default rlimits of containers, name=soft:hard (e.g. nofile=1024:2048)."),
    conmon: path("conmon", "", "Path of the conmon binary (CRI-O).", {
      deprecated: true,
      noEffect: "the container monitor is built into this binary (`crio conmon`); a handler's monitor_path names another build of it",
    }),
    conmonCgroup: str("conmon_cgroup", "", "Older spelling of monitor_cgroup: when set, every runtime handler's monitors run there (CRI-O's rule).", {
      deprecated: true,
    }),
    conmonEnv: strs("conmon_env", [], "Environment of conmon (CRI-O).", {
      deprecated: true,
      noEffect: "the container monitor is built into this binary and does not run conmon; a handler's monitor_env sets the monitor's environment",
    }),
  },
  image: {
    defaultTransport: str(
      "default_transport",
      "docker://",
      'Transport put in front of image names: only "docker://" (a registry), the one transport of this runtime; another value is refused at start.',
      { values: ["docker://"] },
    ),
    globalAuthFile: path("global_auth_file", "", "Registry credentials (auth.json format) used when a pull brings none.", { reloadable: true }),
    pauseImage: str("pause_image", "registry.k8s.io/pause:3.10", "Image of the infra container.", { reloadable: true }),
    pauseImageAuthFile: path("pause_image_auth_file", "", "Credentials for pulling the pause image.", { reloadable: true }),
    pauseCommand: str("pause_command", "/pause", "Command of the infra container.", { reloadable: true }),
    pinnedImages: strs("pinned_images", [], "Images never removed by the kubelet's image GC (exact, name* or *name globs).", { reloadable: true }),
    signaturePolicy: path("signature_policy", "", "Signature policy file; empty: /etc/containers/policy.json."),
    signaturePolicyDir: path("signature_policy_dir", "/etc/crio/policies", "Directory of per-namespace signature policies."),
    registriesConf: path("registries_conf", "", "registries.conf path; empty: $CONTAINERS_REGISTRIES_CONF or /etc/containers/registries.conf.", {
      flag: "registries-conf",
    }),
    registriesConfDir: path("registries_conf_dir", "", "registries.conf.d path; empty: $CONTAINERS_REGISTRIES_CONF_DIR or /etc/containers/registries.conf.d.", {
      flag: "registries-conf-dir",
    }),
    certsDir: path("certs_dir", "/etc/containers/certs.d", "Per-registry CAs and client certificates: HOST[:PORT]/*.crt, *.cert, *.key."),
    imageVolumes: str("image_volumes", "mkdir", "What to do with an image's VOLUMEs: mkdir, bind or ignore.", { values: ["mkdir", "bind", "ignore"] }),
    insecureRegistries: strs(
      "insecure_registries",
      [],
      "Registries pulled from without TLS verification (and over HTTP when HTTPS fails), HOST[:PORT] or a CIDR its address is in (CRI-O 1.26). Prefer insecure = true in registries.conf.",
      { deprecated: true },
    ),
    bigFilesTemporaryDir: path(
      "big_files_temporary_dir",
      "",
      "Directory layer blobs are downloaded to during pulls (created at start); empty: the image store's tmp/ inside root.",
    ),
    autoReloadRegistries: bool("auto_reload_registries", false, "Re-read registries.conf and registries.conf.d when they change, without SIGHUP."),
    pullProgressTimeout: dur("pull_progress_timeout", "0s", "Cancel a pull that makes no progress for this long (Go duration; 0s: never)."),
    maxParallelDownloads: int("max_parallel_downloads", 6, "Layers downloaded at once per pull.", { min: 1 }),
    shortNameMode: str("short_name_mode", "enforcing", "Short-name resolution: enforcing, permissive or disabled.", {
      values: ["enforcing", "permissive", "disabled"],
    }),
  },
  network: {
    cniDefaultNetwork: str("cni_default_network", "", "Name of the CNI network to use; empty: the first config in network_dir.", {
      flag: "cni-default-network",
    }),
    networkDir: path("network_dir", "/etc/cni/net.d/", "Directory of CNI network configurations.", { flag: "cni-config-dir" }),
    pluginDirs: strs("plugin_dirs", ["/opt/cni/bin/", "/usr/libexec/cni/", "/usr/lib/cni/"], "Directories searched for CNI plugins.", {
      flag: "cni-plugin-dir",
    }),
    cniStatusGracePeriod: dur("cni_status_grace_period", "0s", "Time RunPodSandbox waits for the network to become ready."),
  },
  metrics: {
    enableMetrics: bool("enable_metrics", false, "Serve Prometheus metrics."),
    metricsCollectors: strs("metrics_collectors", [], "Metrics to collect; empty: all."),
    metricsHost: str("metrics_host", "127.0.0.1", "Address of the metrics endpoint."),
    metricsPort: int("metrics_port", 9090, "Port of the metrics endpoint.", { min: 0 }),
    metricsSocket: path("metrics_socket", "", "Also serve metrics on this unix socket."),
    metricsCert: path("metrics_cert", "", "Certificate for metrics over TLS."),
    metricsKey: path("metrics_key", "", "Key for metrics over TLS."),
  },
  stats: {
    statsCollectionPeriod: int("stats_collection_period", 0, "Deprecated: use collection_period.", { deprecated: true, min: 0 }),
    collectionPeriod: int("collection_period", 0, "Seconds between background stats collections; 0: collected on each call.", { min: 0 }),
    includedPodMetrics: strs("included_pod_metrics", [], "Pod metrics served by ListPodSandboxMetrics: cpu, memory, network, process, … or all."),
  },
  tracing: {
    enableTracing: bool(
      "enable_tracing",
      false,
      "Export OpenTelemetry traces: a span for every CRI call and its main steps (image pull, container create and start, CNI add and delete), sent over OTLP (HTTP/protobuf) to tracing_endpoint. The tracing code is loaded only when this is true.",
    ),
    tracingEndpoint: str(
      "tracing_endpoint",
      "127.0.0.1:4318",
      "The OTLP/HTTP collector: host:port (traces are posted to http://host:port/v1/traces) or an http(s):// URL (with no path, /v1/traces is added). CRI-O sends OTLP/gRPC to port 4317; this runtime speaks OTLP/HTTP, usually port 4318.",
    ),
    tracingSamplingRatePerMillion: int(
      "tracing_sampling_rate_per_million",
      0,
      "How many traces in a million are sampled: 0 none, 1000000 all (a caller's sampled trace is always followed).",
      { min: 0 },
    ),
  },
  nri: {
    enableNri: bool("enable_nri", false, "Enable NRI plugins: not supported, true is refused at start."),
    nriPluginDir: path("nri_plugin_dir", "/opt/nri/plugins", "Directory of NRI plugins.", { noEffect: "NRI is not supported (enable_nri = true is refused)" }),
    nriPluginConfigDir: path("nri_plugin_config_dir", "/etc/nri/conf.d", "Directory of NRI plugin configurations.", {
      noEffect: "NRI is not supported (enable_nri = true is refused)",
    }),
    nriListen: path("nri_listen", "/var/run/nri/nri.sock", "NRI socket.", { noEffect: "NRI is not supported (enable_nri = true is refused)" }),
  },
} as const;

/** TOML table path of each schema table. */
export const TABLE_PATH: Record<keyof typeof schema, string> = {
  crio: "crio",
  api: "crio.api",
  runtime: "crio.runtime",
  image: "crio.image",
  network: "crio.network",
  metrics: "crio.metrics",
  stats: "crio.stats",
  tracing: "crio.tracing",
  nri: "crio.nri",
};

type ValueOf<F> = F extends Field<infer V> ? V : never;
/** The typed configuration the daemon runs with. */
export type Config = {
  readonly [T in keyof typeof schema]: { readonly [K in keyof (typeof schema)[T]]: ValueOf<(typeof schema)[T][K]> };
};

/** Tables CRI-O knows that we accept and ignore as a whole (one warning each key). */
export const IGNORED_TABLES = ["crio.runtime.workloads", "crio.checkpoint_restore", "crio.nri.default_validator"];

/** One warning per key marked noEffect whose value is not the default (logged once at start). */
export function noEffectWarnings(c: Config): string[] {
  const out: string[] = [];
  for (const { table, name, field } of allFields()) {
    if (!field.noEffect) continue;
    const v = (c[table] as Record<string, unknown>)[name];
    if (JSON.stringify(v) !== JSON.stringify(field.default))
      out.push(`config key "${TABLE_PATH[table]}.${field.toml}" = ${JSON.stringify(v)} has no effect: ${field.noEffect}`);
  }
  return out;
}

/** A fresh copy of the defaults. */
export function defaults(): Config {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [t, fields] of Object.entries(schema)) {
    out[t] = {};
    for (const [k, f] of Object.entries(fields)) out[t]![k] = structuredClone((f as Field<unknown>).default);
  }
  return out as Config;
}

/** Every field with its table, for generic walks. */
export function allFields(): Array<{ table: keyof typeof schema; name: string; field: Field<unknown> }> {
  const out: Array<{ table: keyof typeof schema; name: string; field: Field<unknown> }> = [];
  for (const [t, fields] of Object.entries(schema))
    for (const [name, field] of Object.entries(fields)) out.push({ table: t as keyof typeof schema, name, field: field as Field<unknown> });
  return out;
}

/** The command-line flag of a field, or undefined when it has none. */
export function flagOf(f: Field<unknown>): string | undefined {
  if (f.flag === false) return undefined;
  return f.flag ?? f.toml.replaceAll("_", "-");
}

/** CRI-O's environment name for a flag: CONTAINER_ + upper snake case. */
export function envOf(flag: string): string {
  return "CONTAINER_" + flag.toUpperCase().replaceAll("-", "_");
}
