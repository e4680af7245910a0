import type { IdIndex, StoredRecord } from "../store/index.ts";
import type { KeyedSerial } from "../util/wait.ts";
import type { ContainerDeps } from "./deps.ts";
import type { ExitWaiters } from "./exit.ts";
import type { ContainerMeta, ContainerRunState, ContainerView } from "./record.ts";

/** A container's stored record. */
export type Rec = StoredRecord<ContainerMeta, ContainerRunState>;

/** The lifecycle changes the container service announces (GetContainerEvents, metrics). */
export type ContainerChange = "created" | "started" | "stopped" | "deleted";

/**
 * What the verb files share, held by ContainerService: its dependencies, the index of records,
 * the per-container queue verbs run in, the waiters for exits, and the change announcer.
 */
export interface ContainerCtx {
  readonly d: ContainerDeps;
  readonly index: IdIndex<Rec>;
  readonly serial: KeyedSerial;
  readonly exits: ExitWaiters;
  emit(kind: ContainerChange, c: ContainerView): void;
}
