import type { ContainerView } from "./record.ts";

/** ListContainers' filter in domain terms. */
export interface ContainerFilter {
  id?: string;
  state?: "created" | "running" | "exited" | "unknown";
  podSandboxId?: string;
  labelSelector?: Record<string, string>;
}

/** Applies a filter: id prefix, state, pod (id prefix), every selector label equal. Infra containers are never listed. */
export function filterContainers(all: Iterable<ContainerView>, f: ContainerFilter | undefined): ContainerView[] {
  const out: ContainerView[] = [];
  for (const c of all) {
    if (c.meta.infra) continue;
    if (f?.id && !c.meta.id.startsWith(f.id)) continue;
    if (f?.state && c.status.state !== f.state) continue;
    if (f?.podSandboxId && !c.meta.sandboxId.startsWith(f.podSandboxId)) continue;
    if (f?.labelSelector && !Object.entries(f.labelSelector).every(([k, v]) => c.meta.labels[k] === v)) continue;
    out.push(c);
  }
  return out.sort((a, b) => a.meta.createdAt - b.meta.createdAt);
}
