// src/sys/apparmor.ts against a fake sysfs directory and a fake apparmor_parser runner.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { RuntimeError } from "../../../src/errors.ts";
import { ExecError } from "../../../src/sys/exec.ts";
import { apparmorEnabled, defaultProfileText, ensureDefaultProfile, installProfile, loadedProfiles, profileLoaded } from "../../../src/sys/apparmor.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fake /sys with the AppArmor files: enabled = "Y"/"N" (absent when undefined), profiles lines. */
function fakeSys(o: { enabled?: string; profiles?: string[] } = {}): string {
  const d = mkdtempSync(join(tmpdir(), "crio-aa-sys-"));
  dirs.push(d);
  const put = (rel: string, text: string) => {
    mkdirSync(dirname(join(d, rel)), { recursive: true });
    writeFileSync(join(d, rel), text);
  };
  if (o.enabled !== undefined) put("module/apparmor/parameters/enabled", `${o.enabled}\n`);
  if (o.profiles) put("kernel/security/apparmor/profiles", o.profiles.map((p) => `${p}\n`).join(""));
  return d;
}

/** A runner that records argv and the profile file's content at call time, then does `then`. */
function fakeRunner(then: (argv: string[]) => string = () => "") {
  const calls: { argv: string[]; text: string; file: string }[] = [];
  const run = async (argv: string[]) => {
    const file = argv.at(-1)!;
    calls.push({ argv, file, text: readFileSync(file, "utf8") });
    return then(argv);
  };
  return { run, calls };
}

describe("apparmorEnabled", () => {
  test("Y means on; N or a missing module means off", () => {
    expect(apparmorEnabled(fakeSys({ enabled: "Y" }))).toBe(true);
    expect(apparmorEnabled(fakeSys({ enabled: "N" }))).toBe(false);
    expect(apparmorEnabled(fakeSys())).toBe(false);
  });
});

describe("profileLoaded", () => {
  test("reads the profile names from the kernel's list, with or without a mode", () => {
    const sys = fakeSys({ profiles: ["crio-default (enforce)", "/usr/sbin/cupsd (complain)", "docker default (enforce)", "bare"] });
    expect([...loadedProfiles(sys)]).toEqual(["crio-default", "/usr/sbin/cupsd", "docker default", "bare"]);
    expect(profileLoaded("crio-default", sys)).toBe(true);
    expect(profileLoaded("docker default", sys)).toBe(true);
    expect(profileLoaded("crio", sys)).toBe(false);
  });
  test("false when securityfs is not there", () => {
    expect(profileLoaded("crio-default", fakeSys({ enabled: "Y" }))).toBe(false);
  });
});

describe("defaultProfileText", () => {
  const t = defaultProfileText("crio-default");
  test("a named profile with the global tunables and the base abstraction", () => {
    expect(t.startsWith("#include <tunables/global>\n")).toBe(true);
    expect(t).toContain("profile crio-default flags=(attach_disconnected,mediate_deleted) {");
    expect(t).toContain("#include <abstractions/base>");
    expect(t.trimEnd().endsWith("}")).toBe(true);
  });
  test("allows the normal workload and confines signals and ptrace to the profile", () => {
    for (const rule of [
      "network,",
      "capability,",
      "file,",
      "umount,",
      "signal (send,receive) peer=crio-default,",
      "ptrace (trace,read,tracedby,readby) peer=crio-default,",
    ]) {
      expect(t).toContain(`  ${rule}\n`);
    }
  });
  test("denies mount and writes to the kernel's tunables", () => {
    for (const rule of [
      "deny mount,",
      "deny @{PROC}/* w,",
      "deny @{PROC}/sys/[^k]** w,",
      "deny @{PROC}/sysrq-trigger rwklx,",
      "deny @{PROC}/kcore rwklx,",
      "deny /sys/firmware/** rwklx,",
      "deny /sys/kernel/security/** rwklx,",
    ]) {
      expect(t).toContain(`  ${rule}\n`);
    }
  });
  test("refuses names that would break the policy text", () => {
    expect(() => defaultProfileText("a b")).toThrow(/invalid apparmor profile name "a b"/);
    expect(() => defaultProfileText("x{")).toThrow(RuntimeError);
  });
});

describe("installProfile", () => {
  test("runs apparmor_parser -Kr on a private temporary file with the text, then removes it", async () => {
    const f = fakeRunner();
    await installProfile("crio-default", "profile text\n", f.run, "/sbin/apparmor_parser");
    expect(f.calls).toHaveLength(1);
    expect(f.calls[0]!.argv.slice(0, 2)).toEqual(["/sbin/apparmor_parser", "-Kr"]);
    expect(f.calls[0]!.text).toBe("profile text\n");
    expect(existsSync(f.calls[0]!.file)).toBe(false);
  });
  test("a parser that fails: internal error with its stderr, temp file removed", async () => {
    const f = fakeRunner((argv) => {
      throw new ExecError(argv, 1, "AppArmor parser error at line 3: syntax error");
    });
    const err = await installProfile("crio-default", "bad", f.run, "apparmor_parser").catch((e) => e);
    expect(err).toBeInstanceOf(RuntimeError);
    expect(err.kind).toBe("internal");
    expect(err.message).toBe("installing apparmor profile crio-default: apparmor_parser failed: AppArmor parser error at line 3: syntax error");
    expect(existsSync(f.calls[0]!.file)).toBe(false);
  });
  test("a missing parser: failed-precondition naming apparmor_parser and the package", async () => {
    const err = await installProfile("crio-default", "x", undefined, join(fakeSys(), "no-such-apparmor_parser")).catch((e) => e);
    expect(err).toBeInstanceOf(RuntimeError);
    expect(err.kind).toBe("failed-precondition");
    expect(err.message).toMatch(/^installing apparmor profile crio-default: apparmor_parser not found \(install the apparmor package\)/);
  });
});

describe("ensureDefaultProfile", () => {
  const logger = () => {
    const lines: string[] = [];
    return { lines, log: { info: (m: string) => void lines.push(m) } };
  };
  test("AppArmor off: nothing is run", async () => {
    const f = fakeRunner();
    expect(await ensureDefaultProfile("crio-default", { sys: fakeSys({ enabled: "N" }), run: f.run })).toBe(false);
    expect(f.calls).toHaveLength(0);
  });
  test("on and not loaded: logs and installs our default profile (empty config = default)", async () => {
    for (const configured of ["crio-default", ""]) {
      const f = fakeRunner();
      const l = logger();
      const sys = fakeSys({ enabled: "Y", profiles: ["other (enforce)"] });
      expect(await ensureDefaultProfile(configured, { sys, run: f.run, parser: "apparmor_parser", log: l.log })).toBe(true);
      expect(l.lines).toEqual(["installing default apparmor profile: crio-default"]);
      expect(f.calls[0]!.argv.slice(0, 2)).toEqual(["apparmor_parser", "-Kr"]);
      expect(f.calls[0]!.text).toBe(defaultProfileText("crio-default"));
    }
  });
  test("already loaded: left alone", async () => {
    const f = fakeRunner();
    const sys = fakeSys({ enabled: "Y", profiles: ["crio-default (enforce)"] });
    expect(await ensureDefaultProfile("crio-default", { sys, run: f.run })).toBe(false);
    expect(f.calls).toHaveLength(0);
  });
  test("another name or unconfined: used as configured, nothing installed", async () => {
    const f = fakeRunner();
    const l = logger();
    const sys = fakeSys({ enabled: "Y", profiles: [] });
    expect(await ensureDefaultProfile("my-profile", { sys, run: f.run, log: l.log })).toBe(false);
    expect(await ensureDefaultProfile("unconfined", { sys, run: f.run, log: l.log })).toBe(false);
    expect(f.calls).toHaveLength(0);
    expect(l.lines).toEqual(["Using default AppArmor profile: my-profile", "AppArmor profile is unconfined which basically disables it"]);
  });
  test("a failing install throws (the daemon turns it into a fatal start-up error)", async () => {
    const f = fakeRunner((argv) => {
      throw new ExecError(argv, 1, 'apparmor_parser: Unable to replace "crio-default".  Permission denied');
    });
    const err = await ensureDefaultProfile("crio-default", { enabled: true, sys: fakeSys({ profiles: [] }), run: f.run }).catch((e) => e);
    expect(err.message).toContain("installing apparmor profile crio-default: apparmor_parser failed: apparmor_parser: Unable to replace");
  });
});

// The real parser compiles the profile without loading it (-S: binary policy to stdout). Needs an
// unpacked apparmor package (`apt-get download apparmor && dpkg -x apparmor_*.deb DIR`), named by
// CRIO_TEST_APPARMOR_ROOT, so the machine's /etc/apparmor.d is never read.
const aaRoot = process.env.CRIO_TEST_APPARMOR_ROOT;
test.skipIf(!aaRoot)("apparmor_parser compiles the default profile", async () => {
  const d = mkdtempSync(join(tmpdir(), "crio-aa-parse-"));
  dirs.push(d);
  writeFileSync(join(d, "crio-default"), defaultProfileText("crio-default"));
  const inc = join(aaRoot!, "etc/apparmor.d");
  const p = Bun.spawnSync([join(aaRoot!, "sbin/apparmor_parser"), "-S", "-K", "-T", "-b", inc, "-I", inc, join(d, "crio-default")]);
  expect(p.stderr.toString()).not.toContain("error");
  expect(p.exitCode).toBe(0);
  expect(p.stdout.length).toBeGreaterThan(1000);
});
