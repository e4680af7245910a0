// The runtime handler keys runtime_config_path, allowed_annotations and default_annotations: what a
// config may say (CRI-O's RuntimeHandler.Validate) and the annotation policy a handler's keys give.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../../src/config/load.ts";
import { defaults } from "../../../src/config/schema.ts";
import { EXPERIMENTAL_ANNOTATIONS, disallowedAnnotations, validate } from "../../../src/config/validate.ts";
import { podAnnotations, withoutDisallowed } from "../../../src/sandbox/annotations.ts";

const SHM = "io.kubernetes.cri-o.ShmSize";
const SHM2 = "shm-size.crio.io";

async function load(toml: string) {
  const dir = mkdtempSync(join(tmpdir(), "crio-rh-"));
  try {
    const file = join(dir, "crio.conf");
    writeFileSync(file, toml);
    return { file, r: await loadConfig({ configFile: file, configDir: join(dir, "d") }).catch((e: Error) => e) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("runtime handler options at load", () => {
  test.each([
    [
      '[crio.runtime.runtimes.runc]\nruntime_config_path = "/etc/kata/configuration.toml"',
      "crio.runtime.runtimes.runc.runtime_config_path",
      'runtime_type "vm"',
    ],
    [
      '[crio.runtime.runtimes.kata]\nruntime_path = "/usr/bin/runc"\nruntime_config_path = "relative.toml"',
      "crio.runtime.runtimes.kata.runtime_config_path",
      'runtime_type "vm"',
    ],
    [
      '[crio.runtime.runtimes.runc]\nallowed_annotations = ["io.kubernetes.cri-o.ShmSize", "io.kubernetes.cri-o.Bogus"]',
      "crio.runtime.runtimes.runc.allowed_annotations",
      '"io.kubernetes.cri-o.Bogus"',
    ],
    // Case matters, as in CRI-O's exact match.
    ['[crio.runtime.runtimes.runc]\nallowed_annotations = ["io.kubernetes.cri-o.shmsize"]', "allowed_annotations", "one of the experimental annotations"],
    ['[crio.runtime.runtimes.runc]\nallowed_annotations = "io.kubernetes.cri-o.ShmSize"', "allowed_annotations", "an array of strings"],
    ['[crio.runtime.runtimes.runc]\ndefault_annotations = { "a" = 1 }', "default_annotations", "a table of strings"],
    ['[crio.runtime.runtimes.runc]\ndefault_annotations = ["a=b"]', "default_annotations", "a table of strings"],
    ['[crio.runtime.runtimes.runc]\ndefault_annotations = { "" = "x" }', "default_annotations", "non-empty keys"],
    ['[crio.runtime.runtimes.runc]\ndefault_annotations = { "io.kubernetes.cri-o.ShmSize" = "lots" }', "default_annotations", 'a shm size such as "64Mi"'],
    ['[crio.runtime.runtimes.runc]\ndefault_annotations = { "shm-size.crio.io" = "0" }', "default_annotations", 'for "shm-size.crio.io"'],
  ])("%s is refused naming the key and the expectation", async (toml, key, expected) => {
    const { file, r } = await load(toml);
    expect(r).toBeInstanceOf(Error);
    const err = r as Error & { kind: string };
    expect(err.kind).toBe("invalid-argument");
    expect(err.message).toContain(`config file "${file}"`);
    expect(err.message).toContain(key);
    expect(err.message).toContain(expected);
  });

  test("every name of CRI-O's experimental annotations is accepted, and default_annotations loads as a map", async () => {
    const all = EXPERIMENTAL_ANNOTATIONS.flat();
    const { r } = await load(
      `[crio.runtime.runtimes.runc]\nallowed_annotations = ${JSON.stringify(all)}\ndefault_annotations = { "a.example.com/x" = "1", "b" = "", "shm-size.crio.io" = "128Mi" }\nruntime_config_path = ""\n`,
    );
    expect(r).not.toBeInstanceOf(Error);
    const h = (r as Awaited<ReturnType<typeof loadConfig>>).config.runtime.runtimes.runc!;
    expect(h.allowedAnnotations).toEqual(all);
    expect(h.defaultAnnotations).toEqual({ "a.example.com/x": "1", b: "", "shm-size.crio.io": "128Mi" });
    expect(all).toEqual(expect.arrayContaining([SHM, SHM2, "io.kubernetes.cri-o.Devices", "io.containers.trace-syscall", "io.kubernetes.cri.rdt-class"]));
  });

  test("validate() refuses runtime_config_path on the default handlers too (no file: the default source)", () => {
    const c = structuredClone(defaults());
    c.runtime.runtimes.crun!.runtimeConfigPath = "/etc/crun.toml";
    expect(() => validate(c)).toThrow('default: key "crio.runtime.runtimes.crun.runtime_config_path": value "/etc/crun.toml" is not valid');
  });
});

describe("a handler's annotation policy", () => {
  test("nothing allowed: both names of the shm size are disallowed; either name allows both", () => {
    expect(disallowedAnnotations([])).toEqual(expect.arrayContaining([SHM, SHM2]));
    for (const allowed of [[SHM], [SHM2], [SHM, SHM2]]) {
      const d = disallowedAnnotations(allowed);
      expect(d).not.toContain(SHM);
      expect(d).not.toContain(SHM2);
      expect(d).toContain("io.kubernetes.cri-o.Devices");
    }
    expect(disallowedAnnotations(EXPERIMENTAL_ANNOTATIONS.flat())).toEqual([]);
  });

  test("the request's disallowed annotations are dropped by prefix; others stay", () => {
    const d = disallowedAnnotations([]);
    expect(
      withoutDisallowed(
        { [SHM]: "1Gi", [SHM2]: "1Gi", "io.kubernetes.cri-o.UnifiedCgroup.app": "x", "io.containers.trace-syscall/app": "of:/x", keep: "1" },
        d,
      ),
    ).toEqual({
      kept: { keep: "1" },
      dropped: [SHM, SHM2, "io.kubernetes.cri-o.UnifiedCgroup.app", "io.containers.trace-syscall/app"],
    });
  });

  test("pod annotations: defaults under the request's own, which win; defaults are not filtered", () => {
    const policy = { defaults: { team: "a", [SHM]: "128Mi", tier: "gold" }, disallowed: disallowedAnnotations([]) };
    expect(podAnnotations({ tier: "silver", [SHM2]: "1Gi", own: "x" }, policy)).toEqual({
      annotations: { team: "a", [SHM]: "128Mi", tier: "silver", own: "x" },
      dropped: [SHM2],
    });
    expect(podAnnotations({ own: "x" }, undefined)).toEqual({ annotations: { own: "x" }, dropped: [] });
  });
});
