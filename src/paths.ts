import { join } from "node:path";

/**
 * Every on-disk path of the runtime, derived from `root` (persistent) and `runroot` (tmpfs).
 * Modules own the subtree they are given and decide its inner layout themselves.
 *
 *   <root>/images/            image store: blobs, unpacked layers, the image index (image/)
 *   <root>/storage/<ctr>/     a container's writable layer: upper/, work/, merged/ (storage/)
 *   <root>/sandboxes/<id>/    meta.json (write-once) + status.json (versioned)
 *   <root>/containers/<id>/   meta.json + status.json + bundle/config.json
 *   <runroot>/exits/<id>      exit files written by the monitor (container_exits_dir)
 *   <runroot>/monitor/<id>/   a monitor's pid file, attach and control sockets
 *                             (container_attach_socket_dir: <dir>/<id>/attach, as CRI-O)
 *   <runroot>/ns/<kind>ns/<id> pinned pod namespaces (netns, ipcns, utsns; namespaces_dir)
 *   <runroot>/sandboxes/<id>/ runtime files of a pod: shm mount, hostname, resolv.conf
 *   <runroot>/idmap/{d,f}<n>  reusable mount points (a private mount) for the idmapped copies staged
 *                             while a container of a user-namespaced pod is created
 */
export interface Paths {
  root: string;
  runroot: string;
  images: string;
  storage: string;
  sandboxes: string;
  containers: string;
  exits: string;
  monitors: string;
  namespaces: string;
  sandboxRun: string;
  idmap: string;
  lock: string;
}

/** Directories crio.conf may place elsewhere than under runroot; "" or absent: the default. */
export interface PathOverrides {
  /** container_exits_dir */
  exits?: string;
  /** container_attach_socket_dir */
  monitors?: string;
  /** namespaces_dir */
  namespaces?: string;
}

/** Derives every path from the two roots (and the configured overrides). */
export function pathsFor(root: string, runroot: string, o: PathOverrides = {}): Paths {
  return {
    root,
    runroot,
    images: join(root, "images"),
    storage: join(root, "storage"),
    sandboxes: join(root, "sandboxes"),
    containers: join(root, "containers"),
    exits: o.exits || join(runroot, "exits"),
    monitors: o.monitors || join(runroot, "monitor"),
    namespaces: o.namespaces || join(runroot, "ns"),
    sandboxRun: join(runroot, "sandboxes"),
    idmap: join(runroot, "idmap"),
    lock: join(runroot, "crio.lock"),
  };
}

/** The paths of a loaded configuration: root, runroot and the exits, attach socket and namespaces dirs. */
export function pathsOf(c: {
  crio: { root: string; runroot: string };
  runtime: { containerExitsDir: string; containerAttachSocketDir: string; namespacesDir: string };
}): Paths {
  return pathsFor(c.crio.root, c.crio.runroot, {
    exits: c.runtime.containerExitsDir,
    monitors: c.runtime.containerAttachSocketDir,
    namespaces: c.runtime.namespacesDir,
  });
}
