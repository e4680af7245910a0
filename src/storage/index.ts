/** Container root filesystems (overlay over the image's unpacked layers) and the layer store. Other folders import only this file. */
export { createRootfs, diskUsage, mountImageVolume, removeRootfs, rootfsPaths, unmountRootfs, type RootfsOptions, type RootfsPaths } from "./overlay.ts";
export { RootfsStore, type PodLayerIdmap } from "./rootfs-store.ts";
export { LayerStore, type LayerStats } from "./layers.ts";
