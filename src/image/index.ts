/** The image domain: pull, store, look up and remove images. Other folders import only this file. */
export { ImageService, DEFAULT_CERTS_DIR } from "./service.ts";
export { imageOptions } from "./options.ts";
export type { ImageFsInfo, ImageRecord, ImageServiceOptions, OciImageConfig, PullOptions, PullProgress } from "./types.ts";
export type { PullAuth } from "./auth.ts";
export { parseReference, normalize, formatRef, type ImageRef } from "./reference.ts";
export { loadRegistriesConf, type RegistriesConf } from "./registries-conf.ts";
