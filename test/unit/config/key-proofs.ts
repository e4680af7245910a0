/**
 * Which test proves each crio.conf key does what it says (read by schema-coverage.test.ts).
 *
 * Adding a key to src/config/schema.ts? Add it here too, with the test file that sets a
 * non-default value and checks its effect (the file must name the key, by its TOML name or its
 * flag). Keys that cannot apply to this runtime carry `noEffect` in the schema instead and need
 * no entry. A key in neither fails schema-coverage.test.ts, naming it: there is no third way (the
 * PENDING list of unproven keys is gone, issue #16). Where this machine cannot show a key (no
 * SELinux, no AppArmor), the proof is a unit test from the TOML to the spec, said in a comment.
 */

const OPTS = "test/e2e/config-options.test.ts";
const OPTS_UNIT = "test/unit/config/options.test.ts";
const KEYS = "test/e2e/config-keys.test.ts";
const DEVICES = "test/e2e/devices-cdi.test.ts";
const TRACING = "test/e2e/tracing.test.ts";

/** key ("table.key"; handler keys as "crio.runtime.runtimes.*.key") → test file. */
export const PROOFS: Record<string, string> = {
  // issue #16 (helper "options")
  "crio.storage_option": OPTS,
  "crio.clean_shutdown_file": OPTS,
  "crio.internal_wipe": OPTS,
  "crio.internal_repair": OPTS,
  "crio.api.tls_min_version": OPTS,
  "crio.runtime.default_mounts_file": OPTS,
  "crio.runtime.log_to_journald": OPTS,
  "crio.runtime.container_exits_dir": OPTS,
  "crio.runtime.container_attach_socket_dir": OPTS,
  "crio.runtime.bind_mount_prefix": OPTS,
  "crio.runtime.namespaces_dir": OPTS,
  "crio.runtime.absent_mount_sources_to_reject": OPTS,
  "crio.runtime.disable_hostport_mapping": OPTS,
  "crio.runtime.timezone": OPTS,
  "crio.runtime.conmon_cgroup": OPTS_UNIT, // the e2e lane has no systemd manager to tell placements apart
  "crio.runtime.hostnetwork_disable_selinux": "test/unit/container/spec/selinux-options.test.ts", // no SELinux host here
  "crio.image.default_transport": OPTS_UNIT, // one valid value ("docker://"): only the refusal of others is testable
  "crio.image.insecure_registries": OPTS,
  "crio.image.big_files_temporary_dir": OPTS,
  "crio.image.auto_reload_registries": OPTS,
  "crio.nri.enable_nri": OPTS_UNIT, // true is refused at start
  "crio.network.plugin_dirs": OPTS,
  "crio.runtime.no_pivot": OPTS,
  "crio.log_dir": OPTS,
  "crio.runtime.default_env": OPTS,
  "crio.runtime.drop_infra_ctr": OPTS,
  "crio.api.stream_tls_ca": OPTS,
  "crio.network.cni_default_network": OPTS,
  "crio.metrics.metrics_cert": OPTS,
  "crio.metrics.metrics_key": OPTS,
  "crio.image.signature_policy": OPTS,
  "crio.runtime.runtimes.*.monitor_path": OPTS,
  "crio.runtime.runtimes.*.container_create_timeout": OPTS,
  "crio.version_file_persist": OPTS,
  "crio.api.stream_address": OPTS,
  "crio.api.grpc_max_recv_msg_size": OPTS,
  "crio.metrics.metrics_host": OPTS,
  "crio.runtime.log_size_max": OPTS,
  "crio.runtime.infra_ctr_cpuset": OPTS,
  "crio.runtime.default_capabilities": OPTS,
  "crio.image.registries_conf_dir": OPTS,
  "crio.version_file": OPTS,
  "crio.api.stream_port": OPTS,
  "crio.api.stream_enable_tls": OPTS,
  "crio.api.stream_tls_cert": OPTS,
  "crio.api.stream_tls_key": OPTS,
  "crio.runtime.default_sysctls": OPTS,
  "crio.runtime.runtimes.*.monitor_env": OPTS,
  "crio.image.max_parallel_downloads": KEYS, // a counting proxy in front of the loopback registry
  "crio.api.stream_idle_timeout": KEYS,
  "crio.stats.stats_collection_period": KEYS,
  "crio.runtime.ctr_stop_timeout": KEYS, // a handler whose runc wrapper drops `kill` stands in for a D-state process
  "crio.runtime.selinux": "test/unit/config/lsm-keys.test.ts", // unit-level: this kernel has no SELinux
  "crio.runtime.apparmor_profile": "test/unit/config/lsm-keys.test.ts", // unit-level: this kernel has no AppArmor

  // issue #16 (helper "cdi")
  "crio.runtime.allowed_devices": DEVICES, // with the io.kubernetes.cri-o.Devices annotation and allowed_annotations
  "crio.runtime.cdi_spec_dirs": DEVICES,
  "crio.runtime.device_ownership_from_security_context": DEVICES,
  "crio.tracing.enable_tracing": TRACING, // against an OTLP/HTTP receiver in the test
  "crio.tracing.tracing_endpoint": TRACING,
  "crio.tracing.tracing_sampling_rate_per_million": TRACING,

  // earlier work (assigned by the audit of issue #16: the file sets the key and checks it)
  "crio.root": "test/e2e/lifecycle.test.ts",
  "crio.runroot": "test/e2e/lifecycle.test.ts",
  "crio.storage_driver": "test/e2e/operator.test.ts",
  "crio.api.listen": "test/harness.ts", // every e2e daemon listens on a temp socket set there
  "crio.api.grpc_max_send_msg_size": "test/e2e/daemon.test.ts",
  "crio.runtime.default_runtime": "test/e2e/install.test.ts",
  "crio.runtime.runtimes": "test/e2e/handlers.test.ts",
  "crio.runtime.seccomp_profile": "test/e2e/security-config.test.ts",
  "crio.runtime.seccomp_use_default_when_empty": "test/e2e/security-config.test.ts",
  "crio.runtime.cgroup_manager": "test/e2e/monitor-cgroup.test.ts",
  "crio.runtime.add_inheritable_capabilities": "test/unit/container/spec/security.test.ts",
  "crio.runtime.additional_devices": "test/e2e/security-config.test.ts",
  "crio.runtime.hooks_dir": "test/e2e/security-config.test.ts",
  "crio.runtime.pids_limit": "test/unit/container/spec/resources-v2.test.ts",
  "crio.runtime.read_only": "test/e2e/security-config.test.ts",
  "crio.runtime.log_level": "test/e2e/daemon.test.ts",
  "crio.runtime.log_filter": "test/e2e/daemon.test.ts",
  "crio.runtime.enable_pod_events": "test/e2e/events.test.ts",
  "crio.runtime.default_ulimits": "test/e2e/security-config.test.ts",
  "crio.image.global_auth_file": "test/e2e/image-auth-tls.test.ts",
  "crio.image.pause_image": "test/e2e/daemon.test.ts",
  "crio.image.pause_image_auth_file": "test/e2e/image-auth-tls.test.ts",
  "crio.image.pause_command": "test/unit/container/spec/infra.test.ts",
  "crio.image.pinned_images": "test/e2e/image-daemon.test.ts",
  "crio.image.signature_policy_dir": "test/e2e/image-policy-namespace.test.ts",
  "crio.image.registries_conf": "test/unit/image/registries-conf.test.ts",
  "crio.image.certs_dir": "test/unit/image/certs-dir.test.ts",
  "crio.image.image_volumes": "test/e2e/image-volumes.test.ts",
  "crio.image.pull_progress_timeout": "test/e2e/image-registries.test.ts",
  "crio.image.short_name_mode": "test/unit/image/registries-conf.test.ts",
  "crio.network.network_dir": "test/e2e/network-daemon.test.ts",
  "crio.network.cni_status_grace_period": "test/e2e/network-daemon.test.ts",
  "crio.metrics.enable_metrics": "test/e2e/operator.test.ts",
  "crio.metrics.metrics_collectors": "test/e2e/operator.test.ts",
  "crio.metrics.metrics_port": "test/e2e/operator.test.ts",
  "crio.metrics.metrics_socket": "test/e2e/operator.test.ts",
  "crio.stats.collection_period": "test/e2e/stats-cache.test.ts",
  "crio.stats.included_pod_metrics": "test/unit/stats/service.test.ts",
  "crio.runtime.runtimes.*.runtime_path": "test/e2e/monitor-cgroup.test.ts",
  "crio.runtime.runtimes.*.runtime_type": "test/unit/config/runtime-handler.test.ts",
  "crio.runtime.runtimes.*.runtime_root": "test/e2e/handlers.test.ts",
  "crio.runtime.runtimes.*.runtime_config_path": "test/unit/config/runtime-handler.test.ts",
  "crio.runtime.runtimes.*.privileged_without_host_devices": "test/e2e/handlers.test.ts",
  "crio.runtime.runtimes.*.allowed_annotations": "test/e2e/runtime-handler-options.test.ts",
  "crio.runtime.runtimes.*.default_annotations": "test/e2e/runtime-handler-options.test.ts",
  "crio.runtime.runtimes.*.container_min_memory": "test/unit/container/spec/resources.test.ts",
  "crio.runtime.runtimes.*.monitor_cgroup": "test/e2e/monitor-cgroup.test.ts",
  "crio.runtime.runtimes.*.no_sync_log": "test/e2e/monitor-cgroup.test.ts",
};
