/** Container root filesystems (overlay over the image's unpacked layers). Other folders import only this file. */
export { createRootfs, diskUsage, removeRootfs, rootfsPaths, unmountRootfs, type RootfsOptions, type RootfsPaths } from "./overlay.ts";
