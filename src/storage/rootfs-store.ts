import type { IdMap } from "../sys/userns.ts";
import { createRootfs, mountImageVolume, removeRootfs } from "./overlay.ts";

/** A pod's user namespace to show a container's layers through (a pod with its own). */
export interface PodLayerIdmap {
  /** The pinned user namespace file. */
  usernsPath: string;
  uids: readonly IdMap[];
  gids: readonly IdMap[];
}

/**
 * The container root filesystems of the node: overlays under `storageDir` with storage_option's
 * mount options; idmapped layers (user-namespaced pods) are staged under `stagingDir` (paths.idmap),
 * each mount's group named after its container.
 */
export class RootfsStore {
  constructor(readonly o: { storageDir: string; stagingDir: string; mountOptions?: string[] }) {}

  /** Mounts container `id`'s root filesystem over `lowerDirs` (lowest first); returns its merged dir. */
  create(id: string, lowerDirs: string[], idmap?: PodLayerIdmap): Promise<string> {
    return createRootfs(this.o.storageDir, id, lowerDirs, {
      mountOptions: this.o.mountOptions,
      ...(idmap ? { idmap: { ...idmap, stagingBase: this.o.stagingDir, stagingKey: `${id}-rootfs` } } : {}),
    });
  }

  /** Mounts an image's layers read-only as container `id`'s image volume `n`; removed with the root filesystem. */
  mountImage(id: string, n: number, lowerDirs: string[], idmap?: PodLayerIdmap): Promise<string> {
    return mountImageVolume(this.o.storageDir, id, n, lowerDirs, idmap ? { ...idmap, stagingBase: this.o.stagingDir, stagingKey: `${id}-iv${n}` } : undefined);
  }

  /** Unmounts and removes container `id`'s root filesystem and image volumes (idempotent). */
  remove(id: string): Promise<void> {
    return removeRootfs(this.o.storageDir, id);
  }
}
