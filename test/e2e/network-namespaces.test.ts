// Pinned pod namespaces for real (root): one unshare child makes net/ipc/uts (and user) namespaces, sets the
// hostname and sysctls inside them and brings lo up; unpinning leaves no mount and no file.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, readlinkSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../harness.ts";
import { run } from "../../src/sys/exec.ts";
import { isNamespacePinned, namespacePinCheck, nsenterCommand, pinNamespaces, releasePinDir, unpinNamespaces } from "../../src/sys/namespaces.ts";

const root = process.getuid?.() === 0;
if (!root) console.warn("network-namespaces e2e: skipped, needs root");

const dir = tempDir("crio-pin-e2e-");
const nsDir = join(dir.path, "ns");
afterAll(async () => {
  await releasePinDir(nsDir);
  dir[Symbol.dispose]();
});

const mountsUnder = (p: string) =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.split(" ")[4]?.startsWith(p + "/"));

describe.skipIf(!root)("pinned namespaces", () => {
  test("net, ipc and uts are pinned with hostname, sysctls and lo up, then unpinned without a trace", async () => {
    const t0 = performance.now();
    const ns = await pinNamespaces(nsDir, "pod1", {
      net: true,
      ipc: true,
      uts: true,
      hostname: "web-0",
      sysctls: { "net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647", "kernel.shmmni": "2048" },
    });
    console.log(`pinNamespaces(net, ipc, uts, hostname, 3 sysctls): ${(performance.now() - t0).toFixed(1)} ms`);
    expect(ns).toEqual({ net: join(nsDir, "netns", "pod1"), ipc: join(nsDir, "ipcns", "pod1"), uts: join(nsDir, "utsns", "pod1") });
    expect(isNamespacePinned(ns.net!)).toBe(true);
    expect(namespacePinCheck()(ns.net!)).toBe(true); // one read of the mount table for many paths (recovery)

    const out = await run(
      nsenterCommand(ns, [
        "/bin/sh",
        "-c",
        "hostname; cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/ping_group_range /proc/sys/kernel/shmmni; readlink /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/uts; ip -o link show lo",
      ]),
    );
    const lines = out.trim().split("\n");
    expect(lines.slice(0, 4)).toEqual(["web-0", "0", "0\t2147483647", "2048"]);
    for (const [i, kind] of ["net", "ipc", "uts"].entries()) expect(lines[4 + i]).not.toBe(readlinkSync(`/proc/self/ns/${kind}`));
    expect(lines[7]).toContain("UP");
    // the host is untouched
    expect(readFileSync("/proc/sys/kernel/hostname", "utf8").trim()).not.toBe("web-0");

    // the pin directory is a private mount, so pins do not leak into other mount namespaces
    expect((await run(["findmnt", "-n", "-o", "PROPAGATION", nsDir])).trim()).toBe("private");

    await unpinNamespaces(ns);
    await unpinNamespaces(ns); // idempotent
    expect(isNamespacePinned(ns.net!)).toBe(false);
    expect(namespacePinCheck()(ns.net!)).toBe(false);
    expect(mountsUnder(nsDir)).toEqual([]);
    for (const k of ["net", "ipc", "uts"]) expect(readdirSync(join(nsDir, `${k}ns`))).toEqual([]);
  });

  test("a failure inside the child leaves nothing pinned", async () => {
    await expect(pinNamespaces(nsDir, "bad", { net: true, ipc: true, sysctls: { "net.ipv4.no_such_knob": "1" } })).rejects.toThrow(
      /^pin namespaces of "bad": \/usr\/bin\/unshare failed \(exit 1\): sysctl net.ipv4.no_such_knob does not exist$/,
    );
    await expect(pinNamespaces(nsDir, "bad", { net: true, sysctls: { "net.ipv4.ip_unprivileged_port_start": "-5" } })).rejects.toThrow(
      /sysctl net.ipv4.ip_unprivileged_port_start: the kernel refused the value '-5'$/,
    );
    expect(mountsUnder(nsDir)).toEqual([]);
    expect(existsSync(join(nsDir, "netns", "bad"))).toBe(false);
  });

  test("bad requests are refused before anything is made", async () => {
    await expect(pinNamespaces(nsDir, "p", { ipc: true, sysctls: { "net.ipv4.ip_forward": "1" } })).rejects.toThrow(/needs a pod network namespace/);
    await expect(pinNamespaces(nsDir, "p", { net: true, sysctls: { "vm.swappiness": "1" } })).rejects.toThrow(/is not namespaced/);
    await expect(pinNamespaces(nsDir, "p", { net: true, hostname: "h" })).rejects.toThrow(/needs a pinned uts namespace/);
    await expect(pinNamespaces(nsDir, "../p", { net: true })).rejects.toThrow(/invalid namespace pin id/);
    await expect(pinNamespaces(nsDir, "p", { net: true, sysctls: { "net/../../x": "1" } })).rejects.toThrow(/invalid sysctl name/);
    expect(mountsUnder(nsDir)).toEqual([]);
  });

  test("the same id cannot be pinned twice; only the asked kinds are made", async () => {
    const ns = await pinNamespaces(nsDir, "twice", { net: true });
    try {
      expect(ns).toEqual({ net: join(nsDir, "netns", "twice") });
      await expect(pinNamespaces(nsDir, "twice", { net: true })).rejects.toMatchObject({ kind: "already-exists" });
    } finally {
      await unpinNamespaces(ns);
    }
    expect(mountsUnder(nsDir)).toEqual([]);
  });

  test("with a user namespace: it has exactly the mappings and owns the others; hostname, net and IPC sysctls set; unpinned without a trace", async () => {
    const map = [{ containerId: 0, hostId: 60 * 65536, length: 65536 }];
    const ns = await pinNamespaces(nsDir, "pod-userns", {
      net: true,
      ipc: true,
      uts: true,
      hostname: "inside-userns",
      user: { uids: map, gids: map },
      sysctls: { "net.ipv4.ip_unprivileged_port_start": "80", "kernel.shmmni": "1234" },
    });
    try {
      expect(ns.user).toBe(join(nsDir, "userns", "pod-userns"));
      expect(isNamespacePinned(ns.user!)).toBe(true);
      const flags = (["user", "net", "ipc", "uts"] as const).map((k) => `--${k}=${ns[k]}`);
      const script =
        "cat /proc/self/uid_map /proc/self/gid_map; hostname; cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni; ip -o link show lo";
      const out = (await run(["nsenter", ...flags, "--", "sh", "-c", script]))
        .trim()
        .split("\n")
        .map((l) => l.trim().split(/\s+/).join(" "));
      expect(out.slice(0, 5)).toEqual([`0 ${60 * 65536} 65536`, `0 ${60 * 65536} 65536`, "inside-userns", "80", "1234"]);
      expect(out[5]).toContain("UP");
      // the net and uts namespaces are owned by the pod's user namespace: its root may administer them
      // (it could not if the host's user namespace owned them)
      await run(["nsenter", ...flags, "--", "sh", "-c", "ip link set lo mtu 1280 && hostname renamed-by-pod-root"]);
      expect(await run(["nsenter", `--net=${ns.net}`, "--", "ip", "-o", "link", "show", "lo"])).toContain("mtu 1280");
      const outsider = await run(["nsenter", `--net=${ns.net}`, "--", "unshare", "--user", "--", "ip", "link", "set", "lo", "mtu", "1300"]).catch((e) => e);
      expect(outsider).toBeInstanceOf(Error); // root of another user namespace may not
    } finally {
      await unpinNamespaces(ns);
    }
    expect(mountsUnder(nsDir)).toEqual([]);
    for (const k of ["net", "ipc", "uts", "user"]) expect(readdirSync(join(nsDir, `${k}ns`))).toEqual([]);
  });

  test("a user namespace refused by the kernel leaves nothing pinned", async () => {
    const bad = [{ containerId: 0, hostId: 4294967295 - 10, length: 65536 }]; // past the last id
    await expect(pinNamespaces(nsDir, "bad-userns", { net: true, user: { uids: bad, gids: bad } })).rejects.toThrow(/mappings/);
    expect(mountsUnder(nsDir)).toEqual([]);
    expect(existsSync(join(nsDir, "userns", "bad-userns"))).toBe(false);
  });

  test("pinning is fast enough for RunPodSandbox (one child process)", async () => {
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      const ns = await pinNamespaces(nsDir, `speed${i}`, { net: true, ipc: true, uts: true, hostname: `h${i}` });
      times.push(performance.now() - t0);
      await unpinNamespaces(ns);
    }
    times.sort((a, b) => a - b);
    console.log(`pinNamespaces median ${times[5]!.toFixed(1)} ms, max ${times[9]!.toFixed(1)} ms (10 runs)`);
    expect(mountsUnder(nsDir)).toEqual([]);
  });
});
