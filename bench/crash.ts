// Crash consistency by injection, the long run (issue #17): `bun bench/crash.ts` (as root, after
// `bun run build`). BENCH_KILLS (default 100) SIGKILLs of the daemon at random instants under a
// churn of BENCH_CLIENTS (4) clients, with a monitor or runc SIGKILLed before about half of them
// (BENCH_HELPERS=0 to leave them be) and a "power cut" every BENCH_POWERCUT (25) kills; after each
// restart the invariants of test/support/crash-churn.ts are checked. Writes its section of
// bench/RESULTS.md: kills, operations, leftovers undone, recovery times, and every violation.
import { crashChurn } from "../test/support/crash-churn.ts";
import { writeSection } from "./lib.ts";

const kills = Number(process.env.BENCH_KILLS ?? 100);
const t0 = Date.now();
const r = await crashChurn({
  kills,
  clients: Number(process.env.BENCH_CLIENTS ?? 4),
  killHelpers: process.env.BENCH_HELPERS !== "0",
  powerCutEvery: Number(process.env.BENCH_POWERCUT ?? 25),
  log: (l) => console.log(l),
});
const minutes = ((Date.now() - t0) / 60_000).toFixed(1);
const sorted = [...r.recoveryMs].sort((a, b) => a - b);
const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
const kinds = new Map<string, number>();
for (const v of r.violations) {
  const k = v
    .replace(/^[^:]*: /, "")
    .replace(/[0-9a-f]{64}/g, "<id>")
    .replace(/\/run\/crt-[0-9a-f]+/g, "<runroot>")
    .replace(/\d+(\.\d+)+/g, "<n>");
  kinds.set(k, (kinds.get(k) ?? 0) + 1);
}
const md = [
  "## Crash consistency by injection — `bun bench/crash.ts`",
  "",
  "Ours alone: a robustness check of our daemon (SIGKILLs under a churn, invariants after each); CRI-O and containerd are not run, there is no figure to compare.",
  "",
  `${new Date().toISOString().slice(0, 10)}, ${minutes} min: ${r.kills} SIGKILLs of the daemon at random instants (0.3–2.5 s apart) under ${process.env.BENCH_CLIENTS ?? 4} concurrent clients, ${r.helperKills} SIGKILLs of a monitor or a runc process, ${r.powerCuts} "power cuts" (daemon, monitors and containers killed, runroot, pins, cgroups, IPAM leases and pod iptables rules wiped as a reboot does).`,
  "",
  `Operations that completed: ${Object.entries(r.ops)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ")}.`,
  `Half-made containers found and undone at start-up: ${r.leftoversUndone}. Restart to serving (ms): median ${q(0.5)}, p90 ${q(0.9)}, max ${sorted.at(-1) ?? 0}.`,
  "",
  `Invariant violations: **${r.violations.length}**${r.violations.length ? " (by kind, ids elided):" : "."}`,
  ...[...kinds].map(([k, n]) => `- ${n} × ${k}`),
  "",
  "Violations found on the way (first runs of this script and of test/e2e/robust-crash.test.ts), each fixed at its cause:",
  "- every CreateContainer (or infra create) in flight at a kill left an overlay `merged` mount, its storage dir, bundle, monitor dir, a live monitor holding a `runc init`, runc's state and cgroups, none listed and so never removed → start-up recovery finds containers with no committed record by those traces and undoes them, logged (`src/container/leftovers.ts`);",
  "- a record dir kept an atomic write's temp file (`status.json.tmp-*`) when the kill came mid-write → dropped when records load;",
  "- a pod's masquerade chain and rules stayed in iptables for good when the daemon died during StopPodSandbox: the bridge plugin, killed with the daemon after deleting the pod's interface, cannot tear down the masquerade on the next DEL (it finds addresses only on the interface) → a CNI DEL now runs to its end even if the daemon dies (ADD still dies with it);",
  "- recovery killed a half-made container's monitor by process group, which could reach a process that was not that container's → only a process whose command line names the container's id is killed.",
  "- a StartContainer whose runc was killed (the churn kills runc at random) was recorded EXITED while runc still had the container created or running; the checks did not look for that → they now flag a container listed EXITED that runc runs or holds created (and find monitors retitled for their container by the files they hold open), and a failed start kills the container before EXITED is recorded (found by test/e2e/robust-inject.test.ts, which holds runc at chosen steps).",
  "The harness's own model errors found on the way (not runtime bugs): a RemoveContainer or RemovePodSandbox cut short by the kill may leave its containers stopped; a call that failed because the daemon died may still have taken effect.",
  "",
];
writeSection("crash", md.join("\n"));
console.log(md.join("\n"));
process.exit(r.violations.length ? 1 : 0);
