import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "smol-toml";
import { loadConfig } from "../../../src/config/load.ts";
import { renderConfig } from "../../../src/config/render.ts";
import { defaults, schema, allFields, envOf, flagOf } from "../../../src/config/schema.ts";
import { parseDuration, validate } from "../../../src/config/validate.ts";
import { applyReloadable, reloadableChanges } from "../../../src/daemon/reload.ts";

function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "crio-cfg-"));
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

describe("config", () => {
  test("the rendered defaults parse back to the defaults exactly", async () => {
    await withDir(async (dir) => {
      const file = join(dir, "crio.conf");
      writeFileSync(file, renderConfig(defaults()));
      const { config, warnings } = await loadConfig({ configFile: file, configDir: join(dir, "d") });
      expect(warnings).toEqual([]);
      expect(JSON.parse(JSON.stringify(config))).toEqual(JSON.parse(JSON.stringify(defaults())));
    });
  });

  test("ctr_stop_timeout below 30 is raised to 30 with a warning, as CRI-O does", async () => {
    await withDir(async (dir) => {
      const file = join(dir, "crio.conf");
      writeFileSync(file, "[crio.runtime]\nctr_stop_timeout = 10\n");
      const { config, warnings } = await loadConfig({ configFile: file, configDir: join(dir, "d") });
      expect(config.runtime.ctrStopTimeout).toBe(30);
      expect(warnings).toEqual(['config key "crio.runtime.ctr_stop_timeout" = 10: forcing it to the lowest possible value of 30s']);
    });
  });

  test("every schema key appears in CRI-O's table layout", () => {
    const doc = parse(renderConfig(defaults())) as Record<string, Record<string, Record<string, unknown>>>;
    expect(Object.keys(doc.crio!)).toEqual(
      expect.arrayContaining(["root", "runroot", "api", "runtime", "image", "network", "metrics", "stats", "tracing", "nri"]),
    );
    expect(doc.crio!.runtime!.log_level).toBe("info");
    expect((doc.crio!.runtime!.runtimes as Record<string, Record<string, unknown>>).runc!.runtime_type).toBe("oci");
    expect(doc.crio!.api!.listen).toBe("/var/run/crio/crio.sock");
  });

  test("precedence: defaults < file < drop-ins in lexical order < environment < flags", async () => {
    await withDir(async (dir) => {
      const file = join(dir, "crio.conf");
      mkdirSync(join(dir, "d", "sub"), { recursive: true });
      writeFileSync(file, '[crio.image]\npause_image = "file/p:1"\nglobal_auth_file = "/file"\n[crio.runtime]\nlog_level = "warn"\n');
      writeFileSync(join(dir, "d", "10-b.conf"), '[crio.image]\npause_image = "b/p:1"\n');
      writeFileSync(join(dir, "d", "02-a.conf"), '[crio.image]\npause_image = "a/p:1"\n');
      writeFileSync(join(dir, "d", "sub", "99.conf"), '[crio.network]\nnetwork_dir = "/cni"\n');
      const r = await loadConfig({
        configFile: file,
        configDir: join(dir, "d"),
        flags: { "log-level": "debug" },
        env: { CONTAINER_GLOBAL_AUTH_FILE: "/env", CONTAINER_LOG_LEVEL: "error" },
      });
      expect(r.config.image.pauseImage).toBe("b/p:1");
      expect(r.config.image.globalAuthFile).toBe("/env");
      expect(r.config.runtime.logLevel).toBe("debug");
      expect(r.config.network.networkDir).toBe("/cni");
      expect(r.files).toEqual([file, join(dir, "d", "02-a.conf"), join(dir, "d", "10-b.conf"), join(dir, "d", "sub", "99.conf")]);
      expect(Object.isFrozen(r.config.image)).toBe(true);
    });
  });

  test.each([
    ['[crio.api]\nstream_port = "70000"', "stream_port", "a port number"],
    ['[crio.runtime]\ncgroup_manager = "lxc"', "cgroup_manager", "one of systemd, cgroupfs"],
    ["[crio.runtime]\nlog_size_max = 10", "log_size_max", "at least 8192"],
    ['[crio.runtime]\ndefault_capabilities = ["CHOWN", "FLY"]', "default_capabilities", "capability names"],
    ['[crio.runtime]\ndefault_ulimits = ["nofile=2048:1024"]', "default_ulimits", "soft limit not above"],
    ['[crio.runtime]\ndefault_runtime = "kata"', "default_runtime", "the name of a runtime handler"],
    ['[crio.runtime.runtimes.vm]\nruntime_type = "vm"', "runtime_type", '"oci"'],
    ['[crio.runtime]\nlog_filter = "("', "log_filter", "a regular expression"],
    ['[crio.image]\npull_progress_timeout = "soon"', "pull_progress_timeout", "a duration"],
    ["[crio.runtime]\nctr_stop_timeout = -5", "ctr_stop_timeout", "at least 0"],
    ['[crio.runtime]\ndrop_infra_ctr = "yes"', "drop_infra_ctr", "true or false"],
    ['[crio]\nroot = "relative/path"', "root", "an absolute path"],
    ['[crio.runtime]\ndefault_env = "A=1"', "default_env", "an array of strings"],
  ])("%s is refused naming the key and the expectation", async (toml, key, expected) => {
    await withDir(async (dir) => {
      const file = join(dir, "crio.conf");
      writeFileSync(file, toml);
      const err = await loadConfig({ configFile: file, configDir: join(dir, "d") }).catch((e) => e);
      expect(err.kind).toBe("invalid-argument");
      expect(err.message).toContain(`config file "${file}"`);
      expect(err.message).toContain(key);
      expect(err.message).toContain(expected);
    });
  });

  test("every flag has CRI-O's CONTAINER_* environment name", () => {
    const flags = allFields()
      .map((f) => flagOf(f.field))
      .filter(Boolean) as string[];
    expect(flags).toEqual(
      expect.arrayContaining([
        "log-level",
        "listen",
        "root",
        "runroot",
        "cni-config-dir",
        "cni-plugin-dir",
        "signature-policy",
        "global-auth-file",
        "pause-image",
      ]),
    );
    expect(envOf("cni-config-dir")).toBe("CONTAINER_CNI_CONFIG_DIR");
  });

  test("the defaults validate and every field has a doc", () => {
    expect(() => validate(defaults())).not.toThrow();
    for (const t of Object.values(schema)) for (const f of Object.values(t)) expect((f as { doc: string }).doc.length).toBeGreaterThan(5);
  });

  test("Go durations", () => {
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("0s")).toBe(0);
    expect(parseDuration("10")).toBe(10_000);
    expect(parseDuration("5x")).toBeUndefined();
  });

  test("reload applies only reloadable options and lists the changes", () => {
    const a = defaults();
    const b = structuredClone(a) as { runtime: { logLevel: string }; crio: { root: string } };
    b.runtime.logLevel = "debug";
    b.crio.root = "/elsewhere";
    const next = applyReloadable(a, b as never);
    expect(next.runtime.logLevel).toBe("debug");
    expect(next.crio.root).toBe(a.crio.root);
    expect(reloadableChanges(a, b as never)).toEqual([{ table: "crio.runtime", key: "log_level", value: "debug" }]);
  });
});
