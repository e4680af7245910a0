export { StatsService, type StatsDeps, type StatsSettings, type ContainerStatsFilter, type PodStatsFilter } from "./service.ts";
export { ContainerEvents, type ContainerEvent, type ContainerEventKind, type ContainerEventsOptions, type EventSources } from "./events.ts";
export { METRIC_GROUPS, resolveGroups, descriptorsFor, type MetricGroup } from "./metrics.ts";
export { netDevReader, parseNetDev, type NetDevReader } from "./netdev.ts";
export type * from "./types.ts";
