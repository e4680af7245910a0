import type { HandlerAnnotations } from "./deps.ts";

/**
 * The annotations a pod runs with: its runtime handler's default_annotations, then the request's
 * own annotations, which win over a default of the same key. The request's experimental
 * annotations the handler does not allow (allowed_annotations) are dropped first; the defaults
 * are the operator's and are not filtered (CRI-O's runPodSandbox: FilterDisallowedAnnotations on
 * the request, then RuntimeDefaultAnnotations overridden by it).
 */
export function podAnnotations(
  asked: Record<string, string>,
  policy: HandlerAnnotations | undefined,
): { annotations: Record<string, string>; dropped: string[] } {
  const { kept, dropped } = withoutDisallowed(asked, policy?.disallowed ?? []);
  return { annotations: { ...policy?.defaults, ...kept }, dropped };
}

/**
 * `annotations` without those starting with a disallowed prefix (CRI-O matches by prefix, so
 * per-container forms such as io.kubernetes.cri-o.UnifiedCgroup.<name> go too).
 */
export function withoutDisallowed(annotations: Record<string, string>, disallowed: readonly string[]): { kept: Record<string, string>; dropped: string[] } {
  const kept: Record<string, string> = {};
  const dropped: string[] = [];
  for (const [k, v] of Object.entries(annotations)) {
    if (disallowed.some((d) => k.startsWith(d))) dropped.push(k);
    else kept[k] = v;
  }
  return { kept, dropped };
}

/**
 * A config as protobuf JSON (what verbose status shows as "config") with the annotations it runs
 * with in place of the request's: the handler's defaults in, the disallowed ones out.
 */
export function configWithAnnotations(configJson: unknown, annotations: Record<string, string>): unknown {
  if (!configJson || typeof configJson !== "object" || Array.isArray(configJson)) return configJson;
  const { annotations: _asked, ...rest } = configJson as Record<string, unknown>;
  return Object.keys(annotations).length > 0 ? { ...rest, annotations } : rest;
}
