/** The OCI runtime layer: the runc/crun driver, bundles (config.json) and the spec types. Other folders import only this file. */
export { OciRuntime, classify, type OciRuntimeOptions, type RuntimeFeatures } from "./runtime.ts";
export { RuntimeCommand, type CreateArgs, type ExecArgs, type RuntimeCommandOptions } from "./command.ts";
export { configPath, readBundle, removeBundle, specToJson, writeBundle } from "./bundle.ts";
export * from "./spec-types.ts";
