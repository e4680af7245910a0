// The cgroup v2 code path, which this (hybrid v1) node cannot run for real: node facts read from
// fixture cgroup2 trees, then fed to the spec builder. Unified keys and hugepages pass through where
// the controllers exist, swap only where it is accounted, containers get a private cgroup namespace.
import { describe, expect, test } from "bun:test";
import { create } from "@bufbuild/protobuf";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LinuxContainerResourcesSchema } from "../../../../src/gen/runtime/v1/api_pb.ts";
import { buildContainerSpec } from "../../../../src/container/spec/index.ts";
import { containerResources, DEFAULT_MIN_MEMORY } from "../../../../src/container/spec/resources.ts";
import { cgroupDirsForPath, cgroupFacts, detectCgroupLayout } from "../../../../src/sys/cgroup.ts";
import { parseMountinfo } from "../../../../src/sys/mount.ts";
import { containerConfig, fakeHost, specInput } from "./fixtures.ts";

/** A cgroup2-only node whose hierarchy is a temp dir with `controllers`; `swap` adds memory.swap.max below the root. */
function withV2Tree(o: { controllers: string; swap: boolean }, fn: (facts: ReturnType<typeof cgroupFacts>, root: string) => void) {
  return () => {
    const root = mkdtempSync(join(tmpdir(), "cgroup2-fixture-"));
    try {
      writeFileSync(join(root, "cgroup.controllers"), `${o.controllers}\n`);
      const kubepods = join(root, "kubepods");
      mkdirSync(kubepods);
      writeFileSync(join(kubepods, "memory.max"), "max\n");
      if (o.swap) writeFileSync(join(kubepods, "memory.swap.max"), "max\n");
      const layout = detectCgroupLayout(parseMountinfo(`25 1 0:22 / / rw - ext4 /dev/vda rw\n40 25 0:40 / ${root} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate`));
      expect(layout.kind).toBe("v2");
      fn(cgroupFacts(layout), root);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  };
}

const MiB = 1024n * 1024n;
const asked = create(LinuxContainerResourcesSchema, {
  cpuShares: 512n,
  memoryLimitInBytes: 64n * MiB,
  memorySwapLimitInBytes: 128n * MiB,
  hugepageLimits: [{ pageSize: "2MB", limit: 8n * MiB }],
  unified: { "memory.high": "50331648", "io.weight": "200" },
});
const resources = (facts: ReturnType<typeof cgroupFacts>) =>
  containerResources({ resources: asked, minMemory: DEFAULT_MIN_MEMORY, minOomScoreAdj: 0, cgroup: facts });

describe("cgroup v2 nodes (fixture trees)", () => {
  test(
    "every controller and swap accounting: unified, hugepages and swap pass through, no warning",
    withV2Tree({ controllers: "cpuset cpu io memory hugetlb pids", swap: true }, (facts) => {
      expect(facts).toEqual({ v2: true, swap: true, hugetlb: true, pids: true });
      const r = resources(facts);
      expect(r.warnings).toEqual([]);
      expect(r.resources).toEqual({
        cpu: { shares: 512 },
        memory: { limit: Number(64n * MiB), swap: Number(128n * MiB) },
        hugepageLimits: [{ pageSize: "2MB", limit: Number(8n * MiB) }],
        unified: { "memory.high": "50331648", "io.weight": "200" },
      });
    }),
  );

  test(
    "no hugetlb controller and no swap accounting: hugepages dropped with a warning, no swap field",
    withV2Tree({ controllers: "cpu memory pids", swap: false }, (facts) => {
      expect(facts).toEqual({ v2: true, swap: false, hugetlb: false, pids: true });
      const r = resources(facts);
      expect(r.resources.memory).toEqual({ limit: Number(64n * MiB) });
      expect(r.resources.hugepageLimits).toBeUndefined();
      expect(r.resources.unified).toEqual({ "memory.high": "50331648", "io.weight": "200" });
      expect(r.warnings).toEqual(["hugepage limits ignored: the hugetlb cgroup controller is not available"]);
    }),
  );

  test(
    "no pids controller: pids_limit is not set",
    withV2Tree({ controllers: "cpu memory", swap: false }, (facts) => {
      expect(containerResources({ minMemory: DEFAULT_MIN_MEMORY, minOomScoreAdj: 0, cgroup: facts, pidsLimit: 100 }).resources.pids).toBeUndefined();
      expect(containerResources({ minMemory: DEFAULT_MIN_MEMORY, minOomScoreAdj: 0, cgroup: { ...facts, pids: true }, pidsLimit: 100 }).resources.pids).toEqual(
        { limit: 100 },
      );
    }),
  );

  test(
    "the spec on a v2 node: unified in linux.resources, a private cgroup namespace unless privileged, one cgroup dir",
    withV2Tree({ controllers: "cpuset cpu io memory hugetlb pids", swap: true }, (facts, root) => {
      const config = containerConfig();
      config.linux!.resources = asked;
      const r = buildContainerSpec(specInput({ config, host: fakeHost({ cgroup: facts }) }));
      expect(r.spec.linux?.resources?.unified).toEqual({ "memory.high": "50331648", "io.weight": "200" });
      expect(r.spec.linux?.resources?.hugepageLimits).toEqual([{ pageSize: "2MB", limit: Number(8n * MiB) }]);
      expect(r.spec.linux?.namespaces?.some((n) => n.type === "cgroup")).toBe(true);
      const layout = detectCgroupLayout(parseMountinfo(`40 25 0:40 / ${root} rw - cgroup2 cgroup2 rw`));
      expect(cgroupDirsForPath(layout, r.spec.linux!.cgroupsPath!)).toEqual([join(root, r.spec.linux!.cgroupsPath!)]);
      // The same container on the hybrid node: unified ignored with a warning, no cgroup namespace.
      const v1 = buildContainerSpec(specInput({ config, host: fakeHost() }));
      expect(v1.spec.linux?.resources?.unified).toBeUndefined();
      expect(v1.warnings).toContain("unified cgroup resources ignored: the node does not run cgroup v2");
      expect(v1.spec.linux?.namespaces?.some((n) => n.type === "cgroup")).toBe(false);
    }),
  );
});
