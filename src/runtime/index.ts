/** Runtime handlers: the OCI runtime, its features and its monitors per handler. Other folders import only this file. */
export { RuntimeHandler, type CreateOptions, type HandlerConfig, type HandlerContext, type HandlersSettings, type HandlerFeatures } from "./handler.ts";
export { RuntimeHandlers, type LookPath } from "./registry.ts";
export { FeaturesCache, FEATURES_CACHE_FILE, type FeaturesCacheIo, type FeaturesStamp } from "./features-cache.ts";
