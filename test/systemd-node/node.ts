/**
 * The systemd lane's view of the node booted by node.sh (test/systemd-node/run.sh boots it and
 * sets SDNODE_DIR): commands inside it, its files, its CRI socket, and crio installed in it by
 * install.sh (the operator's path) and run by its systemd as crio.service.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { criClient, type CriClient } from "../support/cri-client.ts";
import { busyboxImage, pauseImage, type TestImage } from "../support/images.ts";
import { MEDIA } from "../support/oci-layout.ts";
import { run, runRaw } from "../../src/sys/exec.ts";
import { waitFor } from "../harness.ts";

export const REPO = resolve(import.meta.dir, "..", "..");
/** The binary install.sh installs into the node (the one the host suite tests). */
export const CRIO = resolve(process.env.CRIO_BINARY ?? join(REPO, "dist", "crio"));
/** The node's registry (node.sh), inside its network namespace. */
export const REGISTRY = "127.0.0.1:5000";

/** The node's dir (node.sh up DIR); undefined when no node was booted for this run. */
export const NODE_DIR = process.env.SDNODE_DIR;

/** The node's PID 1, as seen from here. */
export function nodePid(): number {
  if (!NODE_DIR) throw new Error("SDNODE_DIR is not set: run the lane with test/systemd-node/run.sh");
  return Number(readFileSync(join(NODE_DIR, "pid"), "utf8").trim());
}

/** A path inside the node, as seen from here. */
export function nodePath(p: string): string {
  return `/proc/${nodePid()}/root${p}`;
}

/** The argv prefix that runs a command inside the node (all its namespaces, its root). */
export function inNodeArgv(): string[] {
  return ["nsenter", "-t", String(nodePid()), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w", "--"];
}

/** Runs argv inside the node; resolves to stdout, rejects with its stderr on failure. */
export function sh(argv: string[], o: { timeoutMs?: number; stdin?: string } = {}): Promise<string> {
  return run([...inNodeArgv(), ...argv], { timeoutMs: o.timeoutMs ?? 60_000, stdin: o.stdin });
}

/** Runs argv inside the node; its exit code and output, never throws for a failure. */
export async function shRaw(argv: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runRaw([...inNodeArgv(), ...argv], { timeoutMs });
}

/** `systemctl show UNIT -p PROP` value. */
export async function unitProp(unit: string, prop: string): Promise<string> {
  return (await sh(["systemctl", "show", unit, "-p", prop, "--value"])).trim();
}

/** The node's CRI socket, from here. */
export function socketPath(): string {
  return nodePath("/run/crio/crio.sock");
}

let client: CriClient | undefined;
/** A CRI client on the node's socket (one per test process). */
export function cri(): CriClient {
  client ??= criClient(socketPath());
  return client;
}

/** The drop-in the lane adds to the operator's install: pause image from the node's registry, handlers for monitor_cgroup. */
export const TEST_DROPIN = `# written by test/systemd-node: the lane's additions to install.sh's crio.conf
[crio.image]
pause_image = "${REGISTRY}/pause:latest"
pause_command = "/pause"

[crio.runtime]
log_level = "debug"
pids_limit = 1234

[crio.runtime.runtimes.runc-pod]
runtime_path = "/usr/sbin/runc"
monitor_cgroup = "pod"

[crio.runtime.runtimes.runc-slice]
runtime_path = "/usr/sbin/runc"
monitor_cgroup = "crio-monitors.slice"
`;

let installed: Promise<{ busybox: string; pause: string }> | undefined;

/**
 * crio installed in the node by install.sh and started by systemd (once per test process), the
 * test images pushed to the node's registry; then crio.service active.
 */
export function setUpNode(): Promise<{ busybox: string; pause: string }> {
  installed ??= (async () => {
    if (!existsSync(nodePath("/usr/local/bin/crio"))) {
      await sh(["mkdir", "-p", "/etc/crio/crio.conf.d", "/etc/containers/registries.conf.d"]);
      await sh(["sh", "-c", "cat > /etc/crio/crio.conf.d/50-node-test.conf"], { stdin: TEST_DROPIN });
      await sh(["sh", "-c", "cat > /etc/containers/registries.conf.d/50-node-test.conf"], {
        stdin: `[[registry]]\nlocation = "${REGISTRY}"\ninsecure = true\n`,
      });
      await sh(["env", `CRIO_BINARY=${CRIO}`, "sh", join(REPO, "install.sh"), "--no-packages"], { timeoutMs: 300_000 });
    }
    const images = { busybox: await push(await busyboxImage()), pause: await push(await pauseImage()) };
    await ensureActive();
    // as the kubelet does before CreateContainer
    for (const image of Object.values(images)) await cri().pullImage({ image: { image } }, { timeoutMs: 120_000 });
    return images;
  })();
  return installed;
}

/** crio.service active and its socket serving (after a test stopped it, say). */
export async function ensureActive(): Promise<void> {
  const state = (await shRaw(["systemctl", "is-active", "crio.service"])).stdout.trim();
  if (state !== "active") {
    await sh(["systemctl", "reset-failed", "crio.service"]).catch(() => {});
    await sh(["systemctl", "start", "crio.service"], { timeoutMs: 120_000 });
  }
  await waitFor(
    async () =>
      (await cri()
        .version({}, { timeoutMs: 2_000 })
        .catch(() => undefined)) !== undefined,
    30_000,
    "crio to serve",
  );
}

/** Pushes a test image (built on the host) into the node's registry with skopeo in the node's network namespace. */
async function push(img: TestImage): Promise<string> {
  const ref = `${REGISTRY}/${img.name}:${img.tag}`;
  const src = img.mediaType === MEDIA.dockerManifest ? `dir:${join(img.layoutDir, "v2s2")}` : `oci:${img.layoutDir}:${img.tag}`;
  await run(
    [
      "nsenter",
      "-t",
      String(nodePid()),
      "-n",
      "--",
      "skopeo",
      "--insecure-policy",
      "copy",
      "-q",
      "--preserve-digests",
      "--dest-tls-verify=false",
      src,
      `docker://${ref}`,
    ],
    { timeoutMs: 120_000 },
  );
  return ref;
}

/** Processes inside the node whose command line matches, as [pid (node's pid namespace), argv]. */
export async function nodeProcs(match: (argv: string[]) => boolean): Promise<Array<{ pid: number; argv: string[] }>> {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
  const out = await sh(["sh", "-c", 'for p in /proc/[0-9]*; do printf "%s\\t" "${p#/proc/}"; tr "\\0" "\\1" < "$p/cmdline" 2>/dev/null; echo; done']);
  const procs: Array<{ pid: number; argv: string[] }> = [];
  for (const line of out.split("\n")) {
    const [pid, cmd] = line.split("\t");
    if (!pid || !cmd) continue;
    const argv = cmd.split("\x01").filter((x, i, a) => i < a.length - 1 || x !== "");
    if (match(argv)) procs.push({ pid: Number(pid), argv });
  }
  return procs;
}

/** /proc/<pid>/cgroup of a process inside the node (its pid there): controller → path. */
export async function nodeCgroups(pid: number): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const line of (await sh(["cat", `/proc/${pid}/cgroup`])).split("\n")) {
    const x = /^\d+:([^:]*):(.*)$/.exec(line.trim());
    if (x) m.set(x[1] || "unified", x[2]!);
  }
  return m;
}

/** The environment of a process inside the node. */
export async function nodeEnviron(pid: number): Promise<string[]> {
  return (await sh(["cat", `/proc/${pid}/environ`])).split("\0").filter(Boolean);
}

/** A cgroup file of the node's v1 hierarchy `controller`, read from here. */
export function nodeCgroupFile(controller: string, rel: string, file: string): string | undefined {
  try {
    return readFileSync(nodePath(`/sys/fs/cgroup/${controller}${rel}/${file}`), "utf8").trim();
  } catch {
    return undefined;
  }
}
