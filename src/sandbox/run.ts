import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { PodSandboxConfig } from "../gen/runtime/v1/api_pb.ts";
import { invalid, precondition, wrap } from "../errors.ts";
import { newId } from "../util/id.ts";
import { Undo } from "../util/undo.ts";
import type { StoredRecord } from "../store/index.ts";
import type { PinnedNamespaces } from "../sys/namespaces.ts";
import type { PodContainers, SandboxDeps } from "./deps.ts";
import { configWithAnnotations, podAnnotations } from "./annotations.ts";
import { podHostname, writeHostname, writeResolvConf } from "./files.ts";
import { NS, sandboxName, type SandboxMeta, type SandboxState, type SandboxView } from "./record.ts";
import { parseByteSize } from "../util/quantity.ts";
import { traced } from "../log/trace.ts";
import { podUserns, toHost, type IdRanges } from "./userns.ts";

/** The pod's /dev/shm size when no annotation asks otherwise (CRI-O: 64 MiB). */
export const DEFAULT_SHM_BYTES = 64 * 1024 * 1024;

/** What RunPodSandbox hands the domain: the config, its protobuf JSON, the handler. */
export interface RunSandboxInput {
  config: PodSandboxConfig;
  configJson: unknown;
  runtimeHandler: string;
}

/**
 * RunPodSandbox: validate, reserve the name, pin namespaces, shm, hostname and resolv.conf,
 * network (CNI ADD), the infra container when needed, then the record. Every step registers
 * its undo: a failure leaves nothing behind and the error names the step. When undoing the ADD
 * fails too, the namespaces stay pinned and the teardown is handed to `owe` (retried later).
 */
export async function runSandbox(
  d: SandboxDeps,
  containers: PodContainers,
  input: RunSandboxInput,
  signal: AbortSignal,
  onCreated: (rec: StoredRecord<SandboxMeta, SandboxState>) => void,
  owe: (id: string, namespaces: PinnedNamespaces) => void = () => {},
  ranges?: IdRanges,
): Promise<StoredRecord<SandboxMeta, SandboxState>> {
  const { config } = input;
  const md = config.metadata;
  if (!md?.name || !md.namespace) throw invalid("PodSandboxConfig.Metadata.Name and Namespace are required");
  if (!/^[^\s/]+$/.test(md.name) || !/^[^\s/]+$/.test(md.namespace) || /[\s/]/.test(md.uid))
    throw invalid(`invalid pod metadata name "${md.name}", namespace "${md.namespace}" or uid "${md.uid}"`);
  const settings = d.settings();
  const handler = input.runtimeHandler || settings.defaultRuntime;
  if (!settings.runtimeHandlers.includes(handler))
    throw invalid(`runtime handler "${input.runtimeHandler}" is not configured (configured: ${settings.runtimeHandlers.join(", ")})`);

  const nso = config.linux?.securityContext?.namespaceOptions;
  const namespaceOptions = { network: nso?.network ?? NS.POD, pid: nso?.pid ?? NS.POD, ipc: nso?.ipc ?? NS.POD, targetId: nso?.targetId ?? "" };
  if (namespaceOptions.pid === NS.TARGET) throw invalid("pod-level PID namespace mode TARGET is not valid");
  const userns = podUserns(nso);
  if (userns) {
    const missing = await d.handlers.get(handler).usernsSupport();
    if (missing) throw precondition(`pods in their own user namespace are not supported with runtime handler "${handler}" on this node: ${missing}`);
  }
  const hostNet = namespaceOptions.network === NS.NODE;
  const hostIpc = namespaceOptions.ipc === NS.NODE;
  const sysctls = podSysctls(settings.defaultSysctls, config.linux?.sysctls ?? {}, hostNet, hostIpc);

  const id = newId();
  const name = sandboxName(md);
  const log = d.log.withTag("sandbox");
  // The handler's default annotations under the request's own; the request's experimental
  // annotations its allowed_annotations leave out are dropped, said at debug level only.
  const { annotations, dropped } = podAnnotations(config.annotations, settings.handlerAnnotations?.[handler]);
  for (const k of dropped)
    log.debug(`Annotation "${k}" of pod ${md.namespace}/${md.name} is not in runtime handler "${handler}"'s allowed_annotations; ignored`);
  const shmBytes = hostIpc ? 0 : shmSize(annotations); // a bad size fails before anything is made
  await using undo = new Undo(log);
  d.names.reserve(name, id);
  undo.defer("release name", () => d.names.release(name, id));
  if (userns) {
    if (!ranges) throw precondition("no user namespace range registry");
    ranges.reserve(id, userns);
    undo.defer("release user namespace ranges", () => ranges.release(id));
  }
  // The pod's root on the host: owner of what the pod gets (shm) when it has a user namespace.
  const owner = userns ? { uid: toHost(userns.uids, 0)!, gid: toHost(userns.gids, 0)! } : undefined;

  const runDir = join(d.paths.sandboxRun, id);
  await mkdir(runDir, { recursive: true, mode: 0o711 });
  undo.defer("remove run dir", () => rm(runDir, { recursive: true, force: true }));
  if (config.logDirectory)
    await mkdir(config.logDirectory, { recursive: true, mode: 0o755 }).catch((e) => {
      throw wrap(e, `create pod log directory "${config.logDirectory}"`);
    });

  const hostname = podHostname(config.hostname, md.name);
  const namespaces = await d.namespaces
    .pin(d.paths.namespaces, id, {
      net: !hostNet,
      ipc: !hostIpc,
      uts: !hostNet,
      hostname: hostNet ? undefined : hostname,
      sysctls,
      ...(userns ? { user: userns } : {}),
    })
    .catch((e) => {
      throw wrap(e, "pin pod namespaces");
    });
  let networkOwed = false; // a failed undo of the ADD keeps the netns for the DEL still owed
  undo.defer("unpin namespaces", () => (networkOwed ? undefined : d.namespaces.unpin(namespaces)));

  let shmPath = "/dev/shm";
  if (!hostIpc) {
    shmPath = join(runDir, "shm");
    await mkdir(shmPath, { recursive: true, mode: 0o755 });
    await d.shm.mount(shmPath, shmBytes, owner).catch((e) => {
      throw wrap(e, "mount pod shm");
    });
    undo.defer("unmount shm", () => d.shm.unmount(shmPath));
  }
  const hostnamePath = join(runDir, "hostname");
  const resolvConfPath = join(runDir, "resolv.conf");
  await writeHostname(hostnamePath, hostNet ? await hostHostname() : hostname);
  await writeResolvConf(
    resolvConfPath,
    config.dnsConfig ? { servers: config.dnsConfig.servers, searches: config.dnsConfig.searches, options: config.dnsConfig.options } : undefined,
  );

  const meta: SandboxMeta = {
    id,
    name,
    metadata: { name: md.name, uid: md.uid, namespace: md.namespace, attempt: md.attempt },
    configJson: configWithAnnotations(input.configJson, annotations),
    labels: { ...config.labels },
    annotations,
    runtimeHandler: handler,
    hostname,
    logDirectory: config.logDirectory,
    cgroupParent: config.linux?.cgroupParent ?? "",
    namespaceOptions,
    ...(userns ? { userns } : {}),
    createdAt: Date.now(),
  };
  const status: SandboxState = { state: "ready", ips: [], namespaces, shmPath, hostnamePath, resolvConfPath, networkPending: false };

  let networkDone: Promise<void> | undefined;
  if (!hostNet) {
    await d.network.waitReady(settings.networkWaitMs, signal).catch((e) => {
      throw wrap(e, "wait for the network");
    });
    const pod = podNet(meta, status);
    // CNI ADD: the record says the network is owed until ADD has been undone or the pod removed.
    undo.defer("network teardown", async () => {
      try {
        await d.network.tearDown(pod);
      } catch (e) {
        networkOwed = true;
        owe(id, namespaces);
        throw e;
      }
    });
    // disable_hostport_mapping: the runtime sets up no hostPort mapping (the CNI portmap plugin gets none)
    networkDone = d.network.setUp(settings.disableHostportMapping ? { ...pod, portMappings: [] } : pod, signal).then(
      (r) => void (status.ips = r.ips),
      (e) => {
        throw wrap(e, "set up pod network");
      },
    );
  } else {
    status.ips = await d.network.hostAddresses().catch(() => []);
  }

  // The infra container joins the pinned namespaces by path: it does not wait for the network,
  // so the two run at once (a pod's start-up is then the longer of them, not their sum).
  let infraDone: Promise<{ containerId: string; pid: number }> | undefined;
  if (!settings.dropInfraCtr || namespaceOptions.pid === NS.POD) {
    const view: SandboxView = { meta, status };
    infraDone = traced("sandbox.start_infra", () => containers.infra.start(view, { ...config, annotations }, signal)).catch((e) => {
      throw wrap(e, "start infra container");
    });
  }
  const [net, infra] = await Promise.allSettled([networkDone, infraDone]);
  if (infra.status === "fulfilled" && infra.value) {
    const started = infra.value;
    undo.defer("remove infra container", () => containers.infra.remove({ meta, status: { ...status, infraContainerId: started.containerId } }));
    status.infraContainerId = started.containerId;
    status.infraPid = started.pid;
  }
  if (net.status === "rejected") throw net.reason;
  if (infra.status === "rejected") throw infra.reason;

  const rec = await d.records.create(id, meta, status).catch((e) => {
    throw wrap(e, "write sandbox record");
  });
  onCreated(rec);
  undo.commit();
  log.info(`Ran pod sandbox ${id} with infra container ${status.infraContainerId ?? "(none)"}`, { pod: `${md.namespace}/${md.name}` });
  return rec;
}

/** The network's view of a pod. */
export function podNet(meta: SandboxMeta, status: SandboxState): import("./deps.ts").PodNet {
  const cfg = meta.configJson as {
    portMappings?: Array<{ protocol?: string; containerPort?: number; hostPort?: number; hostIp?: string }>;
    dnsConfig?: { servers?: string[]; searches?: string[]; options?: string[] };
  };
  return {
    id: meta.id,
    name: meta.metadata.name,
    namespace: meta.metadata.namespace,
    uid: meta.metadata.uid,
    netns: status.namespaces.net ?? "",
    portMappings: (cfg.portMappings ?? [])
      .filter((p) => (p.hostPort ?? 0) > 0)
      .map((p) => ({
        hostPort: p.hostPort!,
        containerPort: p.containerPort ?? 0,
        protocol: (p.protocol ?? "TCP").toLowerCase(),
        ...(p.hostIp ? { hostIP: p.hostIp } : {}),
      })),
    cgroupPath: meta.cgroupParent || undefined,
    dns: cfg.dnsConfig ? { servers: cfg.dnsConfig.servers ?? [], searches: cfg.dnsConfig.searches ?? [], options: cfg.dnsConfig.options ?? [] } : undefined,
  };
}

// --- internal ---

/** Sorts sysctls into namespaces; refuses ones the pod's namespaces cannot hold. */
function podSysctls(defaults: string[], asked: Record<string, string>, hostNet: boolean, hostIpc: boolean): Record<string, string> {
  const all: Record<string, string> = {};
  for (const kv of defaults) {
    const i = kv.indexOf("=");
    all[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
  }
  Object.assign(all, asked);
  for (const key of Object.keys(all)) {
    const k = key.replaceAll("/", ".");
    const ipc = /^(kernel\.(shm|msg|sem)|fs\.mqueue\.)/.test(k);
    const net = k.startsWith("net.");
    const uts = k === "kernel.hostname" || k === "kernel.domainname";
    if (!ipc && !net && !uts) throw invalid(`sysctl "${key}" is not namespaced and cannot be set for a pod`);
    if (net && hostNet) throw invalid(`sysctl "${key}" cannot be set in a pod that uses the host's network namespace`);
    if (uts && hostNet) throw invalid(`sysctl "${key}" cannot be set in a pod that uses the host's UTS namespace`);
    if (ipc && hostIpc) throw invalid(`sysctl "${key}" cannot be set in a pod that uses the host's IPC namespace`);
  }
  return all;
}

/** The pod's /dev/shm size: the shm size annotation (either name), if it survived the handler's allowed_annotations. */
function shmSize(annotations: Record<string, string>): number {
  const v = annotations["io.kubernetes.cri-o.ShmSize"] ?? annotations["shm-size.crio.io"];
  if (!v) return DEFAULT_SHM_BYTES;
  const n = parseByteSize(v);
  if (n === undefined) throw invalid(`invalid shm size annotation "${v}"`);
  return n;
}

async function hostHostname(): Promise<string> {
  const { hostname } = await import("node:os");
  return hostname();
}
