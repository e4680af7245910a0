import type { ContainerConfig } from "../../gen/runtime/v1/api_pb.ts";

/** CRI-O's annotation keys (pkg/annotations), read back by tools and by our own recovery. */
export const ANN = {
  Annotations: "io.kubernetes.cri-o.Annotations",
  ContainerID: "io.kubernetes.cri-o.ContainerID",
  ContainerName: "io.kubernetes.cri-o.ContainerName",
  ContainerType: "io.kubernetes.cri-o.ContainerType",
  Created: "io.kubernetes.cri-o.Created",
  CgroupParent: "io.kubernetes.cri-o.CgroupParent",
  HostName: "io.kubernetes.cri-o.HostName",
  HostnamePath: "io.kubernetes.cri-o.HostnamePath",
  HostNetwork: "io.kubernetes.cri-o.HostNetwork",
  IP: "io.kubernetes.cri-o.IP",
  Image: "io.kubernetes.cri-o.Image",
  ImageName: "io.kubernetes.cri-o.ImageName",
  ImageRef: "io.kubernetes.cri-o.ImageRef",
  KubeName: "io.kubernetes.cri-o.KubeName",
  Labels: "io.kubernetes.cri-o.Labels",
  LogPath: "io.kubernetes.cri-o.LogPath",
  Metadata: "io.kubernetes.cri-o.Metadata",
  MountPoint: "io.kubernetes.cri-o.MountPoint",
  Name: "io.kubernetes.cri-o.Name",
  Namespace: "io.kubernetes.cri-o.Namespace",
  PrivilegedRuntime: "io.kubernetes.cri-o.PrivilegedRuntime",
  ResolvPath: "io.kubernetes.cri-o.ResolvPath",
  RuntimeHandler: "io.kubernetes.cri-o.RuntimeHandler",
  SandboxID: "io.kubernetes.cri-o.SandboxID",
  SandboxName: "io.kubernetes.cri-o.SandboxName",
  SeccompProfilePath: "io.kubernetes.cri-o.SeccompProfilePath",
  ShmPath: "io.kubernetes.cri-o.ShmPath",
  Stdin: "io.kubernetes.cri-o.Stdin",
  StdinOnce: "io.kubernetes.cri-o.StdinOnce",
  TTY: "io.kubernetes.cri-o.TTY",
  Volumes: "io.kubernetes.cri-o.Volumes",
  ContainerManager: "io.container.manager",
  StopSignal: "org.opencontainers.image.stopSignal",
  // containerd's keys, which NRI plugins and node agents also read.
  CriContainerType: "io.kubernetes.cri.container-type",
  CriContainerName: "io.kubernetes.cri.container-name",
  CriSandboxID: "io.kubernetes.cri.sandbox-id",
  CriSandboxName: "io.kubernetes.cri.sandbox-name",
  CriSandboxNamespace: "io.kubernetes.cri.sandbox-namespace",
  CriSandboxUID: "io.kubernetes.cri.sandbox-uid",
  CriImageName: "io.kubernetes.cri.image-name",
} as const;

/** Facts the container annotations record. */
export interface AnnotationInput {
  id: string;
  name: string;
  config: ContainerConfig;
  sandbox: {
    id: string;
    name: string;
    podName: string;
    podNamespace: string;
    podUid: string;
    annotations: Record<string, string>;
    ips: string[];
    resolvConfPath?: string;
  };
  image: { id: string; name: string; userRequested: string };
  logPath: string;
  rootfs: string;
  seccompRef: string;
  created: string;
  stopSignal?: string;
}

/**
 * A container's spec annotations: the pod's annotations, the CRI annotations and labels, then
 * CRI-O's io.kubernetes.cri-o.* record and containerd's io.kubernetes.cri.* keys (these last, so a
 * label cannot fake them). Keys are sorted for a stable config.json.
 */
export function containerAnnotations(a: AnnotationInput): Record<string, string> {
  const c = a.config;
  const out: Record<string, string> = { ...a.sandbox.annotations, ...c.annotations, ...c.labels };
  const volumes = c.mounts.map((m) => ({
    container_path: m.containerPath,
    host_path: m.hostPath,
    readonly: m.readonly,
    propagation: m.propagation,
    selinux_relabel: m.selinuxRelabel,
    recursive_read_only: m.recursiveReadOnly,
  }));
  Object.assign(out, {
    [ANN.Annotations]: JSON.stringify(sorted(c.annotations)),
    [ANN.ContainerID]: a.id,
    [ANN.ContainerName]: a.name,
    [ANN.ContainerType]: "container",
    [ANN.Created]: a.created,
    [ANN.Image]: a.image.userRequested,
    [ANN.ImageName]: a.image.name,
    [ANN.ImageRef]: a.image.id,
    [ANN.Labels]: JSON.stringify(sorted(c.labels)),
    [ANN.LogPath]: a.logPath,
    [ANN.Metadata]: JSON.stringify({ name: c.metadata?.name ?? "", attempt: c.metadata?.attempt ?? 0 }),
    [ANN.MountPoint]: a.rootfs,
    [ANN.Name]: a.name,
    [ANN.ResolvPath]: a.sandbox.resolvConfPath ?? "",
    [ANN.SandboxID]: a.sandbox.id,
    [ANN.SandboxName]: a.sandbox.name,
    [ANN.SeccompProfilePath]: a.seccompRef,
    [ANN.Stdin]: String(c.stdin),
    [ANN.StdinOnce]: String(c.stdinOnce),
    [ANN.TTY]: String(c.tty),
    [ANN.Volumes]: JSON.stringify(volumes),
    [ANN.ContainerManager]: "cri-o",
    [ANN.CriContainerType]: "container",
    [ANN.CriContainerName]: c.metadata?.name ?? "",
    [ANN.CriSandboxID]: a.sandbox.id,
    [ANN.CriSandboxName]: a.sandbox.podName,
    [ANN.CriSandboxNamespace]: a.sandbox.podNamespace,
    [ANN.CriSandboxUID]: a.sandbox.podUid,
    [ANN.CriImageName]: a.image.userRequested,
  });
  a.sandbox.ips.forEach((ip, i) => {
    out[`${ANN.IP}.${i}`] = ip;
  });
  if (a.stopSignal) out[ANN.StopSignal] = a.stopSignal;
  return sorted(out);
}

/** An object with its keys in sorted order. */
export function sorted(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
