import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/schema.ts";
import { parseDuration } from "../config/validate.ts";
import type { Paths } from "../paths.ts";
import type { ImageServiceOptions } from "./types.ts";

/**
 * The image service's options from crio.conf [crio.image], honouring
 * CONTAINERS_REGISTRIES_CONF(_DIR). Shared by the daemon and `crio pull`, so both open the
 * same store with the same registries, policy, credentials and certificates.
 */
export function imageOptions(c: Config, paths: Paths, env: Record<string, string | undefined> = process.env): ImageServiceOptions {
  return {
    root: paths.images,
    registriesConfPath: c.image.registriesConf || env.CONTAINERS_REGISTRIES_CONF || "/etc/containers/registries.conf",
    registriesConfDir: c.image.registriesConfDir || env.CONTAINERS_REGISTRIES_CONF_DIR || "/etc/containers/registries.conf.d",
    policyPath: c.image.signaturePolicy || "/etc/containers/policy.json",
    policyDir: c.image.signaturePolicyDir || undefined,
    globalAuthFile: c.image.globalAuthFile || undefined,
    authFiles: [join("/run/containers", String(process.getuid?.() ?? 0), "auth.json")].filter((p) => existsSync(p)),
    certsDir: c.image.certsDir,
    maxParallelDownloads: c.image.maxParallelDownloads,
    pullProgressTimeoutMs: parseDuration(c.image.pullProgressTimeout) || undefined,
    pinnedImages: c.image.pinnedImages,
    pauseImage: c.image.pauseImage,
    shortNameMode: c.image.shortNameMode as ImageServiceOptions["shortNameMode"],
    insecureRegistries: c.image.insecureRegistries,
    bigFilesTemporaryDir: c.image.bigFilesTemporaryDir || undefined,
  };
}
