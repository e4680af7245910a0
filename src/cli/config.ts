import { defineCommand } from "citty";
import { globalArgs, loadOptionsFrom } from "./flags.ts";

/** `crio config [--default]`: the effective (or default) configuration as commented TOML. */
export default defineCommand({
  meta: { name: "config", description: "Print the effective configuration (flags applied) as commented TOML" },
  args: { ...globalArgs(), default: { type: "boolean", description: "Print the defaults, ignoring files and flags" } },
  async run({ args }) {
    const { printConfig } = await import("../daemon/start.ts");
    const { load } = loadOptionsFrom(args);
    return await printConfig({ ...load, defaultsOnly: args.default === true });
  },
});
