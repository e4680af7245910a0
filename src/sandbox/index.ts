/** Pod sandboxes: the public surface other folders import. */
export { SandboxService } from "./service.ts";
export type { SandboxDeps, NetworkPort, InfraPort, PodContainers, SandboxSettings, PodNet, HandlerAnnotations } from "./deps.ts";
export { hostNamespaces, hostShm } from "./deps.ts";
export type { SandboxMeta, SandboxState, SandboxView } from "./record.ts";
export { NS } from "./record.ts";
export { configWithAnnotations } from "./annotations.ts";
export type { SandboxFilter } from "./list.ts";
export type { RunSandboxInput } from "./run.ts";
export { can as sandboxCan } from "./state.ts";
export { checkContainerUserns, podUserns, type PodUserns } from "./userns.ts";
