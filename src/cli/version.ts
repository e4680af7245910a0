import { defineCommand } from "citty";
import { BUILD_DATE, COMMIT, CRI_API_VERSION, VERSION } from "../version.ts";

/** `crio version [--json]`. */
export default defineCommand({
  meta: { name: "version", description: "Print version information" },
  args: { json: { type: "boolean", description: "Print as JSON" } },
  run({ args }) {
    const info = {
      version: VERSION,
      gitCommit: COMMIT,
      buildDate: BUILD_DATE,
      criApiVersion: CRI_API_VERSION,
      bunVersion: Bun.version,
      compiler: "bun",
      platform: `${process.platform}/${process.arch}`,
    };
    if (args.json) console.log(JSON.stringify(info, null, 2));
    else for (const [k, v] of Object.entries(info)) console.log(`${(k.replace(/([A-Z])/g, " $1").replace(/^./, (c) => c.toUpperCase()) + ":").padEnd(16)}${v}`);
    return 0;
  },
});
