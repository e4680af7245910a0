//   CreateContainer ─▶ CREATED ─StartContainer─▶ RUNNING ─exit / StopContainer─▶ EXITED
//   remove: allowed in every state; a RUNNING container is force-stopped first (api.proto).
//   stop:   a no-op unless RUNNING or UNKNOWN (idempotent, never an error).
//   UNKNOWN = record loaded but runtime state unreadable; stop and remove still work.
//   An exit noticed while CREATED (the process ran before start returned) wins over RUNNING.

/** Container states. */
export type ContainerState = "created" | "running" | "exited" | "unknown";

/** Guards of the container state machine. */
export const can = {
  start: (s: ContainerState) => s === "created",
  exec: (s: ContainerState) => s === "running",
  signal: (s: ContainerState) => s === "running" || s === "unknown",
  update: (s: ContainerState) => s === "running" || s === "created",
  reopenLog: (s: ContainerState) => s === "running",
};
