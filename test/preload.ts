// Loaded before every test file (bunfig.toml). Keeps the domain's logs quiet in unit tests and
// says plainly when an e2e test cannot run because it is not root.
import { setLogSink } from "../src/log/index.ts";

if (!process.env.CRIO_TEST_LOGS) setLogSink(() => {});

/** True when the process may run containers (root). e2e files call requireRoot() at the top. */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}
