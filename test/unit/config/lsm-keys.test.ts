// crio.conf keys for the Linux security modules, from the TOML through the loader to the spec the
// runtime gets: `selinux` and `apparmor_profile`. Unit-level because this test machine's kernel
// has neither SELinux (/sys/fs/selinux) nor AppArmor (/sys/module/apparmor) enabled, so the
// compiled daemon rightly applies neither; the host is faked as having them here.
import { expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../../src/config/load.ts";
import { buildContainerSpec, configuredHost } from "../../../src/container/spec/index.ts";
import { fakeDefaults, fakeHost, fakeIo, specInput } from "../container/spec/fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "crio-lsm-"));
async function runtimeConfig(toml: string) {
  const file = join(dir, "crio.conf");
  writeFileSync(file, `[crio.runtime]\n${toml}\n`);
  return (await loadConfig({ configFile: file, configDir: join(dir, "none") })).config.runtime;
}

const labelled = (host: ReturnType<typeof fakeHost>) => {
  const input = specInput({ host });
  input.config.linux = {
    ...input.config.linux,
    securityContext: { ...input.config.linux?.securityContext, selinuxOptions: { user: "", role: "", type: "spc_t", level: "s0:c4,c5" } },
  } as never;
  const spec = buildContainerSpec(input).spec;
  return { process: spec.process?.selinuxLabel, mount: spec.linux?.mountLabel };
};

test("selinux = true labels containers on an SELinux host (process and mount label); the default false, or a host without SELinux, labels nothing", async () => {
  const on = await runtimeConfig("selinux = true");
  expect(on.selinux).toBe(true);
  expect(labelled(configuredHost(fakeHost({ selinux: true }), on))).toEqual({
    process: "system_u:system_r:spc_t:s0:c4,c5",
    mount: "system_u:object_r:container_file_t:s0:c4,c5",
  });
  expect(labelled(configuredHost(fakeHost({ selinux: false }), on))).toEqual({ process: undefined, mount: undefined });
  const off = await runtimeConfig("");
  expect(off.selinux).toBe(false);
  expect(labelled(configuredHost(fakeHost({ selinux: true }), off))).toEqual({ process: undefined, mount: undefined });
});

test("selinux with a non-boolean value is refused at start", async () => {
  await expect(runtimeConfig('selinux = "enforcing"')).rejects.toThrow(/key "crio.runtime.selinux": value "enforcing" is not valid: expected true or false/);
});

test("apparmor_profile names the profile RuntimeDefault containers run under on an AppArmor host", async () => {
  const rt = await runtimeConfig('apparmor_profile = "site-default"');
  expect(rt.apparmorProfile).toBe("site-default");
  const io = { ...fakeIo(), apparmorLoaded: (n: string) => n === "site-default" };
  const build = (profileType: number) => {
    const input = specInput({ host: fakeHost({ apparmor: true }), defaults: fakeDefaults({ apparmorProfile: rt.apparmorProfile }), io });
    input.config.linux!.securityContext!.apparmor = { profileType, localhostRef: "" } as never;
    return buildContainerSpec(input).spec.process?.apparmorProfile;
  };
  expect(build(0)).toBe("site-default"); // RuntimeDefault
  expect(build(1)).toBe("unconfined");
  // Without AppArmor in the kernel the key has nothing to apply to.
  const input = specInput({ defaults: fakeDefaults({ apparmorProfile: rt.apparmorProfile }), io });
  expect(buildContainerSpec(input).spec.process?.apparmorProfile).toBeUndefined();
  // The default is CRI-O's crio-default.
  expect((await runtimeConfig("")).apparmorProfile).toBe("crio-default");
});

test("apparmor_profile naming a profile the kernel has not loaded: CreateContainer is invalid-argument, nothing built", async () => {
  const rt = await runtimeConfig('apparmor_profile = "no-such-profile"');
  const input = specInput({
    host: fakeHost({ apparmor: true }),
    defaults: fakeDefaults({ apparmorProfile: rt.apparmorProfile }),
    io: { ...fakeIo(), apparmorLoaded: () => false },
  });
  let err: unknown;
  try {
    buildContainerSpec(input);
  } catch (e) {
    err = e;
  }
  expect(String((err as Error)?.message)).toContain("apparmor profile no-such-profile not loaded");
  expect((err as { kind?: string }).kind).toBe("invalid-argument");
});
