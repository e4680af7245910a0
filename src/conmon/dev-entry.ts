/**
 * Runs the monitor role from source (`bun src/conmon/dev-entry.ts [conmon] ARGS…`), for tests
 * and development until the compiled binary's `crio conmon` is used.
 */
import { runConmon } from "./main.ts";

const args = process.argv.slice(2);
if (args[0] === "conmon") args.shift();
process.exit(await runConmon(args));
