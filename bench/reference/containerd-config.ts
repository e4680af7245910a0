/**
 * The files the reference containerd runs with (see containerd.ts): its config.toml, the registry's
 * hosts.toml, a bridge CNI conflist of its own, and the shell script that starts it in a private
 * mount namespace. Pure text: nothing here touches the machine.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";

/**
 * A bridge CNI conflist with a bridge name and a private /24 of its own (no masquerade, so no
 * iptables rules; host-local leases kept in `ipamDir`). Returns the file text and the bridge name.
 */
export function bridgeConflist(ipamDir: string): { text: string; bridge: string } {
  const tag = randomBytes(3).toString("hex");
  const bridge = `ctdbr${tag}`;
  const subnet = `10.${200 + (parseInt(tag.slice(0, 2), 16) % 50)}.${parseInt(tag.slice(2, 4), 16)}.0/24`;
  const text = JSON.stringify({
    cniVersion: "1.0.0",
    name: `ctd-bench-${tag}`,
    plugins: [
      // containerd adds the loopback network itself
      { type: "bridge", bridge, isGateway: true, ipMasq: false, hairpinMode: true, ipam: { type: "host-local", ranges: [[{ subnet }]], dataDir: ipamDir } },
    ],
  });
  return { text, bridge };
}

/** The text of containerd's config.toml (version 2) with every path below the temp dir `dir`. */
export function containerdConfig(dir: string, o: { pauseImage: string; cniBinDir?: string; logLevel?: string }, cniConfDir: string): string {
  const s = (x: string) => JSON.stringify(x);
  const cri = `plugins."io.containerd.grpc.v1.cri"`;
  return `version = 2
root = ${s(join(dir, "root"))}
state = ${s(join(dir, "state"))}
plugin_dir = ""

[grpc]
  address = ${s(join(dir, "containerd.sock"))}

[ttrpc]
  address = ${s(join(dir, "containerd.sock.ttrpc"))}

[debug]
  address = ""
  level = ${s(o.logLevel ?? "warn")}

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = ${s(join(dir, "opt"))}
  [${cri}]
    sandbox_image = ${s(o.pauseImage)}
    netns_mounts_under_state_dir = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    disable_apparmor = true
    # This machine refuses a lower oom_score_adj than the caller's (the sandbox oom_score_adj -998 fails).
    restrict_oom_score_adj = true
    [${cri}.containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [${cri}.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [${cri}.containerd.runtimes.runc.options]
          SystemdCgroup = false
          BinaryName = "runc"
          Root = ${s(join(dir, "runc"))}
    [${cri}.cni]
      bin_dir = ${s(o.cniBinDir ?? "/usr/lib/cni")}
      conf_dir = ${s(cniConfDir)}
      max_conf_num = 1
    [${cri}.registry]
      config_path = ${s(join(dir, "certs.d"))}
`;
}

/**
 * The shell script that starts containerd in its own mount namespace. containerd 1.6's shims put
 * their sockets in /run/containerd/s whatever the config says, so /run is shadowed there by an
 * overlay: the host's /run below (read as it is), writes (/run/containerd) going to `upper` in the
 * temp dir. /var/lib is shadowed the same way: libcni keeps its result cache in /var/lib/cni
 * whatever containerd is told. Two mounts, so the wrapper costs tens of ms, not hundreds; the time just before the
 * exec of containerd is written to `execNsFile` (ns since the epoch) for start-up figures.
 */
export function privateRunScript(dir: string, bin: string, configFile: string, sharedDir?: string): string {
  const q = (x: string) => `'${x.replace(/'/g, "'\\''")}'`;
  // With a shared dir the namespace was made with --propagation unchanged: every mount but that
  // peer (and what lies below it) is made private before anything is mounted here.
  const privatize = sharedDir
    ? `awk '{print $5}' /proc/self/mountinfo | while read -r m; do
  case "$m" in ${q(sharedDir)}|${q(sharedDir)}/*) ;; *) mount --make-private "$m" 2>/dev/null || true ;; esac
done
`
    : "";
  return `set -e
${privatize}mkdir -p ${q(join(dir, "run-upper"))} ${q(join(dir, "run-work"))}
mount -n -t overlay overlay -o lowerdir=/run,upperdir=${q(join(dir, "run-upper"))},workdir=${q(join(dir, "run-work"))} /run
mkdir -p ${q(join(dir, "varlib-upper"))} ${q(join(dir, "varlib-work"))}
mount -n -t overlay overlay -o lowerdir=/var/lib,upperdir=${q(join(dir, "varlib-upper"))},workdir=${q(join(dir, "varlib-work"))} /var/lib
mkdir -p -m 0711 /run/containerd
date +%s%N > ${q(join(dir, EXEC_NS_FILE))}
exec ${q(bin)} --config ${q(configFile)}
`;
}

/** The file in the temp dir where the start script notes the time of containerd's exec. */
export const EXEC_NS_FILE = "exec-ns";

/**
 * hosts.toml sending pulls to the loopback registry `host`: plain HTTP, pull and resolve. Written
 * for that host itself and for each upstream it stands in for (containerd keeps the repository
 * path and drops the upstream host; `server` is the loopback too, so nothing falls back upstream).
 */
export function hostsToml(host: string): string {
  return `server = "http://${host}"\n\n[host."http://${host}"]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n`;
}
