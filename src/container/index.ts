/** Containers: the public surface other folders import. */
export { ContainerService } from "./service.ts";
export { CdiRegistry } from "./cdi-registry.ts";
export { IdmapStaging } from "./idmap.ts";
export type { ContainerDeps, ExitInfo, ImageForCreate, ImagePort, RootfsPort, ContainerSettings } from "./deps.ts";
export type { ContainerMeta, ContainerRunState, ContainerView } from "./record.ts";
export { exitReason } from "./record.ts";
export type { ContainerFilter } from "./list.ts";
export type { ExecProcess } from "./exec.ts";
export type { CreateInput } from "./create.ts";
