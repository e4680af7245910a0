import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize } from "node:path";
import type { ContainerConfig, PodSandboxConfig } from "../gen/runtime/v1/api_pb.ts";
import { invalid, notFound, wrap } from "../errors.ts";
import { configWithAnnotations, NS, type SandboxView } from "../sandbox/index.ts";
import type { StoredRecord } from "../store/index.ts";
import { readInRoot, secureJoin } from "../sys/securejoin.ts";
import { writeBundle } from "../oci/index.ts";
import { newId } from "../util/id.ts";
import { Undo } from "../util/undo.ts";
import type { ContainerDeps, PodIdmap } from "./deps.ts";
import { addHooks } from "./hooks.ts";
import { addNodeFiles } from "./node-files.ts";
import type { ContainerMeta, ContainerRunState } from "./record.ts";
import { cdiRequests } from "./spec/cdi.ts";
import { buildContainerSpec } from "./spec/index.ts";
import type { NamespaceRef, PodNamespaces } from "./spec/types.ts";
import { traceAttrs, traced } from "../log/trace.ts";
import { checkMappedUser, podIdmap, stageBindMounts } from "./idmap.ts";
import { checkContainerUserns } from "../sandbox/index.ts";

/** What CreateContainer hands the domain. */
export interface CreateInput {
  podSandboxId: string;
  config: ContainerConfig;
  /** The request's sandbox config (or the stored one when the request had none). */
  sandboxConfig: PodSandboxConfig;
  configJson: unknown;
}

/**
 * CreateContainer: reserve the name, resolve the image, mount the root filesystem, build the
 * OCI spec and bundle, and have a monitor run `runtime create`. Every step is undone on failure.
 */
export async function createContainer(
  d: ContainerDeps,
  input: CreateInput,
  targetPid: (id: string) => number | undefined,
  onCreated: (rec: StoredRecord<ContainerMeta, ContainerRunState>) => void,
): Promise<StoredRecord<ContainerMeta, ContainerRunState>> {
  const md = input.config.metadata;
  if (!md?.name) throw invalid("ContainerConfig.Metadata.Name is required");
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(md.name)) throw invalid(`invalid container name "${md.name}"`);
  const ref = input.config.image?.image ?? "";
  if (!ref) throw invalid("ContainerConfig.Image.Image is required");
  const sb = d.sandboxes.forNewContainer(input.podSandboxId);
  // The container's experimental annotations its pod's runtime handler does not allow are dropped
  // from its spec and its status, as CRI-O does.
  const owner = `${sb.meta.metadata.namespace}/${sb.meta.metadata.name}/${md.name}`;
  const config: ContainerConfig = { ...input.config, annotations: d.sandboxes.allowedAnnotations(sb.meta.runtimeHandler, input.config.annotations, owner) };
  const logRel = config.logPath;
  if (logRel && (isAbsolute(logRel) || normalize(logRel).startsWith("..")))
    throw invalid(`invalid log path "${logRel}": it must stay inside the pod's log directory`);
  for (const m of config.mounts)
    if (!isAbsolute(m.containerPath) || (m.hostPath && !isAbsolute(m.hostPath)))
      throw invalid(`mount paths must be absolute: "${m.hostPath}" → "${m.containerPath}"`);

  // CDI devices are resolved before anything is made: an unknown one is invalid-argument naming it.
  const cdiDevices = d.cdi.resolve(cdiRequests(config));

  // A container joins its pod's user namespace (or the host's with its pod): nothing else.
  checkContainerUserns(sb.meta.userns, config.linux?.securityContext?.namespaceOptions);
  const idmap = podIdmap(sb);
  const pod = sb.meta.metadata;
  const name = `k8s_${md.name}_${pod.name}_${pod.namespace}_${pod.uid}_${md.attempt}`;
  const id = newId();
  const log = d.log.withTag("container");
  const settings = d.settings();
  await using undo = new Undo(log);
  d.names.reserve(name, id);
  undo.defer("release name", () => d.names.release(name, id));

  const image = await d.images.forCreate(ref);
  if (!image) throw notFound("image", ref);
  // The signature policy again, for this pod's namespace (CRI-O does the same): an image pulled
  // under another namespace's policy is not run where the policy refuses it.
  const policyName = config.image?.userSpecifiedImage || (isImageId(ref) ? image.name : ref);
  if (policyName) await d.images.checkPolicyFor(policyName, sb.meta.metadata.namespace);

  traceAttrs({ "container.id": id, "container.name": name });
  const rootfs = await traced("storage.create_rootfs", () => d.rootfs.create(id, image.layers, idmap)).catch((e) => {
    throw wrap(e, "create root filesystem");
  });
  undo.defer("remove root filesystem", () => d.rootfs.remove(id)); // with the image volumes below
  const volumes = await mountImageVolumes(d, id, config, idmap);
  const bundle = join(d.paths.runroot, "containers", id);
  await mkdir(bundle, { recursive: true, mode: 0o700 });
  undo.defer("remove bundle", () => rm(bundle, { recursive: true, force: true }));

  const logPath = sb.meta.logDirectory && logRel ? join(sb.meta.logDirectory, logRel) : join(settings.logDir, sb.meta.id, `${id}.log`);
  await mkdir(dirname(logPath), { recursive: true, mode: 0o755 });

  const nso = config.linux?.securityContext?.namespaceOptions;
  let targetPidNs: string | undefined;
  if (nso?.pid === NS.TARGET) {
    const pid = targetPid(nso.targetId);
    if (!pid) throw notFound("target container", nso.targetId);
    targetPidNs = `/proc/${pid}/ns/pid`;
  }
  const handler = d.handlers.get(sb.meta.runtimeHandler);
  const created = new Date();
  const built = (() => {
    try {
      return buildContainerSpec({
        id,
        name,
        config,
        sandbox: sandboxInput(sb, input.sandboxConfig),
        image: { config: image.config, id: image.id, name: image.name, userRequested: ref },
        rootfs,
        runDir: bundle,
        logPath,
        imageVolumes: volumes.sources,
        cgroupManager: settings.cgroupManager,
        etcPasswd: readInRoot(rootfs, "/etc/passwd"),
        etcGroup: readInRoot(rootfs, "/etc/group"),
        targetPidNamespace: targetPidNs,
        created: created.toISOString(),
        defaults: {
          ...settings.defaults,
          containerMinMemory: settings.containerMinMemoryByHandler?.[sb.meta.runtimeHandler] ?? settings.defaults.containerMinMemory,
        },
        cdiDevices,
        host: d.host,
        io: d.io,
      });
    } catch (e) {
      throw wrap(e, "build OCI spec");
    }
  })();
  for (const w of built.warnings) log.warn(w, { id });
  try {
    addNodeFiles({
      mounts: (built.spec.mounts ??= []),
      runDir: bundle,
      timezone: settings.timezone,
      defaultMounts: settings.defaultMounts,
      taken: new Set(config.mounts.map((m) => normalize(m.containerPath))),
      readonly: built.spec.root?.readonly ?? false,
    });
  } catch (e) {
    throw wrap(e, "timezone and default mounts");
  }
  if (idmap) checkMappedUser(idmap, built.user);
  const hooked = addHooks(settings.hooksDir ?? [], built.spec, { hasBindMounts: config.mounts.length > 0 }, d.log.withTag("hooks"));
  if (hooked.length > 0) log.debug(`Added OCI hooks ${hooked.join(", ")} to container ${id}`, { id });
  for (const dir of built.mkdirs)
    await mkdir(dir, { recursive: true, mode: 0o755 }).catch((e) => {
      throw wrap(e, `create mount source "${dir}"`);
    });
  for (const f of built.files) {
    await mkdir(dirname(f.path), { recursive: true });
    await writeFile(f.path, f.content, { mode: f.mode });
  }
  if (idmap) {
    // runc binds these into the container; its mount namespace keeps them after they are detached here
    undo.defer("detach idmapped mounts", () => d.idmap?.clear(id));
    const skip = new Set([sb.status.shmPath, ...volumes.sources.values()]);
    await stageBindMounts(d, id, built.spec, idmap, skip, config.mounts).catch((e) => {
      throw wrap(e, "idmapped mounts");
    });
  }
  await writeBundle(bundle, built.spec);

  undo.defer("delete runtime container", async () => {
    await handler.runtime.delete(id, true).catch(() => {});
    await d.monitors.remove(id);
  });
  const { pid } = await traced(
    "runtime.create",
    () =>
      handler.create({
        id,
        bundle,
        logPath,
        terminal: config.tty,
        stdin: config.stdin,
        stdinOnce: config.stdinOnce,
        logSizeMax: settings.logSizeMax,
        timeoutMs: settings.containerCreateTimeoutS * 1000,
        cgroupParent: sb.meta.cgroupParent,
      }),
    { kind: "client", attrs: { "container.id": id, runtime: handler.name } },
  )
    .catch((e) => {
      throw wrap(e, `runtime create with handler "${handler.name}" (${handler.runtime.path})`);
    })
    .finally(() => idmap && d.idmap?.clear(id));

  const meta: ContainerMeta = {
    id,
    name,
    sandboxId: sb.meta.id,
    metadata: { name: md.name, attempt: md.attempt },
    configJson: configWithAnnotations(input.configJson, config.annotations),
    image: { id: image.id, name: image.name, userRequested: ref },
    logPath,
    createdAt: created.getTime(),
    labels: { ...config.labels },
    annotations: { ...config.annotations },
    stopSignal: built.stopSignal,
    user: built.user,
    mounts: config.mounts.map((m, i) => ({
      containerPath: m.containerPath,
      hostPath: m.hostPath,
      readonly: m.readonly,
      propagation: m.propagation,
      selinuxRelabel: m.selinuxRelabel,
      ...(m.image?.image ? { image: m.image.image, imageSubPath: m.imageSubPath || undefined, imageId: volumes.imageIds.get(i) } : {}),
    })),
    tty: config.tty,
    stdin: config.stdin,
    stdinOnce: config.stdinOnce,
    runtimeHandler: sb.meta.runtimeHandler,
    bundle,
    seccomp: built.seccompRef,
  };
  const rec = await d.records.create(id, meta, { state: "created", pid }).catch((e) => {
    throw wrap(e, "write container record");
  });
  onCreated(rec);
  undo.commit();
  log.info(`Created container ${id}: ${pod.namespace}/${pod.name}/${md.name}`, { id });
  return rec;
}

/**
 * Image volumes (CRI Mount.image, KEP-4639): each image must be in the store already (the kubelet
 * pulls it first); its layers are mounted read-only under the container's storage dir, and the
 * mount's source is that dir or the image_sub_path inside it, which must exist.
 */
async function mountImageVolumes(
  d: ContainerDeps,
  id: string,
  config: ContainerConfig,
  idmap: PodIdmap | undefined,
): Promise<{ sources: Map<number, string>; imageIds: Map<number, string> }> {
  const sources = new Map<number, string>();
  const imageIds = new Map<number, string>();
  for (const [i, m] of config.mounts.entries()) {
    const ref = m.image?.image;
    if (!ref) continue; // (image_sub_path without an image, or with host_path too: the spec refuses them)
    const img = await d.images.forCreate(ref);
    if (!img) throw notFound("image", ref);
    const root = await d.rootfs.mountImage(id, i, img.layers, idmap).catch((e) => {
      throw wrap(e, `mount image volume "${ref}" at "${m.containerPath}"`);
    });
    let source = root;
    if (m.imageSubPath) {
      source = secureJoin(root, m.imageSubPath);
      if (!existsSync(source)) throw invalid(`image_sub_path "${m.imageSubPath}" does not exist in image "${ref}"`);
    }
    sources.set(i, source);
    imageIds.set(i, img.id);
  }
  return { sources, imageIds };
}

/** The spec builder's view of a pod. */
export function sandboxInput(sb: SandboxView, config: PodSandboxConfig) {
  const o = sb.meta.namespaceOptions;
  const path = (p: string | undefined): NamespaceRef => (p ? { path: p } : "new");
  const namespaces: PodNamespaces = {
    network: o.network === NS.NODE ? "host" : path(sb.status.namespaces.net),
    ipc: o.ipc === NS.NODE ? "host" : path(sb.status.namespaces.ipc),
    uts: o.network === NS.NODE ? "host" : path(sb.status.namespaces.uts),
    pid: o.pid === NS.NODE ? "host" : o.pid === NS.POD && sb.status.infraPid ? { path: `/proc/${sb.status.infraPid}/ns/pid` } : "new",
  };
  const u = sb.meta.userns;
  if (u && sb.status.namespaces.user) {
    const oci = (maps: typeof u.uids) => maps.map((x) => ({ containerID: x.containerId, hostID: x.hostId, size: x.length }));
    namespaces.user = { path: sb.status.namespaces.user, uidMappings: oci(u.uids), gidMappings: oci(u.gids) };
  }
  return {
    id: sb.meta.id,
    name: sb.meta.name,
    // The pod's annotations as it runs with them (CRI-O: the sandbox's, not the request's): the
    // handler's defaults included, the experimental ones it does not allow left out.
    config: { ...config, annotations: sb.meta.annotations },
    hostname: sb.meta.hostname,
    namespaces,
    shmPath: sb.status.shmPath === "/dev/shm" ? undefined : sb.status.shmPath,
    hostnamePath: sb.status.hostnamePath,
    resolvConfPath: sb.status.resolvConfPath,
    cgroupParent: sb.meta.cgroupParent,
    ips: sb.status.ips,
    runtimeHandler: sb.meta.runtimeHandler,
  };
}

/** An image id or id prefix (sha256:…, or hex) rather than a name. */
function isImageId(ref: string): boolean {
  return /^(sha256:)?[a-f0-9]{12,64}$/.test(ref);
}
