// Shared by the network-daemon*.test.ts files and bench/ (lib.ts, runp.ts, stats.ts): a private
// CNI network (the shipped default conflist with its bridge, subnets and IPAM data dir made unique
// to the run), a private plugin directory of symlinks to /usr/lib/cni (so a test can break one
// plugin), and leak checks that only look at what this run made (other e2e files change iptables
// at the same time).
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { run, runRaw } from "../../src/sys/exec.ts";

export const CNI_BIN = "/usr/lib/cni";
/** Root with the containernetworking plugins installed: the daemon network tests can run. */
export const canRun = process.getuid?.() === 0 && existsSync(join(CNI_BIN, "bridge")) && existsSync(join(CNI_BIN, "portmap"));

const rand = (n: number) => Math.floor(Math.random() * n);
export const hex = (n: number) => Array.from({ length: n }, () => rand(16).toString(16)).join("");

/** A network unique to this run: bridge name (≤ 15 chars), subnets, IPAM data dir, network name. */
export interface TestNet {
  name: string;
  bridge: string;
  subnet4: string;
  subnet6: string;
  /** host-local's dataDir (under /run: tmpfs, like the real default's /var/lib/cni/networks). */
  ipamDir: string;
  /** The conflist text: contrib/cni/10-crio-bridge.conflist with only the above changed. */
  conflist: string;
}

/** The shipped default conflist, copied with the bridge, network name, subnets and IPAM dir made unique. */
export function testNet(o: { dualStack?: boolean } = {}): TestNet {
  const tag = hex(6);
  const name = `crio-nd-${tag}`;
  const bridge = `crn${tag}`;
  const subnet4 = `10.${100 + rand(100)}.${rand(256)}.0/24`;
  const subnet6 = `fd${hex(2)}:${hex(4)}:${hex(4)}::/64`;
  const ipamDir = `/run/crn-ipam-${tag}`;
  const c = JSON.parse(readFileSync(join(import.meta.dir, "../../contrib/cni/10-crio-bridge.conflist"), "utf8"));
  c.name = name;
  c.plugins[0].bridge = bridge;
  c.plugins[0].ipam.ranges = o.dualStack === false ? [[{ subnet: subnet4 }]] : [[{ subnet: subnet4 }], [{ subnet: subnet6 }]];
  if (o.dualStack === false) c.plugins[0].ipam.routes = [{ dst: "0.0.0.0/0" }];
  c.plugins[0].ipam.dataDir = ipamDir;
  return { name, bridge, subnet4, subnet6, ipamDir, conflist: JSON.stringify(c, null, 2) };
}

/** A plugin directory of symlinks to /usr/lib/cni, where one plugin can be replaced. */
export function pluginDir(dir: string, names = ["bridge", "host-local", "portmap", "loopback"]) {
  mkdirSync(dir, { recursive: true });
  for (const n of names) symlinkSync(join(CNI_BIN, n), join(dir, n));
  const replace = (n: string, script: string) => {
    rmSync(join(dir, n), { force: true });
    writeFileSync(join(dir, n), script);
    chmodSync(join(dir, n), 0o755);
  };
  return {
    dir,
    /** Replaces `n` with a script that fails every command with a CNI error. */
    break(n: string) {
      replace(n, `#!/bin/sh\ncat >/dev/null\necho '{"cniVersion":"1.0.0","code":999,"msg":"${n} is broken","details":"fault injected by the test"}'\nexit 1\n`);
    },
    /** Replaces `n` with a script whose ADD fails with a CNI error; other commands run the real plugin. */
    breakAdd(n: string) {
      replace(
        n,
        `#!/bin/sh\nif [ "$CNI_COMMAND" = ADD ]; then\n  cat >/dev/null\n  echo '{"cniVersion":"1.0.0","code":999,"msg":"${n} ADD is broken","details":"fault injected by the test"}'\n  exit 1\nfi\nexec ${join(CNI_BIN, n)}\n`,
      );
    },
    /**
     * Replaces `n` with a wrapper whose ADD writes its pid to `marker`, then waits (short sleeps, at
     * most 60 s) until `release` exists before running the real plugin; other commands run it at once.
     */
    slow(n: string, marker: string, release: string) {
      replace(
        n,
        `#!/bin/sh\nif [ "$CNI_COMMAND" = ADD ]; then\n  echo $$ > '${marker}'\n  i=0; while [ ! -e '${release}' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\nfi\nexec ${join(CNI_BIN, n)}\n`,
      );
    },
    /** Puts the real plugin back. */
    fix(n: string) {
      rmSync(join(dir, n), { force: true });
      symlinkSync(join(CNI_BIN, n), join(dir, n));
    },
  };
}

/** iptables-save (or ip6tables-save) lines without comments and counters. */
export async function tableLines(cmd: "iptables-save" | "ip6tables-save"): Promise<string[]> {
  const out = await run([cmd]);
  return out
    .split("\n")
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => l.replace(/\[\d+:\d+\]/g, ""));
}

/** Rules (v4 and v6) that mention any of `needles` (pod ids, the network name, the bridge, a host port). */
export async function rulesMentioning(needles: string[]): Promise<string[]> {
  const lines = [...(await tableLines("iptables-save")), ...(await tableLines("ip6tables-save"))];
  return lines.filter((l) => needles.some((n) => l.includes(n)));
}

/** The per-pod masquerade chains the bridge plugin made for `ids` (CNI-<hash>, commented with the id). */
export async function masqChainsOf(net: TestNet, ids: string[]): Promise<string[]> {
  const lines = [...(await tableLines("iptables-save")), ...(await tableLines("ip6tables-save"))];
  return lines.filter((l) => ids.some((id) => l.includes(`id: \\"${id}\\"`) || l.includes(`id: "${id}"`)) || l.includes(`name: \\"${net.name}\\"`));
}

/** Interfaces enslaved to the test bridge (the host ends of pod veths). */
export async function vethsOn(bridge: string): Promise<string[]> {
  const r = await runRaw(["ip", "-o", "link", "show", "master", bridge]);
  return r.code === 0 ? r.stdout.split("\n").filter(Boolean) : [];
}

/** host-local's reservations (one file per address) in the network's data dir. */
export function ipamReservations(net: TestNet): string[] {
  const d = join(net.ipamDir, net.name);
  return existsSync(d) ? readdirSync(d).filter((f) => isIP(f)) : [];
}

/** Mount points under a path (pinned namespaces, shm). */
export function mountsUnder(path: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m.startsWith(path + "/"));
}

/** Files under <runroot>/ns/<kind>ns/ (pinned namespace files). */
export function pinFiles(runroot: string): string[] {
  const out: string[] = [];
  for (const k of ["net", "ipc", "uts"]) {
    const d = join(runroot, "ns", `${k}ns`);
    if (existsSync(d)) for (const f of readdirSync(d)) out.push(`${k}/${f}`);
  }
  return out;
}

/**
 * Removes what a run leaves on the host after its daemon is gone: the bridge and the IPAM dir.
 * The per-pod chains go with each pod's DEL (the tests check that). portmap's shared top-level
 * chains (CNI-HOSTPORT-DNAT/-MASQ/-SETMARK) are left, as on any CNI node: other e2e files use them
 * at the same time, and deleting them under a concurrent portmap ADD makes that ADD fail.
 */
export async function cleanupNet(net: TestNet, _sharedChainsBefore?: { v4: boolean; v6: boolean }): Promise<void> {
  await runRaw(["ip", "link", "del", net.bridge]);
  rmSync(net.ipamDir, { recursive: true, force: true });
}

/** Whether portmap's shared chains exist now (v4, v6). Kept for callers; cleanupNet no longer needs it. */
export async function sharedChains(): Promise<{ v4: boolean; v6: boolean }> {
  const has = (lines: string[]) => lines.some((l) => l.startsWith(":CNI-HOSTPORT-DNAT"));
  return { v4: has(await tableLines("iptables-save")), v6: has(await tableLines("ip6tables-save")) };
}
