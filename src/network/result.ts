/**
 * CNI ADD results (CNI spec, section 5) for every result version: 0.1.0/0.2.0 (`ip4`/`ip6`),
 * 0.3.x/0.4.0 (`ips[].version`) and 1.x (no version; the family comes from the address).
 */

/** A pod's network as the runtime reports it. */
export interface NetworkResult {
  /** The result's protocol version. */
  cniVersion: string;
  /** Pod IPs without prefix length: IPv4 first (the primary pod IP), then IPv6; no duplicates. */
  ips: string[];
  interfaces: Array<{ name: string; mac?: string; sandbox?: string }>;
  routes: Array<{ dst: string; gw?: string }>;
  dns: { nameservers: string[]; domain?: string; search: string[]; options: string[] };
}

/** Parses a plugin's ADD result (any version) into a NetworkResult; tolerant of missing sections. */
export function parseResult(raw: unknown, fallbackVersion: string): NetworkResult {
  const r = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  const cniVersion = typeof r.cniVersion === "string" ? r.cniVersion : fallbackVersion;
  const interfaces: NetworkResult["interfaces"] = Array.isArray(r.interfaces)
    ? r.interfaces.filter(isObj).map((i) => ({
        name: String(i.name ?? ""),
        ...(typeof i.mac === "string" && i.mac ? { mac: i.mac } : {}),
        ...(typeof i.sandbox === "string" && i.sandbox ? { sandbox: i.sandbox } : {}),
      }))
    : [];
  const v4: string[] = [];
  const v6: string[] = [];
  const routes: NetworkResult["routes"] = [];
  const add = (cidr: unknown) => {
    if (typeof cidr !== "string" || !cidr) return;
    const ip = cidr.split("/")[0]!;
    const list = ip.includes(":") ? v6 : v4;
    if (!list.includes(ip)) list.push(ip);
  };
  if (Array.isArray(r.ips)) {
    for (const c of r.ips.filter(isObj)) {
      // An address on a host-side interface (one with no sandbox) is not a pod IP.
      const idx = typeof c.interface === "number" ? c.interface : undefined;
      const itf = idx !== undefined ? interfaces[idx] : undefined;
      if (itf && !itf.sandbox) continue;
      add(c.address);
    }
  }
  for (const k of ["ip4", "ip6"] as const) {
    const legacy = r[k];
    if (!isObj(legacy)) continue;
    add(legacy.ip);
    if (Array.isArray(legacy.routes)) for (const rt of legacy.routes.filter(isObj)) pushRoute(routes, rt);
  }
  if (Array.isArray(r.routes)) for (const rt of r.routes.filter(isObj)) pushRoute(routes, rt);
  const d = isObj(r.dns) ? r.dns : {};
  return {
    cniVersion,
    ips: [...v4, ...v6],
    interfaces,
    routes,
    dns: {
      nameservers: strings(d.nameservers),
      ...(typeof d.domain === "string" && d.domain ? { domain: d.domain } : {}),
      search: strings(d.search),
      options: strings(d.options),
    },
  };
}

// --- internal ---

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

function pushRoute(routes: NetworkResult["routes"], rt: Record<string, unknown>): void {
  if (typeof rt.dst !== "string") return;
  routes.push(typeof rt.gw === "string" && rt.gw ? { dst: rt.dst, gw: rt.gw } : { dst: rt.dst });
}
