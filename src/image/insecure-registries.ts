/**
 * crio.conf `insecure_registries` (CRI-O 1.26's `--insecure-registry`): registries contacted
 * without TLS verification (and over plain HTTP when HTTPS fails), as if registries.conf marked
 * them `insecure`. An entry is `HOST[:PORT]` (matched against the reference's domain exactly) or
 * a CIDR (matched against the host's addresses: the host itself when it is an IP, else what it
 * resolves to), as CRI-O's isSecureIndex does.
 */
import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

/** Whether `domain` (a reference's "host[:port]") is insecure by the entries. */
export async function insecureByConfig(entries: readonly string[], domain: string): Promise<boolean> {
  if (entries.length === 0) return false;
  if (entries.includes(domain)) return true;
  const cidrs = entries.filter((e) => e.includes("/"));
  if (cidrs.length === 0) return false;
  const host = domain.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
  let addrs: string[];
  if (isIP(host)) addrs = [host];
  else {
    try {
      addrs = (await lookup(host, { all: true })).map((a) => a.address);
    } catch {
      return false; // unresolvable (or behind a proxy): secure, as in CRI-O
    }
  }
  const list = new BlockList();
  for (const c of cidrs) {
    const [net, bits] = c.split("/") as [string, string];
    list.addSubnet(net, Number(bits), isIP(net) === 6 ? "ipv6" : "ipv4");
  }
  return addrs.some((a) => list.check(a, isIP(a) === 6 ? "ipv6" : "ipv4"));
}
