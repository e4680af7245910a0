/**
 * A killable pull, for crash tests: `bun test/support/pull-child.ts ROOT REGISTRIES_CONF REF…`
 * opens the image store at ROOT, pulls every REF at once, and prints one JSON line per progress
 * event ({"ref", …PullProgress}) and per result ({"type":"result","ref","id"} or
 * {"type":"error","ref","kind","message"}). Exits 0 when every pull succeeded.
 */
import { ImageService } from "../../src/image/index.ts";

const [root, registriesConfPath, ...refs] = process.argv.slice(2);
if (!root || !registriesConfPath || refs.length === 0) {
  console.error("usage: pull-child.ts ROOT REGISTRIES_CONF REF…");
  process.exit(2);
}
const out = (o: object) => process.stdout.write(JSON.stringify(o) + "\n");
const svc = new ImageService({ root, registriesConfPath });
await svc.init();
out({ type: "ready", pid: process.pid });
const results = await Promise.allSettled(
  refs.map(async (ref) => {
    try {
      const r = await svc.pull(ref, { onProgress: (p) => out({ ref, ...p }) });
      out({ type: "result", ref, id: r.id });
    } catch (e) {
      const err = e as { kind?: string; message?: string };
      out({ type: "error", ref, kind: err.kind, message: err.message });
      throw e;
    }
  }),
);
process.exit(results.every((r) => r.status === "fulfilled") ? 0 : 1);
