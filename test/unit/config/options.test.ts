// Wrong values of the crio.conf keys of issue #16: each is a start-up error naming the file, the
// key and the value (the daemon prints it and exits 1: test/e2e/config-options.test.ts shows one).
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../../src/config/load.ts";
import { defaults, noEffectWarnings } from "../../../src/config/schema.ts";
import { monitorCgroupOf } from "../../../src/config/validate.ts";
import { insecureByConfig } from "../../../src/image/insecure-registries.ts";
import { parseStorageOptions } from "../../../src/config/storage-options.ts";

const dir = mkdtempSync(join(tmpdir(), "crio-opts-"));
const badMounts = join(dir, "bad-mounts.conf");
writeFileSync(badMounts, "/ok:/fine\nrelative:/x\n");

/** [table, key, TOML value, what the message must also say] */
export const WRONG: Array<[string, string, string, RegExp]> = [
  ["crio.runtime", "container_attach_socket_dir", '"run/attach"', /absolute path/],
  ["crio.runtime", "container_exits_dir", '"exits"', /absolute path/],
  ["crio.runtime", "namespaces_dir", '"ns"', /absolute path/],
  ["crio.runtime", "timezone", '"Mars/Olympus_Mons"', /IANA time zone/],
  ["crio.runtime", "timezone", '"../../etc/passwd"', /IANA time zone/],
  ["crio.runtime", "default_mounts_file", JSON.stringify(join(dir, "missing.conf")), /readable file/],
  ["crio.runtime", "default_mounts_file", JSON.stringify(badMounts), /line 2: "relative:\/x"/],
  ["crio.runtime", "absent_mount_sources_to_reject", '["etc/hostname"]', /absolute paths/],
  ["crio.runtime", "bind_mount_prefix", '"host"', /absolute path/],
  ["crio.api", "tls_min_version", '"VersionTLS14"', /one of VersionTLS10, VersionTLS11, VersionTLS12, VersionTLS13/],
  ["crio.runtime", "conmon_cgroup", '"not-a-slice"', /a systemd slice/],
  ["crio.image", "default_transport", '"oci-archive:"', /one of docker:\/\//],
  ["crio.image", "insecure_registries", '["https://registry.example/v2"]', /HOST\[:PORT\] or a CIDR/],
  ["crio.image", "insecure_registries", '["10.0.0.0/33"]', /HOST\[:PORT\] or a CIDR/],
  ["crio.image", "big_files_temporary_dir", '"tmp/big"', /absolute path/],
  ["crio.image", "auto_reload_registries", '"yes"', /expected true or false/],
  ["crio", "clean_shutdown_file", '"clean.shutdown"', /absolute path/],
  ["crio", "internal_repair", '"yes"', /expected true or false/],
  ["crio.runtime", "disable_hostport_mapping", '"true"', /expected true or false/],
  ["crio", "storage_option", '["overlay.size=10G"]', /"size" is not supported by this runtime/],
  ["crio", "storage_option", '["overlay.frobnicate=1"]', /unknown storage option "frobnicate"/],
  ["crio", "storage_option", '["overlay.mountopt=upperdir=/x"]', /set by the runtime/],
  ["crio.runtime", "log_to_journald", '"journald"', /expected true or false/],
  ["crio.nri", "enable_nri", "true", /NRI plugins are not supported/],
  ["crio", "internal_wipe", "1", /expected true or false/],
  ["crio.image", "max_parallel_downloads", "0", /an integer of at least 1/],
  ["crio.api", "stream_idle_timeout", '"soon"', /expected a duration/],
  ["crio.stats", "stats_collection_period", "-1", /an integer of at least 0/],
  ["crio.runtime", "ctr_stop_timeout", "-1", /an integer of at least 0/],
  ["crio.runtime", "selinux", '"yes"', /expected true or false/],
];

test.each(WRONG)("[%s] %s = %s is refused naming file, key and value", async (table, key, value, also) => {
  const file = join(dir, "crio.conf");
  writeFileSync(file, `[${table}]\n${key} = ${value}\n`);
  const err = await loadConfig({ configFile: file, configDir: join(dir, "none") }).then(
    () => undefined,
    (e: Error) => e.message,
  );
  const shown = JSON.parse(value) as unknown;
  const v = Array.isArray(shown) && key !== "storage_option" ? shown[0] : shown;
  expect(err).toContain(`config file "${file}"`);
  expect(err).toContain(`key "${table}.${key}"`);
  expect(err).toContain(JSON.stringify(v));
  expect(err).toMatch(also);
});

test("conmon_cgroup, when set, is every handler's monitor_cgroup (CRI-O's TranslateMonitorFieldsForHandler); unit: the e2e lane has no systemd manager to tell the placements apart", async () => {
  const file = join(dir, "crio.conf");
  writeFileSync(file, `[crio.runtime]\nconmon_cgroup = "machine.slice"\n[crio.runtime.runtimes.runc]\nmonitor_cgroup = "pod"\n`);
  const { config } = await loadConfig({ configFile: file, configDir: join(dir, "none") });
  expect(monitorCgroupOf(config, config.runtime.runtimes.runc!)).toBe("machine.slice");
  expect(monitorCgroupOf(config, config.runtime.runtimes.crun!)).toBe("machine.slice");
  writeFileSync(file, `[crio.runtime.runtimes.runc]\nmonitor_cgroup = "pod"\n`);
  const plain = (await loadConfig({ configFile: file, configDir: join(dir, "none") })).config;
  expect([monitorCgroupOf(plain, plain.runtime.runtimes.runc!), monitorCgroupOf(plain, plain.runtime.runtimes.crun!)]).toEqual(["pod", ""]);
});

test("no-effect keys: one warning each for a non-default value, none for the defaults", async () => {
  const file = join(dir, "crio.conf");
  writeFileSync(file, `[crio.runtime]\nconmon = "/usr/bin/conmon"\n`);
  const { config } = await loadConfig({ configFile: file, configDir: join(dir, "none") });
  expect(noEffectWarnings(config)).toEqual([
    expect.stringMatching(/^config key "crio\.runtime\.conmon" = "\/usr\/bin\/conmon" has no effect: the container monitor is built into this binary/),
  ]);
  expect(noEffectWarnings(defaults())).toEqual([]);
});

test("insecure_registries entries: HOST[:PORT] exactly, or a CIDR holding the host's address", async () => {
  expect(await insecureByConfig(["reg.example:5000"], "reg.example:5000")).toBe(true);
  expect(await insecureByConfig(["reg.example:5000"], "reg.example")).toBe(false);
  expect(await insecureByConfig(["10.1.0.0/16"], "10.1.2.3:443")).toBe(true);
  expect(await insecureByConfig(["10.1.0.0/16"], "10.2.0.1")).toBe(false);
  expect(await insecureByConfig(["::1/128"], "[::1]:5000")).toBe(true);
  expect(await insecureByConfig(["127.0.0.0/8"], "localhost:5000")).toBe(true); // resolved
  expect(await insecureByConfig([], "10.1.2.3")).toBe(false);
});

test("storage_option: overlay.mountopt (any driver prefix) gives mount options in order", () => {
  expect(parseStorageOptions(["overlay.mountopt=nodev,metacopy=on", "overlay2.mountopt=noatime", ".mountopt=volatile"]).mountOptions).toEqual([
    "nodev",
    "metacopy=on",
    "noatime",
    "volatile",
  ]);
  expect(parseStorageOptions([]).mountOptions).toEqual([]);
});

test("cleanup", () => rmSync(dir, { recursive: true, force: true }));
