// The node probe behind features.user_namespaces (sys/userns-probe.ts), against the real kernel:
// it passes on this node's filesystems, and names the filesystem when one cannot be idmapped.
// Each case runs the probe in a child process (the answer is cached per process).
import { afterAll, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../harness.ts";

const dir = tempDir("userns-probe-");
afterAll(() => {
  Bun.spawnSync(["umount", "-l", join(dir.path, "ramfs")]);
  Bun.spawnSync(["umount", "-l", join(dir.path, "run", "idmap")]);
  dir[Symbol.dispose]();
});

async function probe(d: { layers: string; storage: string; runroot: string }): Promise<string> {
  const script = `import { probeUserns } from ${JSON.stringify(join(import.meta.dir, "../../src/sys/userns-probe.ts"))};
console.log(JSON.stringify((await probeUserns(${JSON.stringify({ ...d, staging: join(d.runroot, "idmap") })})) ?? "supported"));`;
  const p = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  if ((await p.exited) !== 0) throw new Error(err);
  return JSON.parse(out.trim());
}

test("this node passes: user namespaces, idmapped mounts on its filesystems, overlay over an idmapped layer", async () => {
  const d = { layers: join(dir.path, "layers"), storage: join(dir.path, "storage"), runroot: join(dir.path, "run") };
  // what a probe killed half-way leaves: its directory with the overlay still mounted
  const stale = join(d.storage, ".userns-probe-999999");
  for (const s of ["lower", "upper", "work", "merged"]) mkdirSync(join(stale, s), { recursive: true });
  expect(
    Bun.spawnSync(["mount", "-t", "overlay", "overlay", "-o", `lowerdir=${stale}/lower,upperdir=${stale}/upper,workdir=${stale}/work`, `${stale}/merged`])
      .exitCode,
  ).toBe(0);
  expect(await probe(d)).toBe("supported");
  // it leaves no mount behind but its private staging directory, and no probe directory
  const mounts = (await Bun.file("/proc/self/mountinfo").text()).split("\n").filter((l) => l.includes(dir.path));
  expect(mounts.map((l) => l.split(" ")[4])).toEqual([join(dir.path, "run", "idmap")]);
  expect(Bun.spawnSync(["sh", "-c", `ls -A ${d.storage}`]).stdout.toString()).toBe("");
});

test("a runroot on a filesystem without idmapped mounts (ramfs) is named", async () => {
  const ramfs = join(dir.path, "ramfs");
  mkdirSync(ramfs, { recursive: true });
  expect(Bun.spawnSync(["mount", "-t", "ramfs", "ramfs", ramfs]).exitCode).toBe(0);
  const why = await probe({ layers: join(dir.path, "layers"), storage: join(dir.path, "storage"), runroot: ramfs });
  expect(why).toContain(`the filesystem of ${ramfs} (ramfs) does not support idmapped mounts`);
});
