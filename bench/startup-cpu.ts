// CPU the daemon spends from its exec to its first served Status (issue #20, branch "codec"):
// the sum of /proc/<pid>/task/*/schedstat run times (ns; every thread) read as soon as Status
// answers. Less sensitive than wall time to a loaded machine. Ours only, $CRIO_BINARY or
// dist/crio; run it alternately on two binaries for an A/B. Usage (root):
//   CRIO_BINARY=… bun bench/startup-cpu.ts [--runs 7]
import { readdirSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { startDaemon } from "../test/harness.ts";
import { criClient } from "../test/support/cri-client.ts";
import { median } from "./lib.ts";

const { values: args } = parseArgs({ options: { runs: { type: "string", default: "7" } } });

/** CPU of every thread of `pid` so far (ms). */
function cpuMs(pid: number): number {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended
    }
  }
  return ns / 1e6;
}

const cpu: number[] = [];
const wall: number[] = [];
for (let i = 0; i < Number(args.runs); i++) {
  const t0 = performance.now();
  await using d = await startDaemon({ noWait: true, logLevel: "info" });
  const cri = criClient(d.socket);
  try {
    for (;;) {
      try {
        await cri.status({}, { timeoutMs: 1000 });
        break;
      } catch {
        if (d.proc.exitCode !== null) throw new Error(`the daemon exited: ${d.logs()}`);
        await Bun.sleep(2);
      }
    }
    cpu.push(cpuMs(d.proc.pid));
    wall.push(performance.now() - t0);
  } finally {
    cri.close();
  }
}
console.log(JSON.stringify({ cpuMs: median(cpu), wallMs: median(wall), cpu, wall }));
