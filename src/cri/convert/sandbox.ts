import type { MessageInitShape } from "@bufbuild/protobuf";
import type { PodSandboxSchema, PodSandboxStatusResponseSchema } from "../../gen/runtime/v1/api_pb.ts";
import { PodSandboxState } from "../../gen/runtime/v1/api_codec.ts";
import type { SandboxView } from "../../sandbox/index.ts";
import { toNanos } from "./time.ts";

const state = (s: SandboxView) => (s.status.state === "ready" ? PodSandboxState.SANDBOX_READY : PodSandboxState.SANDBOX_NOTREADY);

/** A pod in ListPodSandbox. */
export function toPodSandbox(s: SandboxView): MessageInitShape<typeof PodSandboxSchema> {
  return {
    id: s.meta.id,
    metadata: s.meta.metadata,
    state: state(s),
    createdAt: toNanos(s.meta.createdAt),
    labels: s.meta.labels,
    annotations: s.meta.annotations,
    runtimeHandler: s.meta.runtimeHandler,
  };
}

/** PodSandboxStatusResponse, with CRI-O-style verbose info. */
export function toPodSandboxStatus(s: SandboxView, verbose: boolean): MessageInitShape<typeof PodSandboxStatusResponseSchema> {
  const [ip, ...more] = s.status.ips;
  const o = s.meta.namespaceOptions;
  return {
    status: {
      id: s.meta.id,
      metadata: s.meta.metadata,
      state: state(s),
      createdAt: toNanos(s.meta.createdAt),
      network: { ip: ip ?? "", additionalIps: more.map((x) => ({ ip: x })) },
      linux: { namespaces: { options: { network: o.network, pid: o.pid, ipc: o.ipc, targetId: o.targetId } } },
      labels: s.meta.labels,
      annotations: s.meta.annotations,
      runtimeHandler: s.meta.runtimeHandler,
    },
    info: verbose
      ? {
          info: JSON.stringify({
            id: s.meta.id,
            name: s.meta.name,
            image: "",
            pid: s.status.infraPid ?? 0,
            infraContainerId: s.status.infraContainerId ?? "",
            namespaces: s.status.namespaces,
            shmPath: s.status.shmPath,
            resolvConfPath: s.status.resolvConfPath,
            hostnamePath: s.status.hostnamePath,
            networkTeardownPending: s.status.networkPending,
            config: s.meta.configJson,
          }),
        }
      : {},
  };
}
