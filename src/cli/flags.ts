import type { ArgsDef } from "citty";
import type { FlagValues, LoadOptions } from "../config/load.ts";
import { schemaFlags } from "../config/load.ts";
import type { LogFormat } from "../log/index.ts";

/** Default locations of the main file and the drop-in directory. */
export const DEFAULT_CONFIG_FILE = "/etc/crio/crio.conf";
export const DEFAULT_CONFIG_DIR = "/etc/crio/crio.conf.d";

/** The global flags (CRI-O's spellings), derived from the config schema plus the file flags. */
export function globalArgs(): ArgsDef {
  const args: ArgsDef = {
    config: { type: "string", alias: "c", description: `Path to the configuration file (default ${DEFAULT_CONFIG_FILE}; env CONTAINER_CONFIG)` },
    "config-dir": {
      type: "string",
      alias: "d",
      description: `Path to the drop-in configuration directory (default ${DEFAULT_CONFIG_DIR}; env CONTAINER_CONFIG_DIR)`,
    },
    "log-format": { type: "string", description: "Format of the daemon's log: text or json (env CONTAINER_LOG_FORMAT)" },
  };
  for (const f of schemaFlags()) {
    args[f.flag] = { type: f.kind === "bool" ? "boolean" : "string", description: `${f.doc} (env ${f.env})` };
  }
  return args;
}

/** Turns parsed flags into load options; only flags that were actually given override the files. */
export function loadOptionsFrom(
  parsed: Record<string, unknown>,
  env: Record<string, string | undefined> = process.env,
): { load: LoadOptions; logFormat: LogFormat } {
  const configGiven = typeof parsed.config === "string" ? parsed.config : env.CONTAINER_CONFIG;
  const flags: FlagValues = {};
  for (const f of schemaFlags()) {
    const v = parsed[f.flag];
    if (typeof v === "string" || typeof v === "boolean") flags[f.flag] = v;
  }
  const fmt = (typeof parsed["log-format"] === "string" ? parsed["log-format"] : env.CONTAINER_LOG_FORMAT) ?? "text";
  if (fmt !== "text" && fmt !== "json") throw new Error(`flag --log-format: value "${fmt}" is not valid: expected text or json`);
  return {
    load: {
      configFile: configGiven ?? DEFAULT_CONFIG_FILE,
      configFileRequired: configGiven !== undefined,
      configDir: (typeof parsed["config-dir"] === "string" ? parsed["config-dir"] : env.CONTAINER_CONFIG_DIR) ?? DEFAULT_CONFIG_DIR,
      flags,
      env,
    },
    logFormat: fmt,
  };
}
