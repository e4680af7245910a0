//   RunPodSandbox ─▶ READY ─StopPodSandbox─▶ NOTREADY ─RemovePodSandbox─▶ (gone)
//   A failed RunPodSandbox leaves nothing: every step is undone.
//   Stop is idempotent (a NOTREADY pod is stopped again: containers, infra, network retried).
//   Remove is allowed in every state and stops a READY pod first (api.proto).
//   After a reboot (runroot empty: namespaces and shm gone) pods come back NOTREADY.

/** Pod sandbox states. */
export type PodState = "ready" | "notready";

/** Guards of the pod state machine. */
export const can = {
  /** Containers may be created only in a ready pod. */
  createContainer: (s: PodState) => s === "ready",
  /** Port forwarding reaches into a ready pod only (its network namespace is up). */
  portForward: (s: PodState) => s === "ready",
};
