import { join, normalize } from "node:path";
import type { Mount as CriMount } from "../../gen/runtime/v1/api_pb.ts";
import { invalid } from "../../errors.ts";
import type { Mount } from "../../oci/spec-types.ts";

/** CRI MountPropagation values (api.proto enum MountPropagation). */
export const PROPAGATION = { PRIVATE: 0, HOST_TO_CONTAINER: 1, BIDIRECTIONAL: 2 } as const;

/** The runtime-tools default mounts every container starts from. */
export function defaultMounts(): Mount[] {
  return [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
    { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"] },
  ];
}

/** The pod-level files a container sees. */
export interface PodFiles {
  shmPath?: string;
  /** The pod uses the host IPC namespace: bind the host's /dev/shm when no shm path is given. */
  hostIpc: boolean;
  hostnamePath?: string;
  resolvConfPath?: string;
  hostsPath?: string;
}

/** Options of containerMounts. */
export interface MountInput {
  cri: readonly CriMount[];
  pod: PodFiles;
  privileged: boolean;
  /** Read-only root filesystem: the pod files are bound read-only, and with `tmpfsDirs` /run, /tmp, /var/tmp get tmpfs. */
  readonlyRootfs: boolean;
  /** Add tmpfs /run, /tmp, /var/tmp (the node-wide read_only option). */
  tmpfsDirs: boolean;
  /** Generated /etc/passwd and /etc/group copies. */
  generated: ReadonlyArray<{ source: string; destination: string }>;
  /** The OCI runtime supports "rro". */
  rro: boolean;
  /** Resolves a host path (symlinks) or returns undefined when it does not exist. */
  realpath: (path: string) => string | undefined;
  /** The pod has a user namespace of its own: CRI mounts may carry id mappings (made idmapped by the daemon). */
  userns?: boolean;
  /** The host directory mounted for an image volume (CRI Mount.image); undefined when none was. */
  imageVolume?: (c: CriMount) => string | undefined;
  /** bind_mount_prefix: put in front of every CRI mount's host path (crio running in a container). */
  bindMountPrefix?: string;
  /** absent_mount_sources_to_reject: host paths that are an error when missing, instead of being created. */
  absentSourcesToReject?: readonly string[];
}

/** The spec's mounts, the rootfs propagation they need, and host directories to create first. */
export interface MountResult {
  mounts: Mount[];
  rootfsPropagation?: "rslave" | "rshared";
  /** Missing bind sources, created as directories by the caller (CRI-O does the same). */
  mkdirs: string[];
}

/**
 * Builds the mount list as CRI-O does: runtime-tools defaults, sysfs/cgroup writable for privileged
 * containers, /dev/shm bound from the pod, /etc/{resolv.conf,hostname,hosts}, then the CRI mounts
 * (sorted parents first) which replace any default at the same destination (a CRI /dev or /sys also
 * drops the defaults below it).
 */
export function containerMounts(m: MountInput): MountResult {
  const criDest = new Set<string>();
  for (const c of m.cri) {
    if (!c.containerPath) throw invalid("mount.container_path is empty");
    criDest.add(cleanPath(c.containerPath));
  }
  const list = new MountList();
  for (const d of defaultMounts()) list.add(d);
  if (m.privileged) {
    list.add({ destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "rw", "rslave"] });
    list.add({ destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "rw", "relatime", "rslave"] });
  }
  const shm = m.pod.shmPath ?? (m.pod.hostIpc ? "/dev/shm" : undefined);
  if (shm) list.add({ destination: "/dev/shm", type: "bind", source: shm, options: ["rw", "bind"] });
  const mode = m.readonlyRootfs ? "ro" : "rw";
  if (m.pod.resolvConfPath)
    list.add({ destination: "/etc/resolv.conf", type: "bind", source: m.pod.resolvConfPath, options: [mode, "bind", "nodev", "nosuid", "noexec"] });
  if (m.pod.hostnamePath) list.add({ destination: "/etc/hostname", type: "bind", source: m.pod.hostnamePath, options: [mode, "bind"] });
  if (m.pod.hostsPath) list.add({ destination: "/etc/hosts", type: "bind", source: m.pod.hostsPath, options: [mode, "bind"] });
  if (m.privileged) list.all().forEach(clearReadOnly);
  if (m.tmpfsDirs) {
    const opts = ["rw", "noexec", "nosuid", "nodev", "tmpcopyup"];
    for (const [dest, mode] of [
      ["/run", "mode=0755"],
      ["/tmp", "mode=1777"],
      ["/var/tmp", "mode=1777"],
    ] as const)
      list.add({ destination: dest, type: "tmpfs", source: "tmpfs", options: [...opts, mode] });
  }
  for (const g of m.generated) list.add({ destination: g.destination, type: "bind", source: g.source, options: ["rw", "bind", "nodev", "nosuid", "noexec"] });

  // CRI mounts win: drop what they cover.
  list.removeWhere((dst) => criDest.has(dst) || (criDest.has("/dev") && dst.startsWith("/dev/")) || (criDest.has("/sys") && dst.startsWith("/sys/")));
  const mkdirs: string[] = [];
  let rootfsPropagation: MountResult["rootfsPropagation"];
  const sorted = [...m.cri].sort((a, b) => depth(a.containerPath) - depth(b.containerPath));
  for (const c of sorted) {
    const r = criMount(c, m, mkdirs);
    if (r.propagation === "rshared") rootfsPropagation = "rshared";
    else if (r.propagation === "rslave" && rootfsPropagation !== "rshared") rootfsPropagation = "rslave";
    list.add(r.mount);
  }
  return { mounts: list.all(), rootfsPropagation, mkdirs };
}

// --- internal ---

function criMount(c: CriMount, m: MountInput, mkdirs: string[]): { mount: Mount; propagation: string } {
  const dest = cleanPath(c.containerPath);
  if (!dest.startsWith("/")) throw invalid(`mount container path "${c.containerPath}" is not absolute`);
  if (c.image?.image) {
    // KEP-4639: the image's files, read-only, and nothing in them runs with privileges or at all
    const source = m.imageVolume?.(c);
    if (!source) throw invalid(`image volume "${c.image.image}" at "${dest}" is not mounted`);
    if (c.hostPath) throw invalid(`mount at "${dest}" has both host_path and image`);
    return { mount: { destination: dest, type: "bind", source, options: ["rbind", "rprivate", "ro", "nosuid", "nodev", "noexec"] }, propagation: "rprivate" };
  }
  if (c.imageSubPath) throw invalid(`image_sub_path is set for "${dest}", which is not an image volume`);
  if (!c.hostPath) throw invalid(`mount.host_path is empty for container path "${dest}"`);
  if (c.uidMappings.length > 0 || c.gidMappings.length > 0) {
    if (!m.userns) throw invalid(`mount "${dest}" has uid/gid mappings, but its pod runs in the host's user namespace`);
    if (c.uidMappings.length === 0 || c.gidMappings.length === 0) throw invalid(`mount "${dest}" needs both uid and gid mappings`);
    for (const x of [...c.uidMappings, ...c.gidMappings])
      if (x.length === 0 || x.hostId + x.length > 0xffffffff || x.containerId + x.length > 0xffffffff)
        throw invalid(`mount "${dest}" has an invalid id mapping ${x.containerId}:${x.hostId}:${x.length}`);
    if (c.propagation === PROPAGATION.BIDIRECTIONAL) throw invalid(`mount "${dest}": bidirectional propagation cannot be combined with id mappings`);
  }
  // CRI-O: the source is bind_mount_prefix + host_path; a missing one is created as a directory
  // unless absent_mount_sources_to_reject names it.
  const hostPath = m.bindMountPrefix ? join(m.bindMountPrefix, c.hostPath) : c.hostPath;
  let source = m.realpath(hostPath);
  if (source === undefined) {
    source = cleanPath(hostPath);
    if (m.absentSourcesToReject?.some((r) => cleanPath(r) === source))
      throw invalid(`cannot mount ${source}: path does not exist and will cause issues as a directory (absent_mount_sources_to_reject)`);
    mkdirs.push(source);
  }
  const options = ["rbind"];
  let propagation: string;
  switch (c.propagation) {
    case PROPAGATION.BIDIRECTIONAL:
      propagation = "rshared";
      break;
    case PROPAGATION.HOST_TO_CONTAINER:
      propagation = "rslave";
      break;
    default:
      propagation = "rprivate";
  }
  options.push(propagation);
  if (c.recursiveReadOnly) {
    if (!c.readonly) throw invalid(`recursive read-only mount conflicts with read-write mount for hostPath "${c.hostPath}"`);
    if (!m.rro) throw invalid(`recursive read-only mount support is not available for hostPath "${c.hostPath}"`);
    if (propagation !== "rprivate") throw invalid(`recursive read-only mount requires private propagation for hostPath "${c.hostPath}"`);
    options.push("rro");
  } else options.push(c.readonly ? "ro" : "rw");
  return { mount: { destination: dest, type: "bind", source, options }, propagation };
}

function depth(p: string): number {
  return cleanPath(p).split("/").filter(Boolean).length;
}

/** filepath.Clean: normalised, without a trailing slash (except "/"). */
function cleanPath(p: string): string {
  const n = normalize(p);
  return n.length > 1 ? n.replace(/\/+$/, "") : n;
}

function clearReadOnly(mount: Mount): void {
  const opts = mount.options ?? [];
  if (opts.includes("rw")) return;
  mount.options = [...opts.filter((o) => o !== "ro"), "rw"];
}

/** Mounts keyed by destination; adding a destination again replaces the earlier mount (moved last). */
class MountList {
  #items: Mount[] = [];
  add(m: Mount): void {
    this.#items = this.#items.filter((x) => x.destination !== m.destination);
    this.#items.push(m);
  }
  removeWhere(pred: (dst: string) => boolean): void {
    this.#items = this.#items.filter((x) => !pred(x.destination));
  }
  all(): Mount[] {
    return this.#items;
  }
}
