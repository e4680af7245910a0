import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../store/index.ts";
import { invalid } from "../errors.ts";

/** DNS settings of a pod (CRI DNSConfig). */
export interface DnsConfig {
  servers: string[];
  searches: string[];
  options: string[];
}

/**
 * The pod's resolv.conf: from the DNSConfig when the kubelet gives one, else a copy of the host's
 * (as CRI-O does). Searches are capped as glibc reads them (6 domains, 256 characters).
 */
export async function writeResolvConf(path: string, dns: DnsConfig | undefined, hostResolvConf = "/etc/resolv.conf"): Promise<void> {
  let text: string;
  if (dns && (dns.servers.length || dns.searches.length || dns.options.length)) {
    for (const s of dns.servers) if (!/^[0-9a-fA-F.:%a-z]+$/.test(s)) throw invalid(`invalid DNS server "${s}"`);
    for (const s of [...dns.searches, ...dns.options]) if (/[\s\n]/.test(s)) throw invalid(`invalid DNS search or option "${s}"`);
    const lines: string[] = [];
    if (dns.searches.length) lines.push(`search ${dns.searches.join(" ")}`);
    for (const s of dns.servers) lines.push(`nameserver ${s}`);
    if (dns.options.length) lines.push(`options ${dns.options.join(" ")}`);
    text = lines.join("\n") + "\n";
  } else {
    text = await readFile(hostResolvConf, "utf8").catch(() => "");
  }
  await writeFileAtomic(path, text, 0o644);
}

/** The pod's /etc/hostname file. */
export async function writeHostname(path: string, hostname: string): Promise<void> {
  await writeFileAtomic(path, hostname + "\n", 0o644);
}

/** The hostname a pod gets: the config's, else the pod name (truncated to 63 characters). */
export function podHostname(configured: string, podName: string): string {
  const h = configured || podName;
  return h.length > 63 ? h.slice(0, 63) : h;
}
