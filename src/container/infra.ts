import { mkdir, rm } from "node:fs/promises";
import { writeBundle, type Spec } from "../oci/index.ts";
import { dirname, join } from "node:path";
import type { PodSandboxConfig } from "../gen/runtime/v1/api_pb.ts";
import { wrap } from "../errors.ts";
import type { SandboxView } from "../sandbox/index.ts";
import type { StoredRecord } from "../store/index.ts";
import { Undo } from "../util/undo.ts";
import { sandboxInput } from "./create.ts";
import type { ContainerDeps } from "./deps.ts";
import type { ContainerMeta, ContainerRunState } from "./record.ts";
import { podIdmap, stageBindMounts } from "./idmap.ts";
import { buildInfraSpec } from "./spec/infra.ts";

/**
 * Creates and starts a pod's infra (pause) container under a monitor: the pause image (pulled
 * first when missing, with pause_image_auth_file), its own root filesystem, the infra spec, then
 * `runtime create` and `start`. It has the sandbox's id and is recorded as an infra container.
 */
export async function startInfra(
  d: ContainerDeps,
  sb: SandboxView,
  config: PodSandboxConfig,
  signal: AbortSignal | undefined,
  onCreated: (rec: StoredRecord<ContainerMeta, ContainerRunState>) => void,
): Promise<{ containerId: string; pid: number }> {
  const st = d.settings();
  const id = sb.meta.id;
  const log = d.log.withTag("sandbox");
  await using undo = new Undo(log);
  const image = await d.images.ensure(st.pauseImage, st.pauseImageAuthFile, signal).catch((e) => {
    throw wrap(e, `pause image "${st.pauseImage}"`);
  });
  const idmap = podIdmap(sb);
  const rootfs = await d.rootfs.create(id, image.layers, idmap);
  undo.defer("remove infra root filesystem", () => d.rootfs.remove(id));
  const bundle = join(d.paths.runroot, "containers", id);
  await mkdir(bundle, { recursive: true, mode: 0o700 });
  undo.defer("remove infra bundle", () => rm(bundle, { recursive: true, force: true }));
  const pod = sandboxInput(sb, config);
  const built = buildInfraSpec({
    id,
    name: sb.meta.name,
    config,
    image: { config: image.config, id: image.id, name: image.name, userRequested: st.pauseImage },
    pauseCommand: st.pauseCommand,
    rootfs,
    hostname: sb.meta.hostname,
    namespaces: pod.namespaces,
    shmPath: pod.shmPath,
    hostnamePath: pod.hostnamePath,
    resolvConfPath: pod.resolvConfPath,
    cgroupParent: sb.meta.cgroupParent,
    cgroupManager: st.cgroupManager,
    cpuset: st.infraCtrCpuset || undefined,
    created: new Date(sb.meta.createdAt).toISOString(),
    runtimeHandler: sb.meta.runtimeHandler,
    defaults: st.defaults,
    host: d.host,
    io: d.io,
  });
  for (const w of built.warnings) log.warn(w, { id });
  if (idmap) {
    undo.defer("detach idmapped mounts", () => d.idmap?.clear(id));
    await stageBindMounts(d, id, built.spec as Spec, idmap, new Set([sb.status.shmPath]), []).catch((e) => {
      throw wrap(e, "idmapped mounts");
    });
  }
  await writeBundle(bundle, built.spec as Spec);
  const handler = d.handlers.get(sb.meta.runtimeHandler);
  undo.defer("delete infra container", async () => {
    await handler.runtime.delete(id, true).catch(() => {});
    await d.monitors.remove(id);
  });
  const logPath = join(d.paths.runroot, "containers", id, "infra.log");
  await mkdir(dirname(logPath), { recursive: true });
  const { pid } = await handler
    .create({
      id,
      bundle,
      logPath,
      terminal: false,
      stdin: false,
      stdinOnce: false,
      logSizeMax: 1 << 20,
      timeoutMs: st.containerCreateTimeoutS * 1000,
      cgroupParent: sb.meta.cgroupParent,
    })
    .finally(() => idmap && d.idmap?.clear(id));
  await handler.runtime.start(id);
  const meta: ContainerMeta = {
    id,
    name: sb.meta.name,
    sandboxId: id,
    metadata: { name: "POD", attempt: sb.meta.metadata.attempt },
    configJson: null,
    image: { id: image.id, name: image.name, userRequested: st.pauseImage },
    logPath,
    createdAt: Date.now(),
    labels: {},
    annotations: {},
    stopSignal: built.stopSignal,
    user: { uid: 0, gid: 0, additionalGids: [] },
    mounts: [],
    tty: false,
    stdin: false,
    stdinOnce: false,
    runtimeHandler: sb.meta.runtimeHandler,
    bundle,
    seccomp: built.seccompRef,
    infra: true,
  };
  const rec = await d.records.create(id, meta, { state: "running", pid, startedAt: Date.now() });
  onCreated(rec);
  undo.commit();
  return { containerId: id, pid };
}
