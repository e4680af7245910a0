declare const CRIO_VERSION: string | undefined;
declare const CRIO_COMMIT: string | undefined;
declare const CRIO_BUILD_DATE: string | undefined;

/** The version of this build (set by build.ts; "0.0.0-dev" when run from source). */
export const VERSION: string = typeof CRIO_VERSION === "string" ? CRIO_VERSION : "0.1.0-dev";
/** The git commit of this build. */
export const COMMIT: string = typeof CRIO_COMMIT === "string" ? CRIO_COMMIT : "unknown";
/** When this build was made (RFC 3339). */
export const BUILD_DATE: string = typeof CRIO_BUILD_DATE === "string" ? CRIO_BUILD_DATE : "unknown";
/** The CRI version this runtime speaks. */
export const CRI_API_VERSION = "v1";
/** The runtime name reported by Version. */
export const RUNTIME_NAME = "cri-o";
