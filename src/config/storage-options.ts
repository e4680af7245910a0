/**
 * storage_option: containers/storage driver options in the form CRI-O passes them
 * ("overlay.mountopt=nodev,metacopy=on"; the "overlay2." and bare "." prefixes are the same
 * driver). `mountopt` is honoured: its options are added to every container's overlay mount.
 * The other overlay options containers/storage knows need parts of it this runtime does not
 * have; each is refused with its name, as is any option it does not know.
 */

/** What storage_option asks of the overlay root filesystems. */
export interface StorageOptions {
  /** Extra overlay mount options, in order. */
  mountOptions: string[];
}

/** Overlay options of containers/storage that this runtime does not implement. */
const UNSUPPORTED = [
  "size",
  "inodes",
  "imagestore",
  "additionalimagestore",
  "additionallayerstore",
  "use_composefs",
  "mount_program",
  "skip_mount_home",
  "ignore_chown_errors",
  "force_mask",
  "override_kernel_check",
];

/** Parses storage_option entries; throws Error naming the entry that cannot be used. */
export function parseStorageOptions(entries: readonly string[]): StorageOptions {
  const out: StorageOptions = { mountOptions: [] };
  for (const e of entries) {
    const eq = e.indexOf("=");
    if (eq < 0) throw new Error(`"${e}" is not KEY=VALUE`);
    const key = e
      .slice(0, eq)
      .trim()
      .toLowerCase()
      .replace(/^(overlay2?\.|\.)/, "");
    const value = e.slice(eq + 1).trim();
    if (key === "mountopt") {
      for (const o of value.split(",")) {
        if (!/^[a-z_]+(=[A-Za-z0-9_.:/-]+)?$/.test(o)) throw new Error(`"${e}": "${o}" is not a mount option`);
        if (/^(lowerdir|upperdir|workdir)=/.test(o)) throw new Error(`"${e}": "${o}" is set by the runtime`);
        out.mountOptions.push(o);
      }
    } else if (UNSUPPORTED.includes(key)) throw new Error(`"${e}": the overlay option "${key}" is not supported by this runtime (supported: overlay.mountopt)`);
    else throw new Error(`"${e}": unknown storage option "${key}" (supported: overlay.mountopt)`);
  }
  return out;
}
