import { defineCommand } from "citty";
import { globalArgs, loadOptionsFrom } from "./flags.ts";

/** `crio daemon` (and plain `crio`): the CRI server in the foreground. */
export default defineCommand({
  meta: { name: "daemon", description: "Run the CRI daemon in the foreground" },
  args: globalArgs(),
  async run({ args }) {
    const { runDaemon } = await import("../daemon/start.ts");
    return await runDaemon(loadOptionsFrom(args));
  },
});
