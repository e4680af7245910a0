import { join } from "node:path";

/**
 * Every on-disk path of the runtime, derived from `root` (persistent) and `runroot` (tmpfs).
 * Modules own the subtree they are given and decide its inner layout themselves.
 *
 *   <root>/images/            image store: blobs, unpacked layers, the image index (image/)
 *   <root>/storage/<ctr>/     a container's writable layer: upper/, work/, merged/ (storage/)
 *   <root>/sandboxes/<id>/    meta.json (write-once) + status.json (versioned)
 *   <root>/containers/<id>/   meta.json + status.json + bundle/config.json
 *   <runroot>/exits/<id>      exit files written by the monitor
 *   <runroot>/monitor/<id>/   a monitor's pid file, attach and control sockets
 *   <runroot>/ns/<kind>/<id>  pinned pod namespaces (net, ipc, uts)
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

/** Derives every path from the two roots. */
export function pathsFor(root: string, runroot: string): Paths {
  return {
    root,
    runroot,
    images: join(root, "images"),
    storage: join(root, "storage"),
    sandboxes: join(root, "sandboxes"),
    containers: join(root, "containers"),
    exits: join(runroot, "exits"),
    monitors: join(runroot, "monitor"),
    namespaces: join(runroot, "ns"),
    sandboxRun: join(runroot, "sandboxes"),
    idmap: join(runroot, "idmap"),
    lock: join(runroot, "crio.lock"),
  };
}
