import { defineCommand } from "citty";

/** The CRI socket `crio status` talks about when --socket is not given. */
export const DEFAULT_STATUS_SOCKET = "/var/run/crio/crio.sock";

/**
 * `crio status [--socket PATH] config|info|containers --id ID` (CRI-O's crio status): asks
 * the running daemon over its info API, served on the socket beside the CRI socket
 * (<listen without .sock>-info.sock; --socket accepts either).
 */
export default defineCommand({
  meta: { name: "status", description: "Display status information of the running daemon: its configuration, runtime info, or one container" },
  args: {
    what: {
      type: "positional",
      required: false,
      valueHint: "config|info|containers",
      description: "config (c): the configuration as TOML; info (i): storage and cgroup driver; containers (container, cs, s): one container, with --id",
    },
    socket: { type: "string", alias: "s", description: `The daemon's CRI socket or its info socket (default ${DEFAULT_STATUS_SOCKET})` },
    id: { type: "string", alias: "i", description: "The container ID or a unique prefix (containers)" },
  },
  async run({ args }) {
    const what = ALIASES[String(args.what ?? "")];
    if (!what) {
      process.stderr.write(
        `crio status: ${args.what ? `unknown status command "${args.what}"` : "a command is required"}: use config, info or containers (crio status --help)\n`,
      );
      return 1;
    }
    const { infoSocketPath } = await import("../daemon/info-api.ts");
    const { withShortSocketPath } = await import("../sys/short-path.ts");
    const given = typeof args.socket === "string" && args.socket ? args.socket : DEFAULT_STATUS_SOCKET;
    const socket = given.endsWith("-info.sock") ? given : infoSocketPath(given);
    if (what === "containers" && !args.id) {
      process.stderr.write("crio status: the argument --id cannot be empty\n");
      return 1;
    }
    const path = what === "containers" ? `/containers/${encodeURIComponent(String(args.id))}` : `/${what}`;
    let res: Response;
    try {
      // through a short alias of the socket's directory: any path length fits sun_path
      res = await withShortSocketPath(socket, (unix) => fetch(`http://localhost${path}`, { unix } as RequestInit));
    } catch (e) {
      process.stderr.write(
        `crio status: cannot reach the daemon's info API on "${socket}" (is crio running with --listen "${given}"?): ${e instanceof Error ? e.message : String(e)}\n`,
      );
      return 1;
    }
    const body = await res.text();
    if (!res.ok) {
      process.stderr.write(`crio status: ${body.trim() || `HTTP ${res.status}`}\n`);
      return 1;
    }
    process.stdout.write(what === "config" ? body : what === "info" ? formatInfo(JSON.parse(body)) : formatContainer(body));
    return 0;
  },
});

/** The lines CRI-O's `crio status info` prints. */
export function formatInfo(i: {
  cgroup_driver: string;
  storage_driver: string;
  storage_root: string;
  storage_image?: string;
  default_id_mappings?: { uids?: IdMap[]; gids?: IdMap[] };
}): string {
  const maps = (m: IdMap[] | undefined) => (m ?? []).map((x) => `  ${x.container_id}:${x.host_id}:${x.size}\n`).join("");
  return (
    `cgroup driver: ${i.cgroup_driver}\n` +
    `storage driver: ${i.storage_driver}\n` +
    `storage graph root: ${i.storage_root}\n` +
    `storage image: ${i.storage_image ?? ""}\n` +
    `default GID mappings (format <container>:<host>:<size>):\n${maps(i.default_id_mappings?.gids)}` +
    `default UID mappings (format <container>:<host>:<size>):\n${maps(i.default_id_mappings?.uids)}`
  );
}

/** The lines CRI-O's `crio status containers` prints, from the /containers/<id> JSON. */
export function formatContainer(json: string): string {
  // created_time is nanoseconds since the epoch: more digits than a double holds, so read it as text.
  const created = /"created_time":\s*(-?\d+)/.exec(json)?.[1] ?? "0";
  const c = JSON.parse(json) as Record<string, unknown>;
  const map = (m: unknown) =>
    Object.entries((m ?? {}) as Record<string, string>)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `  ${k}: ${v}\n`)
      .join("");
  return (
    `name: ${c.name}\npid: ${c.pid}\nimage: ${c.image}\nimage ref: ${c.image_ref}\ncreated: ${created}\n` +
    `labels:\n${map(c.labels)}annotations:\n${map(c.annotations)}CRI-O annotations:\n${map(c.crio_annotations)}` +
    `log path: ${c.log_path}\ngraph root: ${c.root}\nsandbox: ${c.sandbox}\nips: ${((c.ip_addresses ?? []) as string[]).join(", ")}\n`
  );
}

// --- internal ---

type IdMap = { container_id: number; host_id: number; size: number };

const ALIASES: Record<string, "config" | "info" | "containers"> = {
  config: "config",
  c: "config",
  info: "info",
  i: "info",
  containers: "containers",
  container: "containers",
  cs: "containers",
  s: "containers",
};
