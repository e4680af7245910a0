import type { MonitorArgs } from "./protocol.ts";

/**
 * log_to_journald: sends each log record to the journal at `socket` with conmon's fields:
 * MESSAGE, CONTAINER_ID_FULL, CONTAINER_ID (12 characters), CONTAINER_NAME (the runtime's name,
 * from the bundle's annotations), SYSLOG_IDENTIFIER (the container's own name), PRIORITY 6
 * (stdout) or 3 (stderr), CONTAINER_PARTIAL_MESSAGE=true for a piece of a long line.
 */
export async function journalSink(a: MonitorArgs, socket: string): Promise<(stream: "stdout" | "stderr", partial: boolean, payload: Uint8Array) => void> {
  const { JournalSocket } = await import("../sys/journal.ts");
  let ann: Record<string, string> = {};
  try {
    ann = (JSON.parse(await Bun.file(`${a.bundle}/config.json`).text()) as { annotations?: Record<string, string> }).annotations ?? {};
  } catch {}
  const j = new JournalSocket(socket);
  const fixed: Array<[string, string]> = [
    ["CONTAINER_ID_FULL", a.id],
    ["CONTAINER_ID", a.id.slice(0, 12)],
    ["CONTAINER_NAME", ann["io.kubernetes.cri-o.Name"] ?? a.id],
    ["SYSLOG_IDENTIFIER", ann["io.kubernetes.cri.container-name"] || a.id.slice(0, 12)],
  ];
  return (stream, partial, payload) => {
    const fields: Array<readonly [string, string | Uint8Array]> = [["MESSAGE", payload], ...fixed, ["PRIORITY", stream === "stderr" ? "3" : "6"]];
    if (partial) fields.push(["CONTAINER_PARTIAL_MESSAGE", "true"]);
    j.send(fields);
  };
}
