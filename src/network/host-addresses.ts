/**
 * The node's own addresses, reported as the pod IPs of host-network pods (CRI-O: the first
 * global IPv4 and IPv6 address of the interface that holds the default route of each family).
 */
import { networkInterfaces } from "node:os";
import { runRaw } from "../sys/exec.ts";
import { requireTools } from "../sys/namespaces.ts";

/** Node IPs, IPv4 first then IPv6; falls back to any non-loopback interface when there is no default route. */
export async function hostAddresses(): Promise<string[]> {
  const ifs = networkInterfaces();
  const out: string[] = [];
  for (const family of ["IPv4", "IPv6"] as const) {
    const dev = await defaultRouteDevice(family === "IPv4" ? "-4" : "-6");
    const pick = (name: string) => (ifs[name] ?? []).find((a) => a.family === family && !a.internal && isGlobal(a.address))?.address;
    let ip = dev ? pick(dev) : undefined;
    if (!ip) for (const name of Object.keys(ifs).sort()) if ((ip = pick(name))) break;
    if (ip) out.push(ip);
  }
  return out;
}

// --- internal ---

/** The device of the main table's default route (`ip -j route show default`), if any. */
async function defaultRouteDevice(family: "-4" | "-6"): Promise<string | undefined> {
  try {
    const { ip } = requireTools(["ip"]);
    const r = await runRaw([ip!, "-j", family, "route", "show", "default"], { timeoutMs: 5_000 });
    if (r.code !== 0) return undefined;
    const routes = JSON.parse(r.stdout || "[]") as Array<{ dev?: string; metric?: number }>;
    routes.sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0));
    return routes.find((x) => x.dev)?.dev;
  } catch {
    return undefined;
  }
}

function isGlobal(ip: string): boolean {
  const l = ip.toLowerCase();
  return !l.startsWith("169.254.") && !l.startsWith("fe80:") && !l.startsWith("127.") && l !== "::1";
}
