import { defineCommand } from "citty";
import { globalArgs, loadOptionsFrom } from "./flags.ts";

/**
 * `crio wipe [-f]` (CRI-O's): removes pods, containers and, after an upgrade, images, when the
 * version files say the node rebooted or the version changed; -f always. Refuses while a
 * daemon answers on the CRI socket. Exit 0 when done (or nothing to do), 1 on any failure.
 */
export default defineCommand({
  meta: { name: "wipe", description: "Wipe the runtime's containers (after a reboot) and images (after an upgrade); -f: always" },
  args: { ...globalArgs(), force: { type: "boolean", alias: "f", description: "Force the wipe by skipping the version check" } },
  async run({ args }) {
    const { load, logFormat } = loadOptionsFrom(args);
    const { loadConfig } = await import("../config/load.ts");
    const { log, setLogFormat, setLogLevel } = await import("../log/index.ts");
    const { runWipe } = await import("../daemon/wipe.ts");
    setLogFormat(logFormat);
    setLogLevel("info");
    try {
      const { config } = await loadConfig(load);
      const r = await runWipe(config, args.force === true, log);
      return r.failures > 0 ? 1 : 0;
    } catch (e) {
      process.stderr.write(`crio wipe: ${e instanceof Error ? e.message : String(e)}\n`);
      return 1;
    }
  },
});
