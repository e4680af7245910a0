/** Prometheus metrics with CRI-O's names: the public surface other folders import. */
export { CrioMetrics, COLLECTORS, METRIC_PREFIX, selectCollectors, sizeBucket, type CollectorKey } from "./crio-metrics.ts";
export { instrumentPulls, pullErrorLabel, PullCounter, type Pullable } from "./image-pulls.ts";
export { serveMetrics, removeUnusedSocket, type MetricsServer, type MetricsServerOptions } from "./server.ts";
export { Registry, Counter, Gauge, Summary, Histogram, FuncMetric, EXPOSITION_CONTENT_TYPE, type Labels, type Collector } from "./registry.ts";
