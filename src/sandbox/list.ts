import type { SandboxView } from "./record.ts";

/** ListPodSandbox's filter, in domain terms. */
export interface SandboxFilter {
  id?: string;
  state?: "ready" | "notready";
  labelSelector?: Record<string, string>;
}

/** Applies a filter: id prefix, state, every selector label equal. */
export function filterSandboxes(all: Iterable<SandboxView>, f: SandboxFilter | undefined): SandboxView[] {
  const out: SandboxView[] = [];
  for (const s of all) {
    if (f?.id && !s.meta.id.startsWith(f.id)) continue;
    if (f?.state && s.status.state !== f.state) continue;
    if (f?.labelSelector && !Object.entries(f.labelSelector).every(([k, v]) => s.meta.labels[k] === v)) continue;
    out.push(s);
  }
  return out.sort((a, b) => a.meta.createdAt - b.meta.createdAt);
}
