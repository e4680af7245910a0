// Start-up (issue #20): the runtimes' `features` answers are kept in the runroot across restarts
// and asked again when the binary changes; the daemon settles its memory once it serves.
import { expect, test } from "bun:test";
import { appendFileSync, chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startDaemon, tempDir, waitFor } from "../harness.ts";

const RUNC = ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"].find(existsSync)!;

test("runc features is asked once: a restart uses the kept answer, a replaced binary is asked again", async () => {
  using tmp = tempDir();
  const wrapper = join(tmp.path, "runc");
  const calls = join(tmp.path, "calls");
  writeFileSync(wrapper, `#!/bin/sh\necho "$*" >> ${calls}\nexec ${RUNC} "$@"\n`);
  chmodSync(wrapper, 0o755);
  const config = `[crio.runtime.runtimes.runc]\nruntime_path = ${JSON.stringify(wrapper)}\n`;
  const featuresAsked = () =>
    existsSync(calls)
      ? readFileSync(calls, "utf8")
          .split("\n")
          .filter((l) => /(^| )features$/.test(l)).length
      : 0;
  const rro = async (d: Awaited<ReturnType<typeof startDaemon>>) =>
    (await d.cri.status({})).runtimeHandlers.map((h) => [h.name, h.features?.recursiveReadOnlyMounts]);

  await using d1 = await startDaemon({ config });
  const first = await rro(d1);
  expect(featuresAsked()).toBe(1);
  const kept = JSON.parse(readFileSync(join(d1.runroot, "runtime-features.json"), "utf8"));
  expect(kept.entries[wrapper].features.source).toBe("features");
  expect(await d1.stop()).toBe(0);

  await using d2 = await startDaemon({ dir: d1.dir, config });
  expect(await rro(d2)).toEqual(first);
  expect(featuresAsked()).toBe(1); // not asked again
  expect(await d2.stop()).toBe(0);

  // a replaced binary (an upgrade): new size, mtime and ctime
  appendFileSync(wrapper, "# upgraded\n");
  await using d3 = await startDaemon({ dir: d1.dir, config });
  expect(await rro(d3)).toEqual(first);
  expect(featuresAsked()).toBe(2);
});

test("a planted cache entry of another binary stamp is not believed", async () => {
  await using d1 = await startDaemon({});
  const file = join(d1.runroot, "runtime-features.json");
  await waitFor(() => existsSync(file), 10_000, "the features cache file");
  const kept = JSON.parse(readFileSync(file, "utf8"));
  const truth = await d1.cri.status({});
  // the planted lie must be visible: this node's runtimes and kernel give rro
  expect(truth.runtimeHandlers.some((h) => h.features?.recursiveReadOnlyMounts)).toBe(true);
  expect(await d1.stop()).toBe(0);
  // every entry claims the opposite of what the runtime said, under a stamp that is not the binary's
  for (const e of Object.values(kept.entries) as Array<{ stamp: { ino: number }; features: { rro: boolean; mountOptions: string[] } }>) {
    e.stamp.ino += 1;
    e.features.rro = !e.features.rro;
    e.features.mountOptions = e.features.rro ? ["rro"] : [];
  }
  writeFileSync(file, JSON.stringify(kept));
  await using d2 = await startDaemon({ dir: d1.dir });
  const again = await d2.cri.status({});
  expect(again.runtimeHandlers.map((h) => [h.name, h.features?.recursiveReadOnlyMounts])).toEqual(
    truth.runtimeHandlers.map((h) => [h.name, h.features?.recursiveReadOnlyMounts]),
  );
});
