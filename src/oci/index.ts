/** The OCI runtime layer: the runc/crun driver, bundles (config.json) and the spec types. Other folders import only this file. */
export { OciRuntime, classify, type CreateOptions, type ExecOptions, type OciRuntimeOptions, type RuntimeFeatures } from "./runtime.ts";
export { configPath, readBundle, removeBundle, specToJson, writeBundle } from "./bundle.ts";
export * from "./spec-types.ts";
