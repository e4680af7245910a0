import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ContainerSchema, ContainerStatusResponseSchema } from "../../gen/runtime/v1/api_pb.ts";
import { ContainerState, LinuxContainerResourcesCodec } from "../../gen/runtime/v1/api_codec.ts";
import { exitReason, type ContainerView } from "../../container/index.ts";
import { toNanos } from "./time.ts";

const STATE: Record<string, ContainerState> = {
  created: ContainerState.CONTAINER_CREATED,
  running: ContainerState.CONTAINER_RUNNING,
  exited: ContainerState.CONTAINER_EXITED,
  unknown: ContainerState.CONTAINER_UNKNOWN,
};

/** A container in ListContainers. */
export function toContainer(c: ContainerView): MessageInitShape<typeof ContainerSchema> {
  return {
    id: c.meta.id,
    podSandboxId: c.meta.sandboxId,
    metadata: c.meta.metadata,
    image: { image: c.meta.image.userRequested },
    imageRef: c.meta.image.id,
    imageId: c.meta.image.id,
    state: STATE[c.status.state],
    createdAt: toNanos(c.meta.createdAt),
    labels: c.meta.labels,
    annotations: c.meta.annotations,
  };
}

/** ContainerStatusResponse, with CRI-O-style verbose info. */
export function toContainerStatus(c: ContainerView, verbose: boolean): MessageInitShape<typeof ContainerStatusResponseSchema> {
  const s = c.status;
  return {
    status: {
      id: c.meta.id,
      metadata: c.meta.metadata,
      state: STATE[s.state],
      createdAt: toNanos(c.meta.createdAt),
      startedAt: toNanos(s.startedAt),
      finishedAt: toNanos(s.finishedAt),
      exitCode: s.exitCode ?? 0,
      image: { image: c.meta.image.userRequested },
      imageRef: c.meta.image.id,
      imageId: c.meta.image.id,
      reason: exitReason(s),
      message: s.message ?? "",
      labels: c.meta.labels,
      annotations: c.meta.annotations,
      mounts: c.meta.mounts.map(({ image, imageSubPath, imageId: _i, ...m }) => (image ? { ...m, image: { image }, imageSubPath: imageSubPath ?? "" } : m)),
      logPath: c.meta.logPath,
      user: { linux: { uid: BigInt(c.meta.user.uid), gid: BigInt(c.meta.user.gid), supplementalGroups: c.meta.user.additionalGids.map((g) => BigInt(g)) } },
      resources: resourcesOf(c),
    },
    info: verbose
      ? {
          info: JSON.stringify({
            sandboxID: c.meta.sandboxId,
            pid: s.state === "running" ? (s.pid ?? 0) : 0,
            privileged: false,
            bundle: c.meta.bundle,
            seccomp: c.meta.seccomp,
            runtimeHandler: c.meta.runtimeHandler,
            config: c.meta.configJson,
          }),
        }
      : {},
  };
}

/** The container's resources: the last UpdateContainerResources, else the create request's (protobuf JSON). */
function resourcesOf(c: ContainerView) {
  const json = c.status.resources ?? (c.meta.configJson as { linux?: { resources?: unknown } } | null)?.linux?.resources;
  if (!json || typeof json !== "object") return undefined;
  try {
    return { linux: LinuxContainerResourcesCodec.fromJson(json, { ignoreUnknownFields: true }) };
  } catch {
    return undefined;
  }
}
