// Crash consistency by injection (issue #17): 4 clients churn pods, containers, execs and image
// pulls/removals while the daemon is SIGKILLed at random instants, 10 times (and monitors and runc
// now and then, and one "power cut"); after each restart every invariant holds (crash-churn.ts).
// The long run (≥ 100 kills) is bench/crash.ts; its figures are in bench/RESULTS.md.
import { expect, test } from "bun:test";
import { crashChurn } from "../support/crash-churn.ts";

test("10 SIGKILLs of the daemon at random instants under a churn of 4 clients: no invariant broken, nothing leaked", async () => {
  const r = await crashChurn({
    kills: Number(process.env.CRASH_KILLS ?? 10),
    clients: 4,
    killHelpers: process.env.CRASH_HELPERS !== "0",
    powerCutEvery: 7,
    log: (l) => process.env.CRASH_VERBOSE && console.log(l),
  });
  console.log(
    `crash churn: ${r.kills} kills (${r.powerCuts} power cut, ${r.helperKills} monitor/runc kills), ops ${JSON.stringify(r.ops)}, leftovers undone ${r.leftoversUndone}, recovery ms max ${Math.max(...r.recoveryMs)}`,
  );
  expect(r.violations).toEqual([]);
  expect(r.kills).toBe(Number(process.env.CRASH_KILLS ?? 10));
  expect((r.ops.CreateContainer ?? 0) + (r.ops.RunPodSandbox ?? 0)).toBeGreaterThan(5);
}, 600_000);
