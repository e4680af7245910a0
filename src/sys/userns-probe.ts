/**
 * Does this node support pods in user namespaces of their own, the way we run them (pinned user
 * namespaces with given mappings, image layers and volumes seen through idmapped mounts, overlay
 * over idmapped layers)? Tried for real, once per process: a temporary user namespace, an
 * idmapped copy of each directory that matters, and an overlay over an idmapped layer on the
 * filesystem of the container storage. The answer names what is missing.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { messageOf } from "../errors.ts";
import { canIdmap, releaseStaged, stageIdmapped } from "./idmap.ts";
import { isMounted, mount, readMountinfo, unmount } from "./mount.ts";
import { requireTools } from "./namespaces.ts";
import { spawnInUserns, withTempUserns } from "./userns.ts";

/** Directories a user-namespaced pod's mounts come from, and where the probe may work. */
export interface ProbeDirs {
  /** Unpacked image layers (the overlay's lower dirs). */
  layers: string;
  /** Container storage (upper dirs); the overlay probe runs here. */
  storage: string;
  /** The runtime root: pod files (hostname, resolv.conf) and generated files. */
  runroot: string;
  /** Private staging base (paths.idmap). */
  staging: string;
}

/** undefined when the node supports them; otherwise what is missing. Cached for the process. */
export function probeUserns(dirs: ProbeDirs): Promise<string | undefined> {
  cached ??= probe(dirs)
    .catch((e) => `probe failed: ${messageOf(e)}`)
    .then((r) => ((settled = { result: r }), r));
  return cached;
}

/** The probe's answer if it has finished ({ result }), else undefined (it is started then, in the background). */
export function probedUserns(dirs: ProbeDirs): { result: string | undefined } | undefined {
  if (!settled) void probeUserns(dirs);
  return settled;
}

// --- internal ---

let cached: Promise<string | undefined> | undefined;
let settled: { result: string | undefined } | undefined;
const PROBE_MAP = [{ containerId: 0, hostId: 65536 * 7, length: 65536 }];

async function probe(d: ProbeDirs): Promise<string | undefined> {
  if (!existsSync("/proc/self/ns/user")) return "the kernel has no user namespaces (CONFIG_USER_NS)";
  const max = Number(readText("/proc/sys/user/max_user_namespaces") ?? "1");
  if (!(max > 0)) return "user namespaces are disabled (user.max_user_namespaces = 0)";
  let tools: Record<string, string>;
  try {
    tools = requireTools(["unshare", "nsenter"]);
  } catch (e) {
    return messageOf(e);
  }
  try {
    const c = await spawnInUserns(tools.unshare!, ["--user"], PROBE_MAP, PROBE_MAP);
    await c.finish();
  } catch (e) {
    return `cannot create a user namespace with given mappings: ${messageOf(e)}`;
  }
  for (const dir of [d.layers, d.storage, d.runroot]) mkdirSync(dir, { recursive: true, mode: 0o711 });
  const refused = await withTempUserns(tools.unshare!, PROBE_MAP, PROBE_MAP, (fd) => {
    for (const dir of [d.layers, d.storage, d.runroot]) {
      const why = canIdmap(dir, fd);
      if (why) return `the filesystem of ${dir} (${fsType(dir)}) does not support idmapped mounts: ${why}`;
    }
    return undefined;
  });
  if (refused) return refused;
  return overlayProbe(d, tools.unshare!);
}

/** An overlay over an idmapped lower dir on the storage filesystem shows a root-owned file as the mapped owner. */
async function overlayProbe(d: ProbeDirs, unshare: string): Promise<string | undefined> {
  removeStaleProbes(d.storage);
  const base = join(d.storage, `.userns-probe-${process.pid}`);
  const [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map((n) => join(base, n)) as [string, string, string, string];
  const stage = `probe-${process.pid}`;
  try {
    for (const p of [lower, upper, work, merged]) mkdirSync(p, { recursive: true, mode: 0o700 });
    writeFileSync(join(lower, "f"), "");
    // a user namespace held by a waiting child while the copy is staged
    const child = await spawnInUserns(unshare, ["--user"], PROBE_MAP, PROBE_MAP);
    let staged: string[];
    try {
      staged = await stageIdmapped(d.staging, stage, `/proc/${child.pid}/ns/user`, [{ source: lower }]);
    } finally {
      await child.finish().catch(() => {});
    }
    try {
      mount("overlay", merged, "overlay", 0, `lowerdir=${staged[0]},upperdir=${upper},workdir=${work}`);
    } catch (e) {
      return `overlay over idmapped layers is not supported: ${messageOf(e)}`;
    } finally {
      releaseStaged(d.staging, stage);
    }
    const uid = statSync(join(merged, "f")).uid;
    unmount(merged, { detach: true });
    if (uid !== PROBE_MAP[0]!.hostId) return `overlay over an idmapped layer shows owner ${uid}, not ${PROBE_MAP[0]!.hostId}`;
    return undefined;
  } catch (e) {
    return `idmapped mounts: ${messageOf(e)}`;
  } finally {
    try {
      releaseStaged(d.staging, stage);
      if (isMounted(merged)) unmount(merged, { detach: true });
      if (!readMountinfo().some((m) => m.mountPoint.startsWith(base))) rmSync(base, { recursive: true, force: true });
    } catch {
      // best effort: a probe directory left behind is harmless
    }
  }
}

/** Probe directories of earlier processes (a daemon killed mid-probe): their overlay detached, then removed. */
function removeStaleProbes(storage: string): void {
  let names: string[] = [];
  try {
    names = readdirSync(storage).filter((n) => n.startsWith(".userns-probe-") && n !== `.userns-probe-${process.pid}`);
  } catch {
    return;
  }
  for (const n of names) {
    const dir = join(storage, n);
    try {
      if (isMounted(join(dir, "merged"))) unmount(join(dir, "merged"), { detach: true });
      if (!readMountinfo().some((m) => m.mountPoint.startsWith(dir + "/"))) rmSync(dir, { recursive: true, force: true });
    } catch {
      // left for the next probe
    }
  }
}

function fsType(dir: string): string {
  let best = { len: -1, type: "?" };
  for (const m of readMountinfo()) if (dir.startsWith(m.mountPoint) && m.mountPoint.length > best.len) best = { len: m.mountPoint.length, type: m.fsType };
  return best.type;
}

function readText(p: string): string | undefined {
  try {
    return readFileSync(p, "utf8").trim();
  } catch {
    return undefined;
  }
}
